-- op_counts: program lines per run, stage, op kind and status (applied, not_found, out_of_range,
-- parse_error, ignored, skipped). op is '(none)' for a line that is no call at all.
SELECT p.run_id,
       p.stage,
       coalesce(o.op, '(none)') AS op,
       o.status,
       count(*) AS ops,
       count(DISTINCT p.doc_id) AS documents
FROM IDENTIFIER(:programs) p
LATERAL VIEW explode(p.ops) exploded AS o
GROUP BY p.run_id, p.stage, coalesce(o.op, '(none)'), o.status
ORDER BY p.run_id, p.stage, ops DESC, op, o.status
