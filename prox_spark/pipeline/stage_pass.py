"""Every configured stage over one batch of documents, kept as one column per stage result.

Each stage's full result is kept (the ``programs`` table has a row per stage and per chunk, and
``refined`` names the stage that dropped a document): ``pipeline.rows.table_rows`` builds both tables' rows
from these columns, in the job's stage pass and in ``refine_batch`` alike. Running all stages in one call
per batch lets the job cross the JVM/Python boundary once per document instead of once per stage. A stage
reads the text the previous stage kept; a document dropped earlier reaches it as ``""``, which costs no model
call.

``stage_pass`` is the one loop over the stages, so the hand-off between them is written once; each stage is an
object (``prox_spark.pipeline.stages``) that runs on what the previous one kept, and this module names none of
them. Where a model stage's programs come from is its ``ProgramSource``: the models (``ModelPrograms``, behind
``run_stages``) or a run's stored programs (``prox_spark.pipeline.apply.StoredPrograms``, behind
``prox-spark apply``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

from prox_spark.pipeline.model_kinds import ServedModel, kind_of
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.stages import STAGE_COLUMNS, ModelStage, PassContext, model_stage, stages_in_order
from prox_spark.pipeline.stages.base import StagedColumn
from prox_spark.rules import DEFAULT_PRESET
from prox_spark.text import is_missing

__all__ = ["NO_MODELS", "ModelPrograms", "ProgramSource", "StagedBatch", "run_stages", "stage_pass", "staged_columns"]

#: the models of a run whose stages need none (rules only): ``run_stages``' and ``refine_batch``'s default
NO_MODELS: Mapping[str, ServedModel] = MappingProxyType({})


def staged_columns(stages: Sequence[str]) -> tuple[str, ...]:
    """The columns ``run_stages`` returns for ``stages``, in stage order; an unknown stage fails."""
    return tuple(column for stage in stages_in_order(stages) for column in STAGE_COLUMNS[stage.name])


class ProgramSource(Protocol):
    """Where the model stages' programs come from. ``programs`` gets the stage's name and what it reads, one text
    per document (``""`` for a document dropped earlier), and returns one entry per text; None: this source has
    no program for that document (a stored run that never reached it), which ``stage_pass`` reports in
    ``missing``."""

    def programs(self, stage: str, texts: list[str]) -> Sequence[Any | None]: ...


@dataclass(frozen=True)
class ModelPrograms:
    """The models write the programs (the refine job, ``prox-spark clean``): each model stage's
    ``write_programs`` with its model from ``models``, through the model's kind (``write``)."""

    settings: RefineSettings
    #: each model stage's model, by stage name (built once per worker: each kind's ``load`` caches them)
    models: Mapping[str, ServedModel] = field(default_factory=dict)
    #: the doc stage's main-text guard (``spare_main_text_pages``): on when the line refiner runs the chunk stage
    spare_main_text: bool = False

    def model(self, stage: str) -> ServedModel:
        """``stage``'s model; a stage run without one fails naming it."""
        model = self.models.get(stage)
        if model is None:
            raise ValueError(f"the {stage} stage needs its model (models[{stage!r}])")
        return model

    def write(self, stage: str, texts: list[str]) -> Sequence[Any]:
        """``stage``'s programs for ``texts``, written by its model as the model's kind writes them
        (``prox_spark.pipeline.model_kinds``) with these settings."""
        model = self.model(stage)
        return kind_of(model).write_programs(stage, model, texts, self.settings)

    def programs(self, stage: str, texts: list[str]) -> Sequence[Any]:
        return model_stage(stage).write_programs(texts, self)


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
    models: Mapping[str, ServedModel] = NO_MODELS,
) -> dict[str, StagedColumn]:
    """Run ``stages`` (in ``STAGE_ORDER``) over ``texts`` with ``models`` (each model stage's model, by stage
    name; a stage run without its model fails); returns ``staged_columns(stages)`` by name.

    ``rules_exec``, ``doc_exec``, ``chunk_exec``: executor/rule results (``RULES_STAGE_COLUMNS``,
    ``BATCH_COLUMNS``) as DataFrames; ``doc``: the doc programs (``DocProgram`` fields); ``chunks``: per
    document, its ``ChunkProgram`` records in chunk order; ``chunk_program``: their merged program.
    """
    programs = ModelPrograms(settings, models, spare_main_text="chunk" in stages)
    return stage_pass(texts, stages, settings, rules_preset=rules_preset, programs=programs).columns


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
    order = stages_in_order(stages)
    context = PassContext(settings, rules_preset)
    out: dict[str, StagedColumn] = {}
    current = [None if is_missing(t) else t for t in texts]  # what the next stage reads
    reached = [True] * len(current)
    missing: list[str | None] = [None] * len(current)
    for stage in order:
        written = None
        if isinstance(stage, ModelStage):
            written = _reached_programs(
                programs.programs(stage.name, _model_texts(current)), reached, missing, stage.name, stage.empty_program
            )
        run = stage.run(current, written, context)
        out.update(run.columns)
        current, reached = _hand_off(run.texts, run.kept, missing)
    return StagedBatch({column: out[column] for column in staged_columns(stages)}, missing)


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


def _model_texts(texts: list) -> list[str]:
    """What a model stage reads: null (a document with no text) as blank, which gets no model call."""
    return [t if isinstance(t, str) else "" for t in texts]
