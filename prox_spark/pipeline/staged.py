"""Every configured stage over one batch of documents, kept as one column per stage result.

Each stage's full result is kept (the ``programs`` table has a row per stage and per chunk, and
``refined`` names the stage that dropped a document): the Spark job persists these columns and derives
both tables from them in Spark, ``refine_batch`` derives the same rows in pandas. Running all
stages in one call per batch lets the job cross the JVM/Python boundary once per document instead of
once per stage. A stage reads the text the previous stage kept; a document dropped earlier reaches it as
``""``, which costs no model call.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Sequence, Union

import pandas as pd

from prox_spark.pipeline.models import ChunkModel, StageModel
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.lines.refiner import LineRefiner
from prox_spark.pipeline.stages import (
    DocProgram, merge_programs, spare_main_text_pages, write_chunk_programs, write_doc_programs,
)
from prox_spark.programs import execute_batch
from prox_spark.rules import rules_stage_batch

STAGE_ORDER = ("rules", "doc", "chunk")
#: the columns each stage adds, in order
STAGE_COLUMNS = {
    "rules": ("rules_exec",),
    "doc": ("doc", "doc_exec"),
    "chunk": ("chunks", "chunk_program", "chunk_exec"),
}
DOC_PROGRAM_FIELDS = tuple(f.name for f in fields(DocProgram))

#: a struct column as a DataFrame (one column per field, as pandas UDFs return structs), else a Series
StagedColumn = Union[pd.DataFrame, pd.Series]


def staged_columns(stages: Sequence[str]) -> tuple[str, ...]:
    """The columns ``run_stages`` returns for ``stages``, in stage order; an unknown stage fails."""
    unknown = sorted(set(stages) - set(STAGE_ORDER))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}: expected some of {STAGE_ORDER}")
    return tuple(column for stage in STAGE_ORDER if stage in stages for column in STAGE_COLUMNS[stage])


def run_stages(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings = RefineSettings(),
    *,
    rules_preset: str = "gopher_c4_fineweb",
    doc_model: StageModel | None = None,
    chunk_model: ChunkModel | None = None,
) -> dict[str, StagedColumn]:
    """Run ``stages`` (in ``STAGE_ORDER``) over ``texts``; returns ``staged_columns(stages)`` by name.

    ``rules_exec``, ``doc_exec``, ``chunk_exec``: executor/rule results (``RULES_STAGE_COLUMNS``,
    ``BATCH_COLUMNS``) as DataFrames; ``doc``: the doc programs (``DocProgram`` fields); ``chunks``: per
    document, its ``ChunkProgram`` records in chunk order; ``chunk_program``: their merged program.
    """
    columns = staged_columns(stages)
    out: dict[str, StagedColumn] = {}
    current = [None if _missing(t) else t for t in texts]  # what the next stage reads
    if "rules" in stages:
        rules = rules_stage_batch(current, rules_preset)
        out["rules_exec"] = rules
        current = [t if kept else "" for t, kept in zip(rules["text"].tolist(), rules["kept"].tolist())]
    if "doc" in stages:
        if doc_model is None:
            raise ValueError("the doc stage needs doc_model")
        programs = write_doc_programs(
            doc_model, _model_texts(current), mode=settings.doc_mode, batch_size=settings.doc_batch_size,
            max_new_tokens=settings.doc_max_new_tokens, max_batch_tokens=settings.doc_max_batch_tokens,
        )
        if "chunk" in stages and isinstance(chunk_model, LineRefiner):
            programs = spare_main_text_pages(
                programs, _model_texts(current), chunk_model, settings.doc_guard_words,
                drop_comments=settings.drop_comment_sections,
            )
        out["doc"] = pd.DataFrame.from_records([asdict(p) for p in programs], columns=list(DOC_PROGRAM_FIELDS))
        doc_exec = _execute(current, [p.program for p in programs], "doc", settings)
        out["doc_exec"] = doc_exec
        current = [t if kept else "" for t, kept in zip(current, doc_exec["kept"].tolist())]
    if "chunk" in stages:
        if chunk_model is None:
            raise ValueError("the chunk stage needs chunk_model")
        per_doc = write_chunk_programs(
            chunk_model, _model_texts(current), max_chunk_tokens=settings.max_chunk_tokens,
            batch_size=settings.chunk_batch_size, max_new_tokens=settings.chunk_max_new_tokens,
            clip=settings.clip_chunk_programs, max_batch_tokens=settings.chunk_max_batch_tokens,
            drop_comments=settings.drop_comment_sections,
        )
        merged = [merge_programs(chunks) for chunks in per_doc]
        out["chunks"] = pd.Series([[asdict(chunk) for chunk in chunks] for chunks in per_doc], dtype=object)
        out["chunk_program"] = pd.Series(merged, dtype=object)
        out["chunk_exec"] = _execute(current, merged, "chunk", settings)
    return {column: out[column] for column in columns}


def _execute(texts: list, programs: list[str], stage: str, settings: RefineSettings) -> pd.DataFrame:
    return execute_batch(texts, programs, stage=stage, dialect=settings.dialect, config=settings.executor)


def _model_texts(texts: list) -> list[str]:
    """What a model stage reads: null (a document with no text) as blank, which gets no model call."""
    return [t if isinstance(t, str) else "" for t in texts]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
