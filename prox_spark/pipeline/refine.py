"""Refine a batch of documents end to end: doc programs → doc decision → chunk programs → final text.

Returns two frames: one row per document (the ``refined`` table's content) and one row per program
(the ``programs`` table's: the doc program, and one row per chunk with the ops that chunk's lines
produced). Documents dropped at the doc stage never reach the chunk model, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from prox_spark.pipeline.models import StageModel
from prox_spark.pipeline.stages import (
    ChunkProgram,
    DocMode,
    merge_programs,
    write_chunk_programs,
    write_doc_programs,
)
from prox_spark.programs import ExecutionResult, ExecutorConfig, Outcome, execute

DOC_COLUMNS = (
    "doc_id",
    "text",
    "kept",
    "drop_stage",
    "drop_reason",
    "program_ignored",
    "words_before",
    "words_after",
    "lines_before",
    "lines_after",
    "doc_program",
    "chunk_program",
)
PROGRAM_COLUMNS = (
    "doc_id",
    "stage",
    "chunk_index",
    "first_line",
    "last_line",
    "model_id",
    "program",
    "ops",
    "errors",
    "outcome",
    "reason",
    "words_before",
    "words_after",
    "lines_before",
    "lines_after",
    "prompt_tokens",
    "latency_ms",
    "clipped_ops",
    "model_program",
)


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


def refine_batch(
    doc_ids: Sequence[Any],
    texts: Sequence[str],
    doc_model: StageModel,
    chunk_model: StageModel,
    settings: RefineSettings = RefineSettings(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refine ``texts`` (one per ``doc_ids``); returns ``(documents, programs)`` frames."""
    texts = [t if isinstance(t, str) else "" for t in texts]
    doc_programs = write_doc_programs(
        doc_model, texts, mode=settings.doc_mode, batch_size=settings.doc_batch_size,
        max_new_tokens=settings.doc_max_new_tokens, max_batch_tokens=settings.doc_max_batch_tokens,
    )
    doc_results = [_run(t, p.program, "doc", settings) for t, p in zip(texts, doc_programs)]
    survivors = [i for i, r in enumerate(doc_results) if r.kept]
    chunk_programs = write_chunk_programs(
        chunk_model, [texts[i] for i in survivors], max_chunk_tokens=settings.max_chunk_tokens,
        batch_size=settings.chunk_batch_size, max_new_tokens=settings.chunk_max_new_tokens,
        clip=settings.clip_chunk_programs, max_batch_tokens=settings.chunk_max_batch_tokens,
    )
    chunks_of = dict(zip(survivors, chunk_programs))

    documents, programs = [], []
    for i, (doc_id, text) in enumerate(zip(doc_ids, texts)):
        doc_result, doc_program = doc_results[i], doc_programs[i]
        programs.append(_program_row(doc_id, "doc", None, doc_model.model_id, doc_program.program, doc_result,
                                     doc_result.ops, doc_program.prompt_tokens, doc_program.latency_ms))
        if i not in chunks_of:
            documents.append(_document_row(doc_id, doc_result, "doc", doc_program.program, None))
            continue
        merged = merge_programs(chunks_of[i])
        final = _run(text, merged, "chunk", settings)
        documents.append(_document_row(doc_id, final, "chunk", doc_program.program, merged))
        programs.extend(_chunk_rows(doc_id, chunk_model.model_id, chunks_of[i], final))
    return (
        pd.DataFrame.from_records(documents, columns=list(DOC_COLUMNS)),
        pd.DataFrame.from_records(programs, columns=list(PROGRAM_COLUMNS)),
    )


def _run(text: str, program: str, stage: str, settings: RefineSettings) -> ExecutionResult:
    return execute(text, program, stage=stage, dialect=settings.dialect, config=settings.executor)


def _document_row(doc_id: Any, result: ExecutionResult, stage: str, doc_program: str, chunk_program: str | None) -> dict:
    return {
        "doc_id": doc_id,
        "text": result.text,
        "kept": result.kept,
        "drop_stage": stage if result.dropped else None,
        "drop_reason": result.reason.value if result.dropped and result.reason else None,
        "program_ignored": result.outcome is Outcome.KEPT_ORIGINAL,
        "words_before": result.words_before,
        "words_after": result.words_after,
        "lines_before": result.lines_before,
        "lines_after": result.lines_after,
        "doc_program": doc_program,
        "chunk_program": chunk_program,
    }


def _program_row(doc_id, stage, chunk: ChunkProgram | None, model_id, program, result, ops, prompt_tokens, latency) -> dict:
    return {
        "doc_id": doc_id,
        "stage": stage,
        "chunk_index": None if chunk is None else chunk.chunk_index,
        "first_line": None if chunk is None else chunk.first_line,
        "last_line": None if chunk is None else chunk.last_line,
        "model_id": model_id,
        "program": program,
        "ops": [line.as_record() for line in ops],
        "errors": sum(line.errors for line in ops),
        "outcome": result.outcome.value,
        "reason": None if result.reason is None else result.reason.value,
        "words_before": result.words_before,
        "words_after": result.words_after,
        "lines_before": result.lines_before,
        "lines_after": result.lines_after,
        "prompt_tokens": prompt_tokens,
        "latency_ms": latency,
        "clipped_ops": 0 if chunk is None else chunk.clipped_ops,
        "model_program": None if chunk is None else chunk.model_program,
    }


def _chunk_rows(doc_id: Any, model_id: str, chunks: list[ChunkProgram], final: ExecutionResult) -> list[dict]:
    """One row per chunk with the ops its program lines produced (its range of the merged program)."""
    rows = []
    for chunk in chunks:
        end = chunk.program_line_offset + chunk.program_lines
        ops = [line for line in final.ops if chunk.program_line_offset <= line.index < end]
        rows.append(_program_row(doc_id, "chunk", chunk, model_id, chunk.program, final, ops,
                                 chunk.prompt_tokens, chunk.latency_ms))
    return rows
