-- normalize_sources: normalize(source_str, target_str) calls per run, grouped by source and target.
-- applied: the source occurred and was replaced; not_found: it did not occur in the document (not an
-- error, as in the released executor); other statuses are lines the executor refused.
SELECT p.run_id,
       o.source,
       o.target,
       count(*) AS ops,
       sum(CASE WHEN o.status = 'applied' THEN 1 ELSE 0 END) AS applied,
       sum(CASE WHEN o.status = 'not_found' THEN 1 ELSE 0 END) AS not_found,
       sum(CASE WHEN o.status NOT IN ('applied', 'not_found') THEN 1 ELSE 0 END) AS other,
       count(DISTINCT p.doc_id) AS documents
FROM IDENTIFIER(:programs) p
LATERAL VIEW explode(p.ops) exploded AS o
WHERE p.stage = 'chunk' AND o.op = 'normalize'
GROUP BY p.run_id, o.source, o.target
ORDER BY p.run_id, ops DESC, o.source, o.target
