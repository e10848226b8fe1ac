-- slowest_shards: model time per input shard, per run, from the programs' latency_ms (each program's
-- share of its batch: batch time / batch size), summed over the shard's doc and chunk programs. It is model
-- time spent on the shard's documents summed over tasks, not wall-clock time; reading and writing are not
-- in it. records_read and committed_at come from the shards commit log.
WITH per_shard AS (
  SELECT run_id,
         shard,
         count(DISTINCT doc_id) AS documents,
         sum(CASE WHEN stage = 'chunk' THEN 1 ELSE 0 END) AS chunk_programs,
         coalesce(sum(CASE WHEN stage = 'doc' THEN latency_ms END), 0) / 1000 AS doc_model_seconds,
         coalesce(sum(CASE WHEN stage = 'chunk' THEN latency_ms END), 0) / 1000 AS chunk_model_seconds,
         coalesce(sum(latency_ms), 0) / 1000 AS model_seconds,
         sum(prompt_tokens) AS prompt_tokens
  FROM IDENTIFIER(:programs)
  GROUP BY run_id, shard
)
SELECT p.run_id,
       p.shard,
       p.documents,
       p.chunk_programs,
       p.model_seconds,
       p.doc_model_seconds,
       p.chunk_model_seconds,
       p.model_seconds * 1000 / p.documents AS model_ms_per_document,
       p.prompt_tokens,
       s.records_read,
       s.committed_at
FROM per_shard p
LEFT JOIN IDENTIFIER(:shards) s ON s.run_id = p.run_id AND s.shard = p.shard
ORDER BY p.run_id, p.model_seconds DESC, p.shard
