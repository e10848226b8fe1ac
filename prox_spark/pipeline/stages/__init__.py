"""The stages of the refining pipeline, one object each (``base.Stage``), and the registry a pass runs them from.

A stage's module holds all of it: its name, the model kinds that can write its programs (none for the rules),
its columns as an Arrow schema, how it runs on a batch, its ``programs`` rows and its program on the ``refined``
row. ``stage_pass`` and ``rows.table_rows`` loop over ``STAGES`` and never name one. A new stage is a module
here, its entry in ``STAGES`` (where in the order it runs) and its ``pipeline.mode`` in
``prox_spark.config.PIPELINE_STAGES``; a model stage also has its ``models.<name>`` section
(``prox_spark.config.ModelsConfig``) and, in each model kind it lists, that kind's writer of its programs
(``prox_spark.pipeline.model_kinds``). Its model, model id and stored programs are routed by its name from
``model_stages``.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from prox_spark.pipeline.stages.base import ModelStage, PassContext, Stage, StageRun
from prox_spark.pipeline.stages.chunk import ChunkStage
from prox_spark.pipeline.stages.doc import DocStage
from prox_spark.pipeline.stages.rules import RulesStage

#: every stage, in the order a pass runs them (a configured subset keeps this order)
STAGES: tuple[Stage, ...] = (RulesStage(), DocStage(), ChunkStage())

STAGE_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
STAGE_ORDER: tuple[str, ...] = tuple(STAGE_BY_NAME)
#: the columns each stage adds, in order, as Arrow: the one definition of a stage's output (what the row builder,
#: ``pipeline.rows``, reads; the job's Spark pass returns the rows, not these columns)
STAGE_SCHEMAS: dict[str, pa.Schema] = {stage.name: stage.schema for stage in STAGES}
#: the columns each stage adds, in order
STAGE_COLUMNS: dict[str, tuple[str, ...]] = {stage.name: stage.columns for stage in STAGES}
#: every stage column's Arrow type, by name
STAGE_ARROW_TYPES: dict[str, pa.DataType] = {
    field.name: field.type for schema in STAGE_SCHEMAS.values() for field in schema
}


def model_stage(name: str) -> ModelStage:
    """The model stage named ``name`` (a program source is asked only for those)."""
    stage = STAGE_BY_NAME[name]
    if not isinstance(stage, ModelStage):
        raise TypeError(f"stage {name!r} takes no programs from a model")
    return stage


def stages_in_order(names: Sequence[str]) -> list[Stage]:
    """The stages ``names`` names, in ``STAGE_ORDER``; an unknown name fails."""
    unknown = sorted(set(names) - set(STAGE_ORDER))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}: expected some of {STAGE_ORDER}")
    return [stage for stage in STAGES if stage.name in names]


def model_stages(names: Sequence[str]) -> list[ModelStage]:
    """The model stages among ``names``, in ``STAGE_ORDER``: the stages a run needs a model for (its
    ``models.<name>`` section, its model id, its stored programs); an unknown name fails."""
    return [stage for stage in stages_in_order(names) if isinstance(stage, ModelStage)]


__all__ = [
    "STAGES", "STAGE_ARROW_TYPES", "STAGE_BY_NAME", "STAGE_COLUMNS", "STAGE_ORDER", "STAGE_SCHEMAS",
    "ChunkStage", "DocStage", "ModelStage", "PassContext", "RulesStage", "Stage", "StageRun", "model_stage",
    "model_stages", "stages_in_order",
]
