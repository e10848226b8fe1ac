-- retention: documents and words (str.split tokens, the executor's count) before and after, per run.
-- words_before counts every document read (kept or dropped; quarantined records have no text);
-- words_after_doc_stage what survives the doc stage; words_after what the kept documents hold at the end.
-- The same definitions as the job's own summary and the runs table (words_before, words_after).
WITH docs AS (
  SELECT run_id,
         count(*) AS documents,
         sum(CAST(kept AS BIGINT)) AS kept_docs,
         sum(CAST(program_ignored AND kept AS BIGINT)) AS program_ignored_docs,
         coalesce(sum(words_before), 0) AS words_before,
         coalesce(sum(CASE WHEN kept THEN words_after ELSE 0 END), 0) AS words_after,
         coalesce(sum(lines_before), 0) AS lines_before,
         coalesce(sum(CASE WHEN kept THEN lines_after ELSE 0 END), 0) AS lines_after,
         avg(words_before) AS mean_words_before,
         avg(CASE WHEN kept THEN words_after END) AS mean_words_after_kept
  FROM IDENTIFIER(:refined)
  GROUP BY run_id
),
doc_stage AS (
  SELECT run_id,
         sum(CASE WHEN outcome = 'dropped' THEN 0 ELSE 1 END) AS kept_after_doc_stage,
         coalesce(sum(words_after), 0) AS words_after_doc_stage
  FROM IDENTIFIER(:programs)
  WHERE stage = 'doc'
  GROUP BY run_id
)
SELECT d.run_id,
       d.documents,
       s.kept_after_doc_stage,
       d.kept_docs,
       d.documents - d.kept_docs AS dropped_docs,
       d.program_ignored_docs,
       d.words_before,
       s.words_after_doc_stage,
       d.words_after,
       s.words_after_doc_stage / nullif(d.words_before, 0) AS doc_stage_word_retention,
       d.words_after / nullif(d.words_before, 0) AS word_retention,
       d.lines_before,
       d.lines_after,
       d.mean_words_before,
       d.mean_words_after_kept
FROM docs d
LEFT JOIN doc_stage s ON s.run_id = d.run_id
ORDER BY d.run_id
