"""How the refining stages run, shared by the Spark job (``run_stages``) and the plain path (``refine_batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
