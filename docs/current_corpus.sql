-- The current corpus: the kept documents of the latest succeeded refine run.
--
-- `refined` keeps the rows of every run (each tagged with run_id), so "SELECT * FROM refined" mixes corpora
-- and repeats a document once per run. A run's rows are complete once its runs row says succeeded (every
-- listed input file committed, counts balanced) for its newest attempt; the most recently finished such
-- run is the current corpus. The pre-training job (jobs/pretrain.py) picks the same run when data.run_id
-- is empty.
--
-- Replace /data/prox with the job's output.path; for metastore tables (output.database) write
-- `<database>`.`runs` and `<database>`.`refined` instead of the delta.`...` paths.
WITH last_attempt AS (  -- a rerun of a run id adds an attempt: its newest attempt is what the tables hold now
  SELECT run_id, status, finished_at,
         row_number() OVER (PARTITION BY run_id ORDER BY coalesce(attempt, 1) DESC) AS newest
  FROM delta.`/data/prox/runs`
),
current_run AS (
  SELECT run_id
  FROM last_attempt
  WHERE newest = 1 AND status = 'succeeded'
  ORDER BY finished_at DESC, run_id DESC
  LIMIT 1
)
SELECT r.run_id, r.doc_id, r.text, r.url, r.source_file, r.record_index
FROM delta.`/data/prox/refined` AS r
JOIN current_run USING (run_id)
WHERE r.kept
