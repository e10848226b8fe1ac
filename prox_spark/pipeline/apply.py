"""Apply a run's stored programs again: the stage columns ``run_stages`` returns, with the model stages'
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
from prox_spark.pipeline.stages import model_stage, model_stages

__all__ = ["NO_STORED_PROGRAM", "StoredPrograms", "apply_stored_programs"]

#: the quarantine reason of a document that reached a model stage without a stored program
NO_STORED_PROGRAM = "no_stored_program"

#: one stored ``programs`` row of a stage: its ``ModelStage.stored_fields``
StoredProgram = Mapping[str, Any]
#: a document's stored rows of one stage, in any order (None or empty: the run stored none)
StoredRows = Sequence[StoredProgram] | None


@dataclass(frozen=True)
class StoredPrograms:
    """The programs a run stored, by model stage name: one entry per document (its ``programs`` rows of that
    stage), read back by the stage (``ModelStage.read_stored``)."""

    stored: Mapping[str, Sequence[StoredRows]]

    def programs(self, stage: str, texts: list[str]) -> list[Any | None]:
        reader = model_stage(stage)
        return [reader.read_stored(entry) if entry else None for entry in self.stored[stage]]


def apply_stored_programs(
    texts: Sequence[Any],
    stages: Sequence[str],
    settings: RefineSettings,
    *,
    rules_preset: str,
    stored: Mapping[str, Sequence[StoredRows]],
) -> StagedBatch:
    """Run ``stages`` over ``texts`` with the stored programs and ``settings``' executor; the columns equal what
    ``run_stages`` gives when the models write those programs again.

    ``stored``: for each model stage of ``stages``, by name, one entry per text: the document's stored rows of
    that stage (the doc stage's one row, the chunk stage's row per chunk, in any order).

    Fields the ``programs`` table does not keep (a doc program's ``truncated``, a chunk's ``oversize`` and
    ``truncated``) come back False; no row builder reads them.
    """
    for stage in model_stages(stages):
        if stage.name not in stored:
            raise ValueError(f"no stored program entries for the {stage.name} stage")
        if len(stored[stage.name]) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(stored[stage.name])} {stage.name} program entries")
    return stage_pass(texts, stages, settings, rules_preset=rules_preset, programs=StoredPrograms(stored))
