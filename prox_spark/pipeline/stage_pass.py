"""Every configured stage over one batch of documents, kept as one column per stage result.

Each stage's full result is kept (the ``programs`` table has a row per stage and per chunk, and
``refined`` names the stage that dropped a document): ``pipeline.rows.table_rows`` builds both tables' rows
from these columns, in the job's stage pass and in ``refine_batch`` alike. Running all stages in one call
per batch lets the job cross the JVM/Python boundary once per document instead of once per stage. A stage
reads the text the previous stage kept; a document dropped earlier reaches it as ``""``, which costs no model
call.

``stage_pass`` is the one loop over the stages, so the hand-off between them is written once. Where a model
stage's programs come from is its ``ProgramSource``: the models (``ModelPrograms``, behind ``run_stages``) or
a run's stored programs (``prox_spark.pipeline.apply.StoredPrograms``, behind ``prox-spark apply``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Protocol, Sequence, TypeVar, Union

import pandas as pd
import pyarrow as pa

from prox_spark.pipeline.models import ChunkModel, StageModel
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.lines.refiner import LineRefiner
from prox_spark.pipeline.model_stages import (
    ChunkProgram, DocProgram, merge_programs, spare_main_text_pages, write_chunk_programs, write_doc_programs,
)
from prox_spark.programs import execute_batch
from prox_spark.programs.batch import EXECUTOR_RESULT_ARROW_TYPE, OPS_ARROW_TYPE
from prox_spark.rules import DEFAULT_PRESET, RULES_STAGE_COLUMNS, rules_stage_batch
from prox_spark.text import is_missing

STAGE_ORDER = ("rules", "doc", "chunk")

#: a ``DocProgram`` as Arrow (the ``doc`` column)
DOC_PROGRAM_ARROW_TYPE = pa.struct(
    [
        ("program", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("truncated", pa.bool_()),
        # main-text guard (models.doc_guard_words): the model's drop_doc() when the guard kept the page
        ("model_program", pa.string()),
    ]
)
#: a ``ChunkProgram`` as Arrow (an entry of the ``chunks`` column)
CHUNK_PROGRAM_ARROW_TYPE = pa.struct(
    [
        ("chunk_index", pa.int64()),
        ("first_line", pa.int64()),
        ("last_line", pa.int64()),
        ("program", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("oversize", pa.bool_()),
        ("truncated", pa.bool_()),
        # where this chunk's program lines start in the document's merged program
        ("program_line_offset", pa.int64()),
        ("program_lines", pa.int64()),
        # chunk-range guard (models.clip_chunk_programs): ops it clipped, and the model's own text
        ("clipped_ops", pa.int64()),
        ("model_program", pa.string()),
    ]
)
#: a ``rules_stage_batch`` row as Arrow (the ``rules_exec`` column); its ops are the executor's
RULES_RESULT_ARROW_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("kept", pa.bool_()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("rule", pa.string()),
        ("program", pa.string()),
        ("ops", OPS_ARROW_TYPE),
        ("words_before", pa.int64()),
        ("words_after", pa.int64()),
        ("lines_before", pa.int64()),
        ("lines_after", pa.int64()),
        ("latency_ms", pa.float64()),
    ]
)

#: the columns each stage adds, in order, as Arrow: the one definition of a stage's output (what the row builder,
#: ``pipeline.rows``, reads; the job's Spark pass returns the rows, not these columns).
STAGE_SCHEMAS: dict[str, pa.Schema] = {
    "rules": pa.schema([("rules_exec", RULES_RESULT_ARROW_TYPE)]),
    "doc": pa.schema([("doc", DOC_PROGRAM_ARROW_TYPE), ("doc_exec", EXECUTOR_RESULT_ARROW_TYPE)]),
    "chunk": pa.schema(
        [
            ("chunks", pa.list_(CHUNK_PROGRAM_ARROW_TYPE)),
            ("chunk_program", pa.string()),
            ("chunk_exec", EXECUTOR_RESULT_ARROW_TYPE),
        ]
    ),
}
#: the columns each stage adds, in order
STAGE_COLUMNS = {stage: tuple(schema.names) for stage, schema in STAGE_SCHEMAS.items()}
#: every stage column's Arrow type, by name
STAGE_ARROW_TYPES: dict[str, pa.DataType] = {
    field.name: field.type for schema in STAGE_SCHEMAS.values() for field in schema
}
DOC_PROGRAM_FIELDS = tuple(f.name for f in fields(DocProgram))


def _check_record_types() -> None:
    """The records' fields are written twice (dataclass, Arrow type) so each reads on its own: fail at import
    if they part (``tests/test_udf_staged.py`` checks the same, and that the tables' Spark types stay)."""
    for arrow_type, names, record in (
        (DOC_PROGRAM_ARROW_TYPE, DOC_PROGRAM_FIELDS, "DocProgram"),
        (CHUNK_PROGRAM_ARROW_TYPE, tuple(f.name for f in fields(ChunkProgram)), "ChunkProgram"),
        (RULES_RESULT_ARROW_TYPE, RULES_STAGE_COLUMNS, "RULES_STAGE_COLUMNS"),
    ):
        arrow_names = tuple(field.name for field in arrow_type)
        if arrow_names != tuple(names):
            raise ImportError(f"the Arrow type of {record} names {list(arrow_names)}, the record {list(names)}")


_check_record_types()

#: a struct column as a DataFrame (one column per field, as pandas UDFs return structs), else a Series
StagedColumn = Union[pd.DataFrame, pd.Series]


def staged_columns(stages: Sequence[str]) -> tuple[str, ...]:
    """The columns ``run_stages`` returns for ``stages``, in stage order; an unknown stage fails."""
    unknown = sorted(set(stages) - set(STAGE_ORDER))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}: expected some of {STAGE_ORDER}")
    return tuple(column for stage in STAGE_ORDER if stage in stages for column in STAGE_COLUMNS[stage])


