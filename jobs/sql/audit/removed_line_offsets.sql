-- prox_removed_line_offsets: the most removed line positions, counted from the start (offset 0 = first
-- line) and from the end (offset 0 = last line) of a document, per run: headers and footers show up as
-- high removal rates at small offsets. documents = documents long enough to have that line (same set as
-- prox_removed_lines); removal_rate = lines_removed / documents. The raw text is not stored, so this is the
-- position view; jobs.audit.audit_removed_line_patterns shows the removed text when the input is readable.
WITH docs AS (
  SELECT DISTINCT run_id, doc_id, lines_before AS n_lines
  FROM prox_programs
  WHERE stage = 'chunk' AND outcome = 'kept' AND lines_before > 0
),
offsets AS (
  SELECT run_id, 'start' AS anchor, line AS offset FROM prox_removed_lines
  UNION ALL
  SELECT run_id, 'end' AS anchor, n_lines - 1 - line AS offset FROM prox_removed_lines
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
