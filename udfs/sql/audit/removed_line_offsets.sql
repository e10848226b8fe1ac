-- removed_line_offsets: the most removed line positions, counted from the start (offset 0 = first
-- line) and from the end (offset 0 = last line) of a document, per run: headers and footers show up as
-- high removal rates at small offsets. documents = documents long enough to have that line (same set as
-- removed_lines.sql); removal_rate = lines_removed / documents. The raw text is not stored, so this is the
-- position view; udfs.audit.audit_removed_line_patterns shows the removed text when the input is readable.
WITH
-- begin removed_lines
removals AS (
  SELECT p.run_id,
         p.doc_id,
         p.lines_before AS n_lines,
         o.op,
         greatest(coalesce(o.start, 0), 0) AS first_line,
         least(coalesce(o.`end`, p.lines_before - 1), p.lines_before - 1) AS last_line
  FROM IDENTIFIER(:programs) p
  LATERAL VIEW explode(p.ops) exploded AS o
  WHERE p.stage = 'chunk'
    AND p.outcome = 'kept'
    AND p.lines_before > 0
    AND o.status IN ('applied', 'out_of_range')
    AND o.op IN ('remove_lines', 'remove_all_lines')
),
ranges AS (
  SELECT run_id,
         doc_id,
         n_lines,
         CASE WHEN op = 'remove_all_lines' THEN 0 ELSE first_line END AS first_line,
         CASE WHEN op = 'remove_all_lines' THEN n_lines - 1 ELSE last_line END AS last_line
  FROM removals
),
removed_lines AS (
  SELECT DISTINCT run_id, doc_id, n_lines, line
  FROM (
    SELECT run_id, doc_id, n_lines, explode(sequence(first_line, last_line)) AS line
    FROM ranges
    WHERE first_line <= last_line
  )
)
-- end removed_lines
, docs AS (
  SELECT DISTINCT run_id, doc_id, lines_before AS n_lines
  FROM IDENTIFIER(:programs)
  WHERE stage = 'chunk' AND outcome = 'kept' AND lines_before > 0
),
offsets AS (
  SELECT run_id, 'start' AS anchor, line AS offset FROM removed_lines
  UNION ALL
  SELECT run_id, 'end' AS anchor, n_lines - 1 - line AS offset FROM removed_lines
),
counts AS (
  SELECT run_id, anchor, offset, count(*) AS lines_removed
  FROM offsets
  GROUP BY run_id, anchor, offset
)
SELECT c.run_id,
       c.anchor,
       c.offset,
       c.lines_removed,
       count(*) AS documents,
       c.lines_removed / count(*) AS removal_rate
FROM counts c
JOIN docs d ON d.run_id = c.run_id AND d.n_lines > c.offset
GROUP BY c.run_id, c.anchor, c.offset, c.lines_removed
ORDER BY c.run_id, c.lines_removed DESC, c.anchor, c.offset