class ProgramSource(Protocol):
    """Where the model stages' programs come from. Each method gets what the stage reads, one text per document
    (``""`` for a document dropped earlier), and returns one entry per text; None: this source has no program
    for that document (a stored run that never reached it), which ``stage_pass`` reports in ``missing``."""

    def doc_programs(self, texts: list[str]) -> Sequence[DocProgram | None]: ...

    def chunk_programs(self, texts: list[str]) -> Sequence[list[ChunkProgram] | None]: ...


@dataclass(frozen=True)
class ModelPrograms:
    """The models write the programs (the refine job, ``prox-spark clean``)."""

    settings: RefineSettings
    doc_model: StageModel | None = None
    chunk_model: ChunkModel | None = None
    #: the doc stage's main-text guard (``spare_main_text_pages``): on when the line refiner runs the chunk stage
    spare_main_text: bool = False

    def doc_programs(self, texts: list[str]) -> list[DocProgram]:
        if self.doc_model is None:
            raise ValueError("the doc stage needs doc_model")
        s = self.settings
        programs = write_doc_programs(
            self.doc_model, texts, mode=s.doc_mode, batch_size=s.doc_batch_size,
            max_new_tokens=s.doc_max_new_tokens, max_batch_tokens=s.doc_max_batch_tokens,
        )
        if self.spare_main_text and isinstance(self.chunk_model, LineRefiner):
            programs = spare_main_text_pages(
                programs, texts, self.chunk_model, s.doc_guard_words, cuts=s.page_cuts,
            )
        return programs

    def chunk_programs(self, texts: list[str]) -> list[list[ChunkProgram]]:
        if self.chunk_model is None:
            raise ValueError("the chunk stage needs chunk_model")
        s = self.settings
        return write_chunk_programs(
            self.chunk_model, texts, max_chunk_tokens=s.max_chunk_tokens, batch_size=s.chunk_batch_size,
            max_new_tokens=s.chunk_max_new_tokens, clip=s.clip_chunk_programs,
            max_batch_tokens=s.chunk_max_batch_tokens, cuts=s.page_cuts,
        )


@dataclass(frozen=True)
class StagedBatch:
    """``stage_pass``' columns for a batch, and which documents it could not stage."""

    columns: dict[str, StagedColumn]
    #: per document, the first model stage it reached without a program from the source (None: it had every one)
    missing: list[str | None]


