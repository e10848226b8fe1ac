-- doc_retention: one row per refined document: words before/after and their ratio (0 when dropped,
-- null for a document without words). The audit notebook's retention histogram reads this.
SELECT run_id,
       shard,
       doc_id,
       kept,
       drop_stage,
       drop_reason,
       program_ignored,
       words_before,
       words_after,
       lines_before,
       lines_after,
       CASE WHEN words_before > 0 THEN words_after / words_before END AS word_retention
FROM IDENTIFIER(:refined)
ORDER BY run_id, shard, doc_id
