-- removed_line_patterns: the text of the lines the chunk stage removed in run :run_id, grouped by a pattern
-- (trimmed, lower-cased, digit runs -> 0, first 120 characters).
-- The tables keep only the final text, so this one also reads :input_text, a table or view with the run's
-- input as (doc_id, text) columns: udfs.audit.audit_removed_line_patterns re-reads it with the job's reader;
-- in plain SQL, name the input table when it has those columns (or a view that selects them).
-- Only documents whose input has the line count the run recorded are used: the input may have changed since
-- the run. Lines are taken from the input before normalize (see removed_lines.sql for the limit this implies).
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
, inputs AS (
  SELECT r.run_id, i.doc_id, split(i.text, '\n', -1) AS lines
  FROM IDENTIFIER(:input_text) i
  JOIN IDENTIFIER(:refined) r ON r.doc_id = i.doc_id
  WHERE r.run_id = :run_id AND size(split(i.text, '\n', -1)) = r.lines_before
),
removed AS (
  SELECT l.run_id, l.doc_id, element_at(i.lines, CAST(l.line + 1 AS INT)) AS line_text
  FROM removed_lines l
  JOIN inputs i ON i.run_id = l.run_id AND i.doc_id = l.doc_id
)
SELECT run_id,
       substring(regexp_replace(lower(trim(line_text)), '[0-9]+', '0'), 1, 120) AS pattern,
       count(*) AS lines_removed,
       count(DISTINCT doc_id) AS documents,
       min(line_text) AS example
FROM removed
GROUP BY run_id, substring(regexp_replace(lower(trim(line_text)), '[0-9]+', '0'), 1, 120)
ORDER BY run_id, lines_removed DESC, pattern
