-- drop_reasons: documents per outcome and reason, per run.
-- Every input record ends in exactly one group: kept (refined, or program_ignored = the chunk program had
-- too many errors and the doc-stage text was kept), dropped at the doc or chunk stage with its reason, or
-- quarantined at read time with its reason. docs summed over a run = the run's records read.
WITH outcomes AS (
  SELECT run_id,
         CASE WHEN kept THEN 'kept' ELSE 'dropped' END AS outcome,
         CASE WHEN kept THEN NULL ELSE drop_stage END AS stage,
         CASE WHEN kept AND program_ignored THEN 'program_ignored'
              WHEN kept THEN 'refined'
              ELSE drop_reason END AS reason,
         words_before
  FROM IDENTIFIER(:refined)
  UNION ALL
  SELECT run_id, 'quarantined' AS outcome, 'read' AS stage, reason, CAST(NULL AS BIGINT) AS words_before
  FROM IDENTIFIER(:quarantine)
)
SELECT run_id,
       outcome,
       stage,
       reason,
       count(*) AS docs,
       count(*) / sum(count(*)) OVER (PARTITION BY run_id) AS share_of_input,
       sum(words_before) AS words_before
FROM outcomes
GROUP BY run_id, outcome, stage, reason
ORDER BY run_id, docs DESC, outcome, stage, reason
