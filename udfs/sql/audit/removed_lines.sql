-- removed_lines: one row per document line the chunk stage removed, per run (0-based line numbers of the
-- document, n_lines = its line count).
-- Only documents whose chunk program took effect (chunk outcome 'kept'): a dropped document lost every
-- line anyway, and a kept_original one (too many errors) lost none. remove_lines ranges are clipped to the
-- document as the executor clips them (an out_of_range op still removes the lines that exist); overlapping
-- ranges count a line once. Limit: removals apply to the text after normalize, so a normalize that adds or
-- removes line breaks shifts later line numbers; n_lines is the line count before normalization.
-- Cost: one row per removed line.
-- removed_by_position, removed_line_offsets and removed_line_patterns carry the same CTEs (between the
-- begin/end markers) so that each file runs on its own; tests/test_audit.py keeps the copies identical.
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
SELECT run_id, doc_id, n_lines, line
FROM removed_lines
ORDER BY run_id, doc_id, line
