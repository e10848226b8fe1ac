"""The stage pass of ``prox-spark apply``: a run's stored programs joined onto its documents and applied in
one Python pass per partition, with no model loaded anywhere.

The pass returns the refine pass's columns (``udfs.stage_pass.ROW_TYPES``: the rows of the core's row builder,
``prox_spark.pipeline.rows.table_rows``), so the refine job writes ``refined`` and ``programs`` from it
unchanged. A document that reaches a model stage without a stored program gets ``QUARANTINE_REASON`` /
``QUARANTINE_DETAIL`` set, and the job quarantines it (its rows are placeholders, never written).
"""

from __future__ import annotations

from typing import Mapping

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from prox_spark.pipeline import RefineSettings
from prox_spark.pipeline.apply import NO_STORED_PROGRAM, apply_stored_programs
from prox_spark.pipeline.rows import table_rows
from prox_spark.pipeline.stages import STAGE_ORDER, model_stages
from prox_spark.udfs.stage_pass import (
    QUARANTINE_DETAIL, QUARANTINE_REASON, ROW_TYPES, check_stages, map_stage_columns, row_columns,
)


def stored_column(stage: str) -> str:
    """The column a model stage's stored programs arrive in, joined onto each document."""
    return f"stored_{stage}"


def stored_programs(programs: DataFrame) -> DataFrame:
    """``(shard, doc_id, stored_<stage>...)``, one row per document of one run's ``programs`` rows: for each
    model stage, the document's rows of that stage as structs of its ``stored_fields`` (empty: it has none)."""
    stage = F.col("stage")
    stages = model_stages(STAGE_ORDER)
    return programs.filter(stage.isin([s.name for s in stages])).groupBy("shard", "doc_id").agg(*(
        # collect_list skips the nulls: each stage's list holds its own rows only
        F.collect_list(F.when(stage == s.name, F.struct(*s.stored_fields))).alias(stored_column(s.name))
        for s in stages
    ))


def apply_documents(
    docs: DataFrame,
    programs: DataFrame,
    stages: tuple[str, ...],
    settings: RefineSettings,
    *,
    rules_preset: str,
    source_run_id: str,
    model_ids: Mapping[str, str],
) -> DataFrame:
    """``docs`` plus their rows (``ROW_TYPES``, the program rows carrying ``model_ids``) and the quarantine
    columns, from ``programs`` (the rows of run ``source_run_id`` in the ``programs`` table) executed under
    ``settings``."""
    check_stages(stages, rules_preset)
    joined = docs.join(stored_programs(programs), ["shard", "doc_id"], "left")
    stored_columns = tuple(stored_column(stage.name) for stage in model_stages(STAGE_ORDER))
    added: dict[str, T.DataType] = {**ROW_TYPES, QUARANTINE_REASON: T.StringType(), QUARANTINE_DETAIL: T.StringType()}

    def apply(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        stored = {stage.name: batch.column(stored_column(stage.name)).to_pylist() for stage in model_stages(stages)}
        applied = apply_stored_programs(
            batch.column("text").to_pylist(), stages, settings, rules_preset=rules_preset, stored=stored
        )
        details = [
            None if stage is None else f"run {source_run_id} stored no {stage} program for this document"
            for stage in applied.missing
        ]
        return {
            **row_columns(table_rows(applied.columns, stages, model_ids)),
            QUARANTINE_REASON: pa.array([NO_STORED_PROGRAM if d else None for d in details], pa.string()),
            QUARANTINE_DETAIL: pa.array(details, pa.string()),
        }

    return map_stage_columns(joined, added, apply, drop=stored_columns)
