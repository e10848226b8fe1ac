"""Apply a run's stored programs again: the stage columns ``run_stages`` returns, with the doc and chunk
programs read back from the ``programs`` table instead of written by the models.

Why a second path: the programs are the models' decisions, the executor (dialect, thresholds) is how they
are applied, and only the second changes when ``executor.*`` does. Re-applying costs an executor pass over
the text instead of a model rerun, and because the columns are exactly ``run_stages``' the job's own row
builders (``refined``, ``programs``) turn them into table rows. The rules stage is run again: it is a pure
function of the text, needs no model, and no executor setting changes it.

A document that reaches a model stage for which the stored run holds no program (the stored run dropped it
earlier and the new settings keep it, or never read it) cannot be applied: ``AppliedBatch.missing`` names
that stage, and the document's columns from that stage on are placeholders that must not be written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.staged import DOC_PROGRAM_FIELDS, StagedColumn, run_stages, staged_columns
from prox_spark.pipeline.stages import ChunkProgram, DocProgram, merge_programs
from prox_spark.programs import execute_batch

#: the quarantine reason of a document that reached a model stage without a stored program
NO_STORED_PROGRAM = "no_stored_program"
#: the ``programs`` table columns a stored doc program is read back from
STORED_DOC_FIELDS = ("program", "prompt_tokens", "latency_ms", "model_program")
#: the ``programs`` table columns a stored chunk program is read back from (one row per chunk)
STORED_CHUNK_FIELDS = (
    "chunk_index", "first_line", "last_line", "program", "prompt_tokens", "latency_ms", "clipped_ops", "model_program",
)

StoredProgram = Mapping[str, Any]


@dataclass(frozen=True)
class AppliedBatch:
    """``run_stages``' columns for the batch, and which documents could not be applied."""

    columns: dict[str, StagedColumn]
    #: per document, the first model stage it reached without a stored program (None: it had every one)
    missing: list[str | None]


def apply_stored_programs(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings,
    *,
    rules_preset: str,
    doc_programs: Sequence[StoredProgram | None],
    chunk_programs: Sequence[Sequence[StoredProgram] | None],
) -> AppliedBatch:
    """Run ``stages`` over ``texts`` with the stored programs (one entry per text: its ``STORED_DOC_FIELDS``
    row, its ``STORED_CHUNK_FIELDS`` rows in any order; None when the run stored none) and ``settings``'
    executor; the columns equal what ``run_stages`` gives when the models write those programs again.

    Fields the ``programs`` table does not keep (a doc program's ``truncated``, a chunk's ``oversize`` and
    ``truncated``) come back False; no row builder reads them.
    """
    if not len(texts) == len(doc_programs) == len(chunk_programs):
        raise ValueError(f"{len(texts)} texts, {len(doc_programs)} doc and {len(chunk_programs)} chunk program entries")
    names = staged_columns(stages)
    out: dict[str, StagedColumn] = {}
    missing: list[str | None] = [None] * len(texts)
    current = list(texts)  # what the next stage reads
    if "rules" in stages:
        out.update(run_stages(texts, ("rules",), settings, rules_preset=rules_preset))
        rules = out["rules_exec"]
        current = [t if kept else "" for t, kept in zip(rules["text"].tolist(), rules["kept"].tolist())]
        reached = rules["kept"].tolist()
    else:
        reached = [True] * len(texts)
    if "doc" in stages:
        programs = []
        for i, stored in enumerate(doc_programs):
            if reached[i] and stored is None:
                missing[i] = "doc"
            programs.append(_doc_program(stored) if reached[i] and stored is not None else DocProgram("", 0, 0.0))
        out["doc"] = pd.DataFrame.from_records([asdict(p) for p in programs], columns=list(DOC_PROGRAM_FIELDS))
        doc_exec = execute_batch(current, [p.program for p in programs], stage="doc", dialect=settings.dialect,
                                 config=settings.executor)
        out["doc_exec"] = doc_exec
        reached = [kept and m is None for kept, m in zip(doc_exec["kept"].tolist(), missing)]
        current = [t if alive else "" for t, alive in zip(current, reached)]
    if "chunk" in stages:
        per_doc = []
        for i, stored in enumerate(chunk_programs):
            if reached[i] and not stored:
                missing[i] = "chunk"
            per_doc.append(_chunk_programs(stored) if reached[i] and stored else [])
        out["chunks"] = pd.Series([[asdict(chunk) for chunk in chunks] for chunks in per_doc], dtype=object)
        merged = [merge_programs(chunks) for chunks in per_doc]
        out["chunk_program"] = pd.Series(merged, dtype=object)
        out["chunk_exec"] = execute_batch(current, merged, stage="chunk", dialect=settings.dialect, config=settings.executor)
    return AppliedBatch({name: out[name] for name in names}, missing)


def _doc_program(stored: StoredProgram) -> DocProgram:
    return DocProgram(stored["program"], stored["prompt_tokens"], stored["latency_ms"],
                      model_program=stored["model_program"])


def _chunk_programs(stored: Sequence[StoredProgram]) -> list[ChunkProgram]:
    """A document's chunk programs in chunk order, with where each one's lines sit in the merged program
    (``program_line_offset``, ``program_lines``: what the row builder slices a chunk's ops by)."""
    chunks, offset = [], 0
    for row in sorted(stored, key=lambda r: r["chunk_index"]):
        lines = row["program"].count("\n") + 1
        chunks.append(ChunkProgram(
            row["chunk_index"], row["first_line"], row["last_line"], row["program"], row["prompt_tokens"],
            row["latency_ms"], program_line_offset=offset, program_lines=lines, clipped_ops=row["clipped_ops"],
            model_program=row["model_program"],
        ))
        offset += lines
    return chunks

