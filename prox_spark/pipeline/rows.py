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
staged rows never repeat a column the job already has. ``ROWS_SCHEMA`` is the one definition of their types:
the job's Spark types are derived from it (``udfs.stage_pass.ROW_TYPES``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
import pyarrow as pa

from prox_spark.pipeline.stages import STAGE_ORDER, STAGES, Stage, stages_in_order
from prox_spark.pipeline.stages.base import StageRecord, StagedColumn
from prox_spark.programs.batch import OPS_ARROW_TYPE

#: a document's ``refined`` row (without its id): its final text and outcome, and each stage's program (null
#: for a stage it did not reach; the table keeps the programs in ``programs``, ``refine_batch`` shows them)
REFINED_ROW_ARROW_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("kept", pa.bool_()),
        ("drop_stage", pa.string()),
        ("drop_reason", pa.string()),
        ("program_ignored", pa.bool_()),
        ("words_before", pa.int64()),
        ("words_after", pa.int64()),
        ("lines_before", pa.int64()),
        ("lines_after", pa.int64()),
        # each stage's program (``Stage.refined_program``), in stage order: ``rules_program``, ``doc_program``, ...
        *((f"{stage.name}_program", pa.string()) for stage in STAGES),
    ]
)
#: one ``programs`` row (without the document's id): a stage's program, or a chunk's, and what it did
PROGRAM_ROW_ARROW_TYPE = pa.struct(
    [
        ("stage", pa.string()),
        ("chunk_index", pa.int64()),
        ("first_line", pa.int64()),
        ("last_line", pa.int64()),
        ("model_id", pa.string()),
        ("program", pa.string()),
        ("ops", OPS_ARROW_TYPE),
        ("errors", pa.int64()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("words_before", pa.int64()),
        ("words_after", pa.int64()),
        ("lines_before", pa.int64()),
        ("lines_after", pa.int64()),
        ("prompt_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("clipped_ops", pa.int64()),
        ("model_program", pa.string()),
    ]
)
#: what ``table_rows`` returns, one entry per document: its ``refined`` row and its list of ``programs`` rows
ROWS_SCHEMA = pa.schema([("refined", REFINED_ROW_ARROW_TYPE), ("programs", pa.list_(PROGRAM_ROW_ARROW_TYPE))])
#: the executor/rule result fields a program row repeats from its stage's result
PROGRAM_RESULT_FIELDS = ("outcome", "reason", "words_before", "words_after", "lines_before", "lines_after")


def rules_model_id(preset: str) -> str:
    """The rules stage's ``model_id`` in the programs table: ``rules:<preset>``."""
    return f"rules:{preset}"


def stage_model_ids(rules_preset: str, doc_model_id: str = "", chunk_model_id: str = "") -> dict[str, str]:
    """The ``model_id`` each stage's program rows carry: ``rules:<preset>``, and the models' manifest ids."""
    return {"rules": rules_model_id(rules_preset), "doc": doc_model_id, "chunk": chunk_model_id}


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
