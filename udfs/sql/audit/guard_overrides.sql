-- guard_overrides: programs a guard rewrote, per run, stage and guard, with their share of the stage's programs.
-- The programs table keeps the model's own program in model_program whenever what ran differs from it:
-- the doc stage's main-text guard (models.doc_guard_words turned a drop_doc() into keep_doc()), the
-- chunk-range guard (models.clip_chunk_programs, clipped_ops > 0) and the line refiner's page cuts
-- (models.drop_comment_sections, models.drop_stray_fragments). A share far above a previous run's flags a
-- model or corpus change.
WITH stage_programs AS (
  SELECT run_id, stage, count(*) AS stage_programs
  FROM IDENTIFIER(:programs)
  GROUP BY run_id, stage
),
overrides AS (
  SELECT run_id,
         stage,
         CASE WHEN stage = 'doc' THEN 'main_text_guard'
              WHEN clipped_ops > 0 THEN 'chunk_range_guard'
              ELSE 'page_cuts' END AS guard,
         doc_id
  FROM IDENTIFIER(:programs)
  WHERE model_program IS NOT NULL
)
SELECT o.run_id,
       o.stage,
       o.guard,
       count(*) AS programs,
       count(DISTINCT o.doc_id) AS documents,
       count(*) / max(s.stage_programs) AS share_of_stage_programs
FROM overrides o
JOIN stage_programs s ON s.run_id = o.run_id AND s.stage = o.stage
GROUP BY o.run_id, o.stage, o.guard
ORDER BY o.run_id, o.stage, o.guard
