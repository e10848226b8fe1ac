"""How the refining stages run, shared by the Spark job (``run_stages``) and the plain path (``refine_batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prox_spark.config import DEFAULT_DOC_GUARD_WORDS, RefineConfig, executor_config
from prox_spark.pipeline.stages import DocMode
from prox_spark.programs import ExecutorConfig


@dataclass(frozen=True)
class RefineSettings:
    """How the stages run; defaults are the reference's (1500-token chunks, reference dialect)."""

    dialect: str = "reference"
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    doc_mode: DocMode = "score"
    doc_batch_size: int = 16
    chunk_batch_size: int = 16
    max_chunk_tokens: int = 1500
    doc_max_new_tokens: int | None = None
    chunk_max_new_tokens: int | None = None
    #: rows x padded tokens per model batch (None: batch sizes alone limit the rows)
    doc_max_batch_tokens: int | None = None
    chunk_max_batch_tokens: int | None = None
    #: chunk-range guard: clip each chunk program's removals to its chunk (``prox_spark.pipeline.guard``)
    clip_chunk_programs: bool = False
    #: the doc stage keeps a page its model drops when the line refiner keeps this many words of it
    #: (``spare_main_text_pages``; 0: off; applies only with a line-refiner chunk model)
    doc_guard_words: int = DEFAULT_DOC_GUARD_WORDS
    #: a line-refiner chunk model also removes each page's reader-comment section (``prox_spark.lines.comments``)
    drop_comment_sections: bool = False


def settings_of(config: RefineConfig) -> RefineSettings:
    """The stage settings a job config asks for: the Spark job and ``prox-spark clean`` both take them from here,
    so the two paths cannot drift apart."""
    models = config.models
    return RefineSettings(
        dialect=config.executor.dialect,
        executor=executor_config(config.executor),
        doc_mode=models.doc_mode,
        doc_batch_size=models.doc.batch_size,
        chunk_batch_size=models.chunk.batch_size,
        max_chunk_tokens=models.max_chunk_tokens,
        doc_max_new_tokens=models.doc.max_new_tokens,
        chunk_max_new_tokens=models.chunk.max_new_tokens,
        doc_max_batch_tokens=models.doc.max_batch_tokens or None,
        chunk_max_batch_tokens=models.chunk.max_batch_tokens or None,
        clip_chunk_programs=models.clip_chunk_programs,
        doc_guard_words=models.doc_guard_words,
        drop_comment_sections=models.drop_comment_sections,
    )
