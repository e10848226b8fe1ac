"""The output rows of a staged batch, built once: per document its ``refined`` row and its ``programs`` rows.

Why here: the rules that turn a batch's stage results (``stage_pass``' columns) into table rows are written
once, in the core. The first stage that dropped a document decides its ``refined`` row, else the last stage;
a document has a ``programs`` row per stage it reached (rules, doc) and one per chunk, each chunk row with the
ops its own lines of the merged program produced (``program_line_offset``). The Spark pass
(``udfs.stage_pass``, ``udfs.apply``) returns these rows as two Arrow columns from the same Python pass that
ran the stages, and the job only selects, explodes and writes them (``jobs.refine_plan``); ``refine_batch``
(``prox-spark clean``, notebooks) turns the same rows into frames.

The rows leave the document id out: they line up with the batch's documents by position and the caller owns
the key (the job's ``doc_id`` column, ``refine_batch``'s ``doc_ids``), so ids of any type pass through and the
staged rows never repeat a column the job already has. ``ROWS_SCHEMA`` is the one definition of their types:
the job's Spark types are derived from it (``udfs.stage_pass.ROW_TYPES``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pyarrow as pa

from prox_spark.pipeline.stage_pass import STAGE_ORDER, StagedColumn, staged_columns
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
        ("rules_program", pa.string()),
        ("doc_program", pa.string()),
        ("chunk_program", pa.string()),
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
#: the fields of a program row that belong to a chunk: null on a whole-document (rules, doc) row
_WHOLE_DOCUMENT = {"chunk_index": None, "first_line": None, "last_line": None, "clipped_ops": 0, "model_program": None}


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
    order = [stage for stage in STAGE_ORDER if stage in stages]
    if not order:
        raise ValueError("no stage to build rows from")
    missing = sorted(set(staged_columns(order)) - set(columns))
    if missing:
        raise ValueError(f"staged columns {missing} missing for stages {order}")
    results = {stage: columns[f"{stage}_exec"].to_dict("records") for stage in order}
    doc = columns["doc"].to_dict("records") if "doc" in order else []
    chunks = columns["chunks"].tolist() if "chunk" in order else []
    chunk_program = columns["chunk_program"].tolist() if "chunk" in order else []
    refined, programs = [], []
    for i in range(len(results[order[0]])):
        reached = _reached(order, results, i)
        final = results[reached[-1]][i]
        drop_stage = None if final["kept"] else reached[-1]
        first = results[order[0]][i]
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
            "rules_program": first["program"] if order[0] == "rules" else None,
            "doc_program": doc[i]["program"] if "doc" in reached else None,
            "chunk_program": chunk_program[i] if "chunk" in reached else None,
        })
        rows: list[dict[str, Any]] = []
        for stage in reached:
            result = results[stage][i]
            common = {"stage": stage, "model_id": model_ids[stage], **{f: result[f] for f in PROGRAM_RESULT_FIELDS}}
            if stage == "rules":
                rows.append({**common, **_WHOLE_DOCUMENT, "program": result["program"], "ops": result["ops"],
                             "errors": 0, "prompt_tokens": None, "latency_ms": result["latency_ms"]})
            elif stage == "doc":
                rows.append({**common, **_WHOLE_DOCUMENT, "program": doc[i]["program"], "ops": result["ops"],
                             "errors": result["errors"], "prompt_tokens": doc[i]["prompt_tokens"],
                             "latency_ms": doc[i]["latency_ms"], "model_program": doc[i]["model_program"]})
            else:
                rows.extend({**common, **_chunk_row(chunk, result["ops"])} for chunk in chunks[i])
        programs.append(rows)
    return pa.RecordBatch.from_arrays(
        [pa.array(refined, REFINED_ROW_ARROW_TYPE, from_pandas=True),
         pa.array(programs, ROWS_SCHEMA.field("programs").type, from_pandas=True)],
        schema=ROWS_SCHEMA,
    )


def _reached(order: list[str], results: Mapping[str, list[dict[str, Any]]], i: int) -> list[str]:
    """The stages document ``i`` reached, in order: every stage up to the first that dropped it."""
    reached = []
    for stage in order:
        reached.append(stage)
        if not results[stage][i]["kept"]:
            break
    return reached


def _chunk_row(chunk: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A chunk's program row: its own lines of the merged program (``merge_programs``), so it shows its own ops."""
    start, stop = chunk["program_line_offset"], chunk["program_line_offset"] + chunk["program_lines"]
    own = [op for op in ops if start <= op["line"] < stop]
    return {
        "chunk_index": chunk["chunk_index"], "first_line": chunk["first_line"], "last_line": chunk["last_line"],
        "program": chunk["program"], "ops": own, "errors": sum(op["errors"] for op in own),
        "prompt_tokens": chunk["prompt_tokens"], "latency_ms": chunk["latency_ms"],
        "clipped_ops": chunk["clipped_ops"], "model_program": chunk["model_program"],
    }
