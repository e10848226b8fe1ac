-- ops_per_program: function calls per program, per run and stage.
-- ops counts parsed calls (lines with an op name: remove_lines, normalize, keep_chunk, drop_doc, ...);
-- program_lines also counts lines that are no call at all (op null: comments, garbage), which the
-- executor ignores. ProX reports 3.7 calls per chunk-level program in the general domain (Table 35).
WITH per_program AS (
  SELECT run_id,
         stage,
         size(filter(ops, o -> o.op IS NOT NULL)) AS ops,
         size(ops) AS program_lines,
         size(filter(ops, o -> o.status = 'applied')) AS applied_ops
  FROM IDENTIFIER(:programs)
  WHERE ops IS NOT NULL
)
SELECT run_id,
       stage,
       count(*) AS programs,
       sum(ops) AS ops,
       avg(ops) AS ops_per_program,
       max(ops) AS max_ops,
       percentile(ops, 0.5) AS median_ops,
       sum(program_lines) AS program_lines,
       sum(applied_ops) AS applied_ops,
       sum(CASE WHEN ops = 0 THEN 1 ELSE 0 END) AS programs_without_ops,
       CASE stage WHEN 'chunk' THEN 3.7D END AS prox_reported_ops_per_program
FROM per_program
GROUP BY run_id, stage
ORDER BY run_id, stage
