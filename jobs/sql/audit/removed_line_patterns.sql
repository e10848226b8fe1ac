-- removed line patterns (not a standing view: needs prox_input_text, the run's input re-read by
-- jobs.audit.audit_removed_line_patterns): the text of the lines the chunk stage removed, grouped by a
-- pattern (trimmed, lower-cased, digit runs -> 0, first 120 characters), per run.
-- Only documents whose re-read input has the line count the job recorded (input_matches) are used: the
-- input may have changed since the run. Lines are taken from the input before normalize (see
-- prox_removed_lines for the limit this implies).
WITH inputs AS (
  SELECT i.run_id, i.doc_id, split(i.text, '\n', -1) AS lines
  FROM prox_input_text i
  JOIN prox_refined r ON r.run_id = i.run_id AND r.doc_id = i.doc_id
  WHERE size(split(i.text, '\n', -1)) = r.lines_before
),
removed AS (
  SELECT l.run_id, l.doc_id, element_at(i.lines, CAST(l.line + 1 AS INT)) AS line_text
  FROM prox_removed_lines l
  JOIN inputs i ON i.run_id = l.run_id AND i.doc_id = l.doc_id
)
SELECT run_id,
       substring(regexp_replace(lower(trim(line_text)), '[0-9]+', '0'), 1, 120) AS pattern,
       count(*) AS lines_removed,
       count(DISTINCT doc_id) AS documents,
       min(line_text) AS example
FROM removed
GROUP BY run_id, substring(regexp_replace(lower(trim(line_text)), '[0-9]+', '0'), 1, 120)