def run_stages(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings = RefineSettings(),
    *,
    rules_preset: str = DEFAULT_PRESET,
    doc_model: StageModel | None = None,
    chunk_model: ChunkModel | None = None,
) -> dict[str, StagedColumn]:
    """Run ``stages`` (in ``STAGE_ORDER``) over ``texts`` with the models; returns ``staged_columns(stages)`` by name.

    ``rules_exec``, ``doc_exec``, ``chunk_exec``: executor/rule results (``RULES_STAGE_COLUMNS``,
    ``BATCH_COLUMNS``) as DataFrames; ``doc``: the doc programs (``DocProgram`` fields); ``chunks``: per
    document, its ``ChunkProgram`` records in chunk order; ``chunk_program``: their merged program.
    """
    models = ModelPrograms(settings, doc_model, chunk_model, spare_main_text="chunk" in stages)
    return stage_pass(texts, stages, settings, rules_preset=rules_preset, programs=models).columns


def stage_pass(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings,
    *,
    rules_preset: str,
    programs: ProgramSource,
) -> StagedBatch:
    """Run ``stages`` (in ``STAGE_ORDER``) over ``texts`` with the model stages' programs from ``programs`` and
    ``settings``' executor: the columns ``run_stages`` describes, and per document the stage whose program
    ``programs`` did not have (the document's columns from that stage on are placeholders, not results)."""
    columns = staged_columns(stages)
    out: dict[str, StagedColumn] = {}
    current = [None if is_missing(t) else t for t in texts]  # what the next stage reads
    reached = [True] * len(current)
    missing: list[str | None] = [None] * len(current)
    if "rules" in stages:
        rules = rules_stage_batch(current, rules_preset)
        out["rules_exec"] = rules
        current, reached = _hand_off(rules["text"].tolist(), rules["kept"].tolist(), missing)
    if "doc" in stages:
        doc = _reached_programs(programs.doc_programs(_model_texts(current)), reached, missing, "doc", _no_doc_program)
        out["doc"] = pd.DataFrame.from_records([asdict(p) for p in doc], columns=list(DOC_PROGRAM_FIELDS))
        doc_exec = _execute(current, [p.program for p in doc], "doc", settings)
        out["doc_exec"] = doc_exec
        current, reached = _hand_off(current, doc_exec["kept"].tolist(), missing)
    if "chunk" in stages:
        per_doc = _reached_programs(programs.chunk_programs(_model_texts(current)), reached, missing, "chunk", list)
        merged = [merge_programs(chunks) for chunks in per_doc]
        out["chunks"] = pd.Series([[asdict(chunk) for chunk in chunks] for chunks in per_doc], dtype=object)
        out["chunk_program"] = pd.Series(merged, dtype=object)
        out["chunk_exec"] = _execute(current, merged, "chunk", settings)
    return StagedBatch({column: out[column] for column in columns}, missing)


def _hand_off(texts: list, kept: list, missing: list[str | None]) -> tuple[list, list[bool]]:
    """What the next stage reads, and which documents reach it: the text of a document the stage kept and could
    stage, else ``""`` (a document dropped here costs the later stages no model call)."""
    reached = [bool(k) and m is None for k, m in zip(kept, missing)]
    return [t if alive else "" for t, alive in zip(texts, reached)], reached


P = TypeVar("P")


def _reached_programs(
    written: Sequence[P | None], reached: list[bool], missing: list[str | None], stage: str, empty: Callable[[], P],
) -> list[P]:
    """A stage's programs: ``empty()`` for a document that did not reach the stage; for one that did but has no
    program from the source, ``empty()`` too, with ``missing`` naming the stage."""
    programs = []
    for i, (program, alive) in enumerate(zip(written, reached)):
        if alive and program is None:
            missing[i] = stage
        programs.append(program if alive and program is not None else empty())
    return programs


def _no_doc_program() -> DocProgram:
    return DocProgram("", 0, 0.0)


def _execute(texts: list, programs: list[str], stage: str, settings: RefineSettings) -> pd.DataFrame:
    return execute_batch(texts, programs, stage=stage, dialect=settings.dialect, config=settings.executor)


def _model_texts(texts: list) -> list[str]:
    """What a model stage reads: null (a document with no text) as blank, which gets no model call."""
    return [t if isinstance(t, str) else "" for t in texts]
