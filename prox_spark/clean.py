"""``prox-spark clean``: the refine pipeline without Spark, one file in → JSONL out, one record per input.

Same readers (bad records are reported, not lost), same models, same executor as the Spark job; for
quick local use, notebooks, and the plain-Python side of the Spark overhead benchmark. The input is
JSONL (plain or gzip); a WARC or parquet file, recognised by its first bytes, is read with the job's
WARC / parquet reader instead of being reported line by line as invalid JSON. A repeated doc_id is
quarantined as ``duplicate_doc_id`` with the first copy kept, as the job does.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from prox_spark.config import RefineConfig, stage_model_paths
from prox_spark.pipeline import ServedModel, load_stage_model, refine_batch, serving_of, settings_of
from prox_spark.pipeline.stages import STAGE_ORDER
from prox_spark.readers import Document, Quarantined, Record
from prox_spark.readers.dispatch import read_file
from prox_spark.readers.records import InputStream
from prox_spark.readers.warc import require_warc_support

#: the job's reason for a second record with a doc_id already read (``udfs.refine_plan.split_records``)
DUPLICATE_DOC_ID = "duplicate_doc_id"
#: characters of a duplicate's text kept as its quarantine ``raw`` (the job keeps the same)
DUPLICATE_RAW_CHARS = 65536


@dataclass
class CleanStats:
    records: int = 0
    kept: int = 0
    dropped: int = 0
    quarantined: int = 0
    seconds: float = 0.0


def load_models(config: RefineConfig, concurrent_tasks: int = 1) -> dict[str, ServedModel]:
    """The model of each model stage ``pipeline.mode`` runs, by stage name in stage order (none for a rules-only
    run), each of its configured kind (``models.<stage>``): what ``refine_batch`` takes."""
    models = config.models
    loaded = {}
    for stage, path in stage_model_paths(config).items():
        loaded[stage] = load_stage_model(path, models.stage(stage).kind, serving_of(config, stage, concurrent_tasks))
    return loaded


def clean_file(
    input_path: str | Path, output: IO[str], config: RefineConfig, *, batch_docs: int = 256, concurrent_tasks: int = 1
) -> CleanStats:
    """Refine ``input_path`` (JSONL, optionally gzipped; WARC and parquet are recognised by their first
    bytes) into ``output``, one JSON record per input record.

    The stages are ``pipeline.mode``'s, as in the Spark job; a record has each stage's ``<stage>_program``
    (``rules_program``, ``doc_program``, ``chunk_program``), null for a stage the mode does not run or the
    document did not reach.
    ``FileNotFoundError`` / ``ValueError`` (before any model loads) when the input is missing, a directory,
    or in a format other than ``input.format`` says; ``WarcUnavailableError`` for a WARC file without the
    ``warc`` extra.
    """
    started = time.perf_counter()
    fmt = input_format(input_path, config.input.format)
    if fmt == "warc":
        require_warc_support()  # WarcUnavailableError naming the `warc` extra, before any model loads
    models = load_models(config, concurrent_tasks)
    settings = settings_of(config)
    stats = CleanStats()
    records = first_copies(read_file(
        input_path, fmt, id_field=config.input.id_column or None, text_field=config.input.text_column,
        max_text_bytes=config.input.max_text_bytes, max_text_lines=config.input.max_text_lines,
    ))
    for batch in _batches(records, batch_docs):
        docs = [r for r in batch if isinstance(r, Document)]
        refined = {}
        if docs:
            frame, _ = refine_batch(
                [d.doc_id for d in docs], [d.text for d in docs], models, settings,
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


def input_format(path: str | Path, configured: str = "auto") -> str:
    """The reader for ``path``, from its first bytes: ``warc`` (``WARC/`` after an optional gzip layer),
    ``parquet`` (``PAR1``), else ``jsonl``. A missing path, a directory, a Delta table or a file that
    contradicts an explicit ``input.format`` fails here with a message naming the file."""
    where = os.fspath(path)
    if os.path.isdir(where):
        raise ValueError(f"--input {where}: is a directory; clean reads one file (run the Spark job on a folder)")
    if not os.path.isfile(where):
        raise FileNotFoundError(f"--input {where}: no such file")
    with open(where, "rb") as handle:
        raw = handle.read(4)
        handle.seek(0)
        stream = InputStream(handle)
        head = stream.read(5)
    found = "warc" if head == b"WARC/" else "parquet" if raw == b"PAR1" else "jsonl"
    if configured not in ("auto", found):
        raise ValueError(
            f"--input {where}: holds {found.upper()} data (by its first bytes), but input.format is {configured!r}"
        )
    return found


def first_copies(records: Iterable[Record]) -> Iterator[Record]:
    """``records`` with every repeated doc_id after the first quarantined as ``duplicate_doc_id``, as the job
    does within a run (one file here: the first by record_index wins)."""
    seen: set[str] = set()
    for record in records:
        if isinstance(record, Document):
            if record.doc_id in seen:
                record = Quarantined(
                    record.source_file, record.record_index, record.text[:DUPLICATE_RAW_CHARS], DUPLICATE_DOC_ID,
                    f"doc_id already read from an earlier record: {record.doc_id}", record.doc_id,
                )
            else:
                seen.add(record.doc_id)
        yield record


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
    programs = [f"{stage}_program" for stage in STAGE_ORDER]  # each stage's, as the refined row has them
    if isinstance(record, Quarantined):
        return {"id": None, "text": "", "kept": False, "reason": record.reason, "detail": record.detail,
                "drop_stage": None, **dict.fromkeys(programs), "record_index": record.record_index}
    row = refined[record.record_index]
    return {"id": record.doc_id, "text": row.text, "kept": bool(row.kept), "reason": row.drop_reason,
            "drop_stage": row.drop_stage, **{name: getattr(row, name) for name in programs},
            "record_index": record.record_index}
