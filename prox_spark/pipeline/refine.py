"""Refine a batch of documents end to end without Spark: ``run_stages``, folded into table rows.

Returns two frames with the rows the Spark job writes to its ``refined`` and ``programs`` tables (there
``jobs.refine_plan`` derives them from the same ``run_stages`` columns in Spark): one row per document,
decided by the first stage that dropped it, else by the last stage; and one row per stage a document
reached (rules, doc) plus one per chunk, each chunk row with the ops its own program lines produced.
Documents dropped by a stage never reach the later ones' models, as in the reference.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from prox_spark.pipeline.models import ChunkModel, StageModel
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.stage_pass import STAGE_ORDER, run_stages
from prox_spark.rules import DEFAULT_PRESET

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
    "rules_program",
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
#: the executor/rule result fields a program row repeats from its stage's result (here and in the job's plan)
PROGRAM_RESULT_FIELDS = ("outcome", "reason", "words_before", "words_after", "lines_before", "lines_after")


def refine_batch(
    doc_ids: Sequence[Any],
    texts: Sequence[Any],
    doc_model: StageModel | None = None,
    chunk_model: ChunkModel | None = None,
    settings: RefineSettings = RefineSettings(),
    *,
    stages: Sequence[str] = ("doc", "chunk"),
    rules_preset: str = DEFAULT_PRESET,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refine ``texts`` (one per ``doc_ids``) through ``stages``; returns ``(documents, programs)`` frames.

    ``stages`` as ``pipeline.mode`` names them (``prox_spark.config.PIPELINE_STAGES``); the rules stage's
    program rows carry ``rules:<preset>`` as their model id, as the job's do.
    """
    if len(doc_ids) != len(texts):
        raise ValueError(f"{len(doc_ids)} doc_ids but {len(texts)} texts")
    columns = run_stages(
        texts, stages, settings, rules_preset=rules_preset, doc_model=doc_model, chunk_model=chunk_model
    )
    order = [stage for stage in STAGE_ORDER if stage in stages]
    results = {stage: columns[f"{stage}_exec"].to_dict("records") for stage in order}
    reached = _reached(order, results, len(texts))
    model_ids = {
        "rules": f"rules:{rules_preset}",
        "doc": doc_model.model_id if doc_model else "",
        "chunk": chunk_model.model_id if chunk_model else "",
    }
    documents, programs = [], []
    for i, doc_id in enumerate(doc_ids):
        documents.append(_document_row(doc_id, i, order, results, reached, columns))
        for stage in order:
            if reached[stage][i]:
                programs.extend(_program_rows(doc_id, i, stage, model_ids[stage], results[stage][i], columns))
    return (
        pd.DataFrame.from_records(documents, columns=list(DOC_COLUMNS)),
        pd.DataFrame.from_records(programs, columns=list(PROGRAM_COLUMNS)),
    )


def _reached(order: list[str], results: dict[str, list[dict]], n: int) -> dict[str, np.ndarray]:
    """Per stage, which documents it saw: those every earlier stage kept."""
    alive = np.ones(n, dtype=bool)
    reached = {}
    for stage in order:
        reached[stage] = alive.copy()
        alive &= np.array([bool(r["kept"]) for r in results[stage]], dtype=bool)
    return reached


def _document_row(doc_id, i, order, results, reached, columns) -> dict:
    """The first stage that dropped the document decides its row, else the last stage's result."""
    drop_stage = next((s for s in order if reached[s][i] and not results[s][i]["kept"]), None)
    final = results[drop_stage or order[-1]][i]
    first = results[order[0]][i]

    def program(stage: str, column: str, field: str | None = None) -> str | None:
        if stage not in order or not reached[stage][i]:
            return None
        value = columns[column].iloc[i]
        return value if field is None else value[field]

    return {
        "doc_id": doc_id,
        "text": final["text"],
        "kept": bool(final["kept"]),
        "drop_stage": drop_stage,
        "drop_reason": final["reason"] if drop_stage else None,
        "program_ignored": final["outcome"] == "kept_original",
        "words_before": first["words_before"],
        "words_after": final["words_after"],
        "lines_before": first["lines_before"],
        "lines_after": final["lines_after"],
        "rules_program": program("rules", "rules_exec", "program"),
        "doc_program": program("doc", "doc", "program"),
        "chunk_program": program("chunk", "chunk_program"),
    }


def _program_rows(doc_id, i, stage: str, model_id: str, result: dict, columns) -> list[dict]:
    common = {"doc_id": doc_id, "stage": stage, "model_id": model_id, **{f: result[f] for f in PROGRAM_RESULT_FIELDS}}
    whole_document = {"chunk_index": None, "first_line": None, "last_line": None, "clipped_ops": 0, "model_program": None}
    if stage == "rules":
        return [{**common, **whole_document, "program": result["program"], "ops": result["ops"], "errors": 0,
                 "prompt_tokens": None, "latency_ms": result["latency_ms"]}]
    if stage == "doc":
        doc = columns["doc"].iloc[i]
        return [{**common, **whole_document, "program": doc["program"], "ops": result["ops"],
                 "errors": result["errors"], "prompt_tokens": doc["prompt_tokens"], "latency_ms": doc["latency_ms"],
                 "model_program": doc["model_program"]}]
    rows = []
    for chunk in columns["chunks"].iloc[i]:
        # this chunk's lines of the merged program (``merge_programs``), so its row shows its own ops
        start, stop = chunk["program_line_offset"], chunk["program_line_offset"] + chunk["program_lines"]
        ops = [op for op in result["ops"] if start <= op["line"] < stop]
        rows.append({
            **common, "chunk_index": chunk["chunk_index"], "first_line": chunk["first_line"],
            "last_line": chunk["last_line"], "program": chunk["program"], "ops": ops,
            "errors": sum(op["errors"] for op in ops), "prompt_tokens": chunk["prompt_tokens"],
            "latency_ms": chunk["latency_ms"], "clipped_ops": chunk["clipped_ops"],
            "model_program": chunk["model_program"],
        })
    return rows
