-- removed_by_position: where in a document the chunk stage removes lines, in ten buckets of relative
-- position (bucket 0 = the first 10% of a document's lines, 9 = the last 10%), per run.
-- lines_total counts every line in those buckets over the same documents (those whose chunk program took
-- effect, see removed_lines.sql), so removal_rate = lines_removed / lines_total is comparable across
-- buckets; share_of_removed = this bucket's part of all removed lines. Line i of an n-line document is in
-- bucket floor(10 * i / n); a bucket holds ceil(n * (b + 1) / 10) - ceil(n * b / 10) of its lines.
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
buckets AS (
  SELECT explode(sequence(0, 9)) AS bucket
),
totals AS (
  SELECT d.run_id,
         b.bucket,
         sum(CAST(ceil(d.n_lines * (b.bucket + 1) / 10.0) - ceil(d.n_lines * b.bucket / 10.0) AS BIGINT)) AS lines_total
  FROM docs d CROSS JOIN buckets b
  GROUP BY d.run_id, b.bucket
),
removed AS (
  SELECT run_id, CAST(floor(10 * line / n_lines) AS INT) AS bucket, count(*) AS lines_removed
  FROM removed_lines
  GROUP BY run_id, CAST(floor(10 * line / n_lines) AS INT)
)
SELECT t.run_id,
       t.bucket,
       concat(CAST(t.bucket * 10 AS STRING), '-', CAST(t.bucket * 10 + 10 AS STRING), '%') AS position,
       coalesce(r.lines_removed, 0) AS lines_removed,
       t.lines_total,
       coalesce(r.lines_removed, 0) / nullif(t.lines_total, 0) AS removal_rate,
       coalesce(r.lines_removed, 0) / nullif(sum(coalesce(r.lines_removed, 0)) OVER (PARTITION BY t.run_id), 0)
         AS share_of_removed
FROM totals t
LEFT JOIN removed r ON r.run_id = t.run_id AND r.bucket = t.bucket
ORDER BY t.run_id, t.bucket
