-- shard_retention: documents and words kept per input shard, per run: a shard whose kept_fraction or
-- word_retention stands far from the others points at a different source (another site, language or
-- extraction) rather than at the models. kept_fraction = kept documents / documents refined (quarantined
-- records are not documents); records_read and quarantined come from the shards commit log (null for a
-- shard whose commit is missing, as in a run that stopped part-way).
WITH per_shard AS (
  SELECT run_id,
         shard,
         count(*) AS documents,
         sum(CAST(kept AS BIGINT)) AS kept_docs,
         coalesce(sum(words_before), 0) AS words_before,
         coalesce(sum(CASE WHEN kept THEN words_after ELSE 0 END), 0) AS words_after
  FROM IDENTIFIER(:refined)
  GROUP BY run_id, shard
)
SELECT p.run_id,
       p.shard,
       s.records_read,
       s.quarantined,
       p.documents,
       p.kept_docs,
       p.kept_docs / p.documents AS kept_fraction,
       p.words_before,
       p.words_after,
       p.words_after / nullif(p.words_before, 0) AS word_retention
FROM per_shard p
LEFT JOIN IDENTIFIER(:shards) s ON s.run_id = p.run_id AND s.shard = p.shard
ORDER BY p.run_id, p.shard
