"""How the refining stages run, shared by the Spark job (``run_stages``) and the plain path (``refine_batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prox_spark.config import ExecutorSettings, ModelConfig, ModelsConfig, RefineConfig, executor_config
from prox_spark.lines.cuts import PageCuts
from prox_spark.pipeline.model_kinds.base import Serving
from prox_spark.pipeline.model_stages import DocMode
from prox_spark.programs import ExecutorConfig


@dataclass(frozen=True)
class RefineSettings:
    """How the stages run. Each default is the job config's (``prox_spark.config``), read from there, so
    ``RefineSettings()`` and a job with an empty config run alike (1500-token chunks, reference dialect,
    the comment-section cut on), apart from the token limits: None here is the model's own limit and no
    rows x tokens cap."""

    dialect: str = ExecutorSettings.dialect
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    doc_mode: DocMode = ModelsConfig.doc_mode
    doc_batch_size: int = ModelConfig.batch_size
    chunk_batch_size: int = ModelConfig.batch_size
    max_chunk_tokens: int = ModelsConfig.max_chunk_tokens
    doc_max_new_tokens: int | None = None
    chunk_max_new_tokens: int | None = None
    #: rows x padded tokens per model batch (None: batch sizes alone limit the rows)
    doc_max_batch_tokens: int | None = None
    chunk_max_batch_tokens: int | None = None
    #: chunk-range guard: clip each chunk program's removals to its chunk (``prox_spark.pipeline.guard``)
    clip_chunk_programs: bool = ModelsConfig.clip_chunk_programs
    #: the doc stage keeps a page its model drops when the line refiner keeps this many words of it
    #: (``spare_main_text_pages``; 0: off; applies only with a line-refiner chunk model)
    doc_guard_words: int = ModelsConfig.doc_guard_words
    #: a line-refiner chunk model also removes each page's reader-comment section (``prox_spark.lines.comments``)
    drop_comment_sections: bool = ModelsConfig.drop_comment_sections
    #: ... and kept lines repeated right below themselves (``prox_spark.lines.doubled``)
    drop_doubled_lines: bool = ModelsConfig.drop_doubled_lines
    #: ... and stray fragments far smaller than the page's main text (``prox_spark.lines.fragments``)
    drop_stray_fragments: bool = ModelsConfig.drop_stray_fragments

    @property
    def page_cuts(self) -> PageCuts:
        """The line refiner's page cuts these settings ask for (``prox_spark.lines.cuts``)."""
        return PageCuts(
            comment_sections=self.drop_comment_sections, doubled_lines=self.drop_doubled_lines,
            stray_fragments=self.drop_stray_fragments,
        )

    def __post_init__(self) -> None:
        try:  # a threshold the dialect would ignore is refused here too, as in a job config
            self.executor.check_dialect(self.dialect)
        except ValueError as exc:
            raise ValueError(f"executor.{exc}") from None


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
        drop_doubled_lines=models.drop_doubled_lines,
        drop_stray_fragments=models.drop_stray_fragments,
    )


def serving_of(config: RefineConfig, stage: str, concurrent_tasks: int = 1) -> Serving:
    """How ``config`` serves ``stage``'s model in a process that runs ``concurrent_tasks`` tasks at once:
    ``prox-spark clean`` and the job's workers both take it from here (a worker adds its task's CUDA device)."""
    models = config.models
    return Serving(
        provider=models.provider, intra_op_threads=models.intra_op_threads, concurrent_tasks=concurrent_tasks,
        prefill_tokens=models.stage(stage).prefill_tokens,
    )
