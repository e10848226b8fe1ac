-- doc_results: one row per refined document with its programs next to its result: the doc program,
-- the chunk programs joined in chunk order (as the executor ran them) with every line's status, the
-- decision and the final text. The input text is not stored (see udfs.audit.document_report for a diff
-- against the re-read input).
WITH chunks AS (
  SELECT run_id,
         doc_id,
         count(*) AS chunks,
         sum(errors) AS chunk_errors,
         array_sort(collect_list(struct(chunk_index, first_line, last_line, program, ops))) AS parts
  FROM IDENTIFIER(:programs)
  WHERE stage = 'chunk'
  GROUP BY run_id, doc_id
)
SELECT r.run_id,
       r.shard,
       r.doc_id,
       r.kept,
       r.drop_stage,
       r.drop_reason,
       r.program_ignored,
       d.program AS doc_program,
       d.ops AS doc_ops,
       array_join(transform(c.parts, x -> x.program), '\n') AS chunk_program,
       flatten(transform(c.parts, x -> x.ops)) AS chunk_ops,
       coalesce(c.chunks, 0) AS chunks,
       c.chunk_errors,
       r.words_before,
       r.words_after,
       r.lines_before,
       r.lines_after,
       r.text AS final_text,
       r.source_file,
       r.record_index,
       r.url
FROM IDENTIFIER(:refined) r
LEFT JOIN IDENTIFIER(:programs) d ON d.run_id = r.run_id AND d.doc_id = r.doc_id AND d.stage = 'doc'
LEFT JOIN chunks c ON c.run_id = r.run_id AND c.doc_id = r.doc_id
ORDER BY r.run_id, r.shard, r.doc_id
