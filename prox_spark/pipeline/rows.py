"""The output rows of a staged batch, built once: per document its ``refined`` row and its ``programs`` rows.

Why here: the rules that turn a batch's stage results (``stage_pass``' columns) into table rows are written
once, in the core. The first stage that dropped a document decides its ``refined`` row, else the last stage;
a document has a ``programs`` row per stage it reached (rules, doc) and one per chunk, each chunk row with the
ops its own lines of the merged program produced (``program_line_offset``). The Spark pass
(``udfs.stage_pass``, ``udfs.apply``) returns these rows as two Arrow columns from the same Python pass that
ran the stages, and the job only selects, explodes and writes them (``udfs.refine_plan``); ``refine_batch``
(``prox-spark clean``, notebooks) turns the same rows into frames.

The rows leave the document id out: they line up with the batch's documents by position and the caller owns
the key (the job's ``doc_id`` column, ``refine_batch``'s ``doc_ids``), so ids of any type pass through and the
staged rows never repeat a column the job already has.

Their fields are declared once, here (``REFINED_ROW_FIELDS``, ``PROGRAM_ROW_FIELDS``: name, Arrow type and the
description of the table column it fills): ``ROWS_SCHEMA`` is built from them, the job's Spark types from that
(``udfs.stage_pass.ROW_TYPES``), and the ``refined`` and ``programs`` tables take their columns from them too
(``udfs.tables``), so a new column of either table is its field here and its value in ``table_rows``.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import pandas as pd
import pyarrow as pa

from prox_spark.pipeline.stages import STAGE_ORDER, STAGES, ModelStage, Stage, stages_in_order
from prox_spark.pipeline.stages.base import StageRecord, StagedColumn
from prox_spark.programs.batch import OPS_ARROW_TYPE


class RowField(NamedTuple):
    """One field of a table row, declared once: its name, the Arrow type the row builder fills, and the description
    of the column it becomes (``udfs.tables`` derives the ``refined`` and ``programs`` columns from these, Spark
    type and comment alike; a row-only field is a column of ``refine_batch``'s frames alone)."""

    name: str
    type: pa.DataType
    description: str


#: a document's ``refined`` row (without its id): its final text and outcome, and each stage's program (null
#: for a stage it did not reach; the table keeps the programs in ``programs``, ``refine_batch`` shows them)
REFINED_ROW_FIELDS: tuple[RowField, ...] = (
    RowField("text", pa.string(), "Final text after both stages; empty string when dropped."),
    RowField("kept", pa.bool_(), "True when the document survives refining."),
    RowField("drop_stage", pa.string(), "Stage that dropped the document (rules, doc, chunk) or null."),
    RowField("drop_reason", pa.string(), "Why it was dropped (doc_program_drop, kept_fraction_too_low, too_few_words, or the rule's reason: gopher_*, c4_*, fineweb_*, ...)."),
    RowField("program_ignored", pa.bool_(), "True when the chunk program had too many errors and the doc-stage text was kept."),
    RowField("words_before", pa.int64(), "Words (str.split) of the input text."),
    RowField("words_after", pa.int64(), "Words of the final text."),
    RowField("lines_before", pa.int64(), "Lines of the input text."),
    RowField("lines_after", pa.int64(), "Lines of the final text."),
    # each stage's program (``Stage.refined_program``), in stage order: ``rules_program``, ``doc_program``, ...
    *(RowField(f"{stage.name}_program", pa.string(), f"The {stage.name} stage's program; null when the document did not reach it.")
      for stage in STAGES),
)
#: the ``refined`` row's fields its table leaves out: each stage's program, which the ``programs`` table holds
REFINED_ROW_ONLY_FIELDS: frozenset[str] = frozenset(f"{stage.name}_program" for stage in STAGES)
REFINED_ROW_ARROW_TYPE = pa.struct([(field.name, field.type) for field in REFINED_ROW_FIELDS])
#: one ``programs`` row (without the document's id): a stage's program, or a chunk's, and what it did
PROGRAM_ROW_FIELDS: tuple[RowField, ...] = (
    RowField("stage", pa.string(), "rules, doc or chunk."),
    RowField("chunk_index", pa.int64(), "Chunk number within the document (chunk stage), null for the doc stage."),
    RowField("first_line", pa.int64(), "First document line of the chunk (0-based)."),
    RowField("last_line", pa.int64(), "Last document line of the chunk (inclusive)."),
    RowField("model_id", pa.string(), "Refining model id from its manifest; rules:<preset> for the rules stage."),
    RowField("program", pa.string(), "Program text as generated."),
    RowField("ops", OPS_ARROW_TYPE, "Parsed program lines with per-op status (applied, not_found, out_of_range, parse_error, ignored, skipped)."),
    RowField("errors", pa.int64(), "Errors counted for this program's lines."),
    RowField("outcome", pa.string(), "Document outcome after this stage: kept, kept_original, dropped."),
    RowField("reason", pa.string(), "Drop reason or too_many_errors after this stage."),
    RowField("words_before", pa.int64(), "Document words before this stage."),
    RowField("words_after", pa.int64(), "Document words after this stage."),
    RowField("lines_before", pa.int64(), "Document lines before this stage."),
    RowField("lines_after", pa.int64(), "Document lines after this stage."),
    RowField("prompt_tokens", pa.int64(), "Tokens in the model prompt."),
    RowField("latency_ms", pa.float64(), "Model time attributed to this program (batch time ÷ batch size)."),
    RowField("clipped_ops", pa.int64(), "Chunk stage with models.clip_chunk_programs: remove_lines ops the chunk-range guard narrowed to the chunk's lines or dropped (0 otherwise)."),
    RowField("model_program", pa.string(), "The model's own program when a guard rewrote it (`program` then holds what ran): a chunk program the chunk-range guard clipped, a doc stage drop_doc() that models.doc_guard_words turned into keep_doc(), or a line refiner's program before its page cuts (models.drop_comment_sections, models.drop_stray_fragments) removed lines; null otherwise."),
)
PROGRAM_ROW_ARROW_TYPE = pa.struct([(field.name, field.type) for field in PROGRAM_ROW_FIELDS])
#: what ``table_rows`` returns, one entry per document: its ``refined`` row and its list of ``programs`` rows
ROWS_SCHEMA = pa.schema([("refined", REFINED_ROW_ARROW_TYPE), ("programs", pa.list_(PROGRAM_ROW_ARROW_TYPE))])
#: the executor/rule result fields a program row repeats from its stage's result
PROGRAM_RESULT_FIELDS = ("outcome", "reason", "words_before", "words_after", "lines_before", "lines_after")


def rules_model_id(preset: str) -> str:
    """The rules stage's ``model_id`` in the programs table: ``rules:<preset>``."""
    return f"rules:{preset}"


def stage_model_ids(rules_preset: str, model_ids: Mapping[str, str]) -> dict[str, str]:
    """The ``model_id`` each stage's program rows carry, for every stage of ``STAGES``: ``rules:<preset>`` for
    the rules, a model stage's model's manifest id from ``model_ids`` (by stage name; ``""`` for one not given,
    a stage the run does not reach a model for), ``""`` for any other stage."""
    unknown = sorted(set(model_ids) - {stage.name for stage in STAGES if isinstance(stage, ModelStage)})
    if unknown:
        raise ValueError(f"model ids for {unknown}, which are not model stages")
    return {stage.name: model_ids.get(stage.name, "") for stage in STAGES} | {"rules": rules_model_id(rules_preset)}


def table_rows(
    columns: Mapping[str, StagedColumn], stages: Sequence[str], model_ids: Mapping[str, str]
) -> pa.RecordBatch:
    """The rows of ``columns`` (``stage_pass``' columns for ``stages``), one entry per document: ``ROWS_SCHEMA``.

    ``model_ids``: the ``model_id`` of each stage's program rows (``stage_model_ids``)."""
    order = stages_in_order(stages)
    if not order:
        raise ValueError("no stage to build rows from")
    missing = sorted({column for stage in order for column in stage.columns} - set(columns))
    if missing:
        raise ValueError(f"staged columns {missing} missing for stages {[stage.name for stage in order]}")
    records = {stage.name: _records(columns, stage) for stage in order}
    no_programs = {f"{name}_program": None for name in STAGE_ORDER}
    refined, programs = [], []
    for i in range(len(records[order[0].name])):
        reached = _reached(order, records, i)
        first, final = _result(records, order[0], i), _result(records, reached[-1], i)
        drop_stage = None if final["kept"] else reached[-1].name
        refined.append({
            "text": final["text"],
            "kept": bool(final["kept"]),
            "drop_stage": drop_stage,
            "drop_reason": final["reason"] if drop_stage else None,
            "program_ignored": final["outcome"] == "kept_original",
            "words_before": first["words_before"],
            "words_after": final["words_after"],
            "lines_before": first["lines_before"],
            "lines_after": final["lines_after"],
            **no_programs,
            **{f"{stage.name}_program": stage.refined_program(records[stage.name][i]) for stage in reached},
        })
        rows: list[dict[str, Any]] = []
        for stage in reached:
            result = _result(records, stage, i)
            common = {"stage": stage.name, "model_id": model_ids[stage.name],
                      **{f: result[f] for f in PROGRAM_RESULT_FIELDS}}
            rows.extend({**common, **own} for own in stage.program_rows(records[stage.name][i]))
        programs.append(rows)
    return pa.RecordBatch.from_arrays(
        [pa.array(refined, REFINED_ROW_ARROW_TYPE, from_pandas=True),
         pa.array(programs, ROWS_SCHEMA.field("programs").type, from_pandas=True)],
        schema=ROWS_SCHEMA,
    )


def _records(columns: Mapping[str, StagedColumn], stage: Stage) -> list[dict[str, Any]]:
    """Per document, ``stage``'s columns by name (a struct column's value as a dict of its fields)."""
    values = {
        name: columns[name].to_dict("records") if isinstance(columns[name], pd.DataFrame) else columns[name].tolist()
        for name in stage.columns
    }
    return [dict(zip(values, document)) for document in zip(*values.values())]


def _result(records: Mapping[str, list[StageRecord]], stage: Stage, i: int) -> StageRecord:
    """Document ``i``'s result of ``stage``, as the executor reports one."""
    return records[stage.name][i][stage.result_column]


def _reached(order: list[Stage], records: Mapping[str, list[StageRecord]], i: int) -> list[Stage]:
    """The stages document ``i`` reached, in order: every stage up to the first that dropped it."""
    reached = []
    for stage in order:
        reached.append(stage)
        if not _result(records, stage, i)["kept"]:
            break
    return reached
