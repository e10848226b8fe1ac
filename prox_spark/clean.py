"""``prox-spark clean``: the refine pipeline without Spark, JSONL in → JSONL out, one record per input.

Same readers (bad records are reported, not lost), same models, same executor as the Spark job; for
quick local use, notebooks, and the plain-Python side of the Spark overhead benchmark.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from prox_spark.config import RefineConfig, stage_model_paths
from prox_spark.pipeline import StageModel, refine_batch, settings_of
from prox_spark.readers import Document, Quarantined
from prox_spark.readers.dispatch import read_file


@dataclass
class CleanStats:
    records: int = 0
    kept: int = 0
    dropped: int = 0
    quarantined: int = 0
    seconds: float = 0.0


def load_models(config: RefineConfig, concurrent_tasks: int = 1) -> tuple[StageModel | None, StageModel | None]:
    """The doc and chunk models ``pipeline.mode`` needs (None for a stage it does not run)."""
    models = config.models
    common = dict(provider=models.provider, intra_op_threads=models.intra_op_threads, concurrent_tasks=concurrent_tasks)
    paths = stage_model_paths(config)
    doc, chunk = (
        StageModel.load(paths[stage], prefill_tokens=getattr(models, stage).prefill_tokens, **common)
        if stage in paths else None
        for stage in ("doc", "chunk")
    )
    return doc, chunk


def clean_file(
    input_path: str | Path, output: IO[str], config: RefineConfig, *, batch_docs: int = 256, concurrent_tasks: int = 1
) -> CleanStats:
    """Refine ``input_path`` (JSONL, optionally gzipped) into ``output``, one JSON record per input record.

    The stages are ``pipeline.mode``'s, as in the Spark job; ``rules_program`` is null unless the rules
    stage ran, ``doc_program`` / ``chunk_program`` are null for a stage the document did not reach.
    """
    started = time.perf_counter()
    doc_model, chunk_model = load_models(config, concurrent_tasks)
    settings = settings_of(config)
    stats = CleanStats()
    records = read_file(
        input_path, "jsonl", id_field=config.input.id_column or None, text_field=config.input.text_column,
        max_text_bytes=config.input.max_text_bytes,
    )
    for batch in _batches(records, batch_docs):
        docs = [r for r in batch if isinstance(r, Document)]
        refined = {}
        if docs:
            frame, _ = refine_batch(
                [d.doc_id for d in docs], [d.text for d in docs], doc_model, chunk_model, settings,
                stages=config.pipeline.stages, rules_preset=config.rules.preset,
            )
            refined = {d.record_index: row for d, row in zip(docs, frame.itertuples(index=False))}
        for record in batch:
            stats.records += 1
            output.write(json.dumps(_out_record(record, refined), ensure_ascii=False) + "\n")
            if isinstance(record, Quarantined):
                stats.quarantined += 1
            elif refined[record.record_index].kept:
                stats.kept += 1
            else:
                stats.dropped += 1
    stats.seconds = time.perf_counter() - started
    return stats


def _batches(records: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _out_record(record, refined: dict) -> dict:
    if isinstance(record, Quarantined):
        return {"id": None, "text": "", "kept": False, "reason": record.reason, "detail": record.detail,
                "drop_stage": None, "rules_program": None, "doc_program": None, "chunk_program": None,
                "record_index": record.record_index}
    row = refined[record.record_index]
    return {"id": record.doc_id, "text": row.text, "kept": bool(row.kept), "reason": row.drop_reason,
            "drop_stage": row.drop_stage, "rules_program": row.rules_program, "doc_program": row.doc_program,
            "chunk_program": row.chunk_program, "record_index": record.record_index}
