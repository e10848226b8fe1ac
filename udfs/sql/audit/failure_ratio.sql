-- failure_ratio: program execution failure ratio per run and stage, next to ProX's reported ratios
-- (prox-reference.md 5.6, general domain: doc 0.04%, chunk 0.36%).
-- A program (one programs row: the doc program of a document, or the program of one chunk) failed when at
-- least one of its lines has status parse_error or out_of_range, the statuses that count as executor errors.
-- Lines the reference silently skips (ignored) and normalize sources that are absent (not_found) are not
-- failures, as in the released executor. started_at comes from the runs table: the start of the run's first
-- attempt (the table holds one row per attempt; null while a run is open).
WITH per_program AS (
  SELECT run_id,
         stage,
         coalesce(exists(ops, o -> o.status IN ('parse_error', 'out_of_range')), false) AS failed,
         coalesce(exists(ops, o -> o.status = 'parse_error'), false) AS has_parse_error,
         coalesce(exists(ops, o -> o.status = 'out_of_range'), false) AS has_out_of_range,
         outcome
  FROM IDENTIFIER(:programs)
),
per_stage AS (
  SELECT run_id,
         stage,
         count(*) AS programs,
         sum(CAST(failed AS BIGINT)) AS failed_programs,
         sum(CAST(has_parse_error AS BIGINT)) AS programs_with_parse_error,
         sum(CAST(has_out_of_range AS BIGINT)) AS programs_with_out_of_range,
         sum(CASE WHEN outcome = 'kept_original' THEN 1 ELSE 0 END) AS programs_ignored
  FROM per_program
  GROUP BY run_id, stage
)
SELECT p.run_id,
       r.started_at,
       p.stage,
       p.programs,
       p.failed_programs,
       p.failed_programs / p.programs AS failure_ratio,
       CASE p.stage WHEN 'doc' THEN 0.0004D WHEN 'chunk' THEN 0.0036D END AS prox_reported_ratio,
       (p.failed_programs / p.programs) / CASE p.stage WHEN 'doc' THEN 0.0004D WHEN 'chunk' THEN 0.0036D END
         AS times_prox_reported,
       p.programs_with_parse_error,
       p.programs_with_out_of_range,
       p.programs_ignored
FROM per_stage p
LEFT JOIN (SELECT run_id, min(started_at) AS started_at FROM IDENTIFIER(:runs) GROUP BY run_id) r ON r.run_id = p.run_id
ORDER BY r.started_at, p.run_id, p.stage
