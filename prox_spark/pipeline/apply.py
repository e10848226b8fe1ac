"""Apply a run's stored programs again: the stage columns ``run_stages`` returns, with the doc and chunk
programs read back from the ``programs`` table instead of written by the models.

Why a second path: the programs are the models' decisions, the executor (dialect, thresholds) is how they
are applied, and only the second changes when ``executor.*`` does. Re-applying costs an executor pass over
the text instead of a model rerun, and because the columns are exactly ``run_stages``' the same row builder
(``pipeline.rows.table_rows``) turns them into the ``refined`` and ``programs`` rows. The rules stage is run again: it is a pure
function of the text, needs no model, and no executor setting changes it.

The stored programs are a ``ProgramSource`` of ``stage_pass``, the loop ``run_stages`` runs the models in, so
what a stage reads and which documents reach it are decided by the same code. A document that reaches a model
stage for which the stored run holds no program (the stored run dropped it earlier and the new settings keep
it, or never read it) cannot be applied: ``StagedBatch.missing`` names that stage, and the document's columns
from that stage on are placeholders that must not be written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.stage_pass import StagedBatch, stage_pass
from prox_spark.pipeline.stages import model_stage

__all__ = ["NO_STORED_PROGRAM", "StoredPrograms", "apply_stored_programs"]

#: the quarantine reason of a document that reached a model stage without a stored program
NO_STORED_PROGRAM = "no_stored_program"

StoredProgram = Mapping[str, Any]


@dataclass(frozen=True)
class StoredPrograms:
    """The programs a run stored, by stage name: one entry per document (its ``programs`` rows' ``stored_fields``
    of that stage; None: the run stored none for it), read back by the stage (``ModelStage.read_stored``)."""

    stored: Mapping[str, Sequence[Any]]

    def programs(self, stage: str, texts: list[str]) -> list[Any | None]:
        reader = model_stage(stage)
        return [reader.read_stored(entry) if entry else None for entry in self.stored[stage]]


def apply_stored_programs(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings,
    *,
    rules_preset: str,
    doc_programs: Sequence[StoredProgram | None],
    chunk_programs: Sequence[Sequence[StoredProgram] | None],
) -> StagedBatch:
    """Run ``stages`` over ``texts`` with the stored programs (one entry per text: its ``STORED_DOC_FIELDS``
    row, its ``STORED_CHUNK_FIELDS`` rows in any order; None when the run stored none) and ``settings``'
    executor; the columns equal what ``run_stages`` gives when the models write those programs again.

    Fields the ``programs`` table does not keep (a doc program's ``truncated``, a chunk's ``oversize`` and
    ``truncated``) come back False; no row builder reads them.
    """
    if not len(texts) == len(doc_programs) == len(chunk_programs):
        raise ValueError(f"{len(texts)} texts, {len(doc_programs)} doc and {len(chunk_programs)} chunk program entries")
    stored = StoredPrograms({"doc": doc_programs, "chunk": chunk_programs})
    return stage_pass(texts, stages, settings, rules_preset=rules_preset, programs=stored)
