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
from prox_spark.pipeline.stages.chunk import STORED_CHUNK_FIELDS
from prox_spark.pipeline.stages.doc import STORED_DOC_FIELDS
from prox_spark.pipeline.rows import table_rows
from prox_spark.udfs.stage_pass import (
    QUARANTINE_DETAIL, QUARANTINE_REASON, ROW_TYPES, check_stages, map_stage_columns, row_columns,
)

#: the columns the stored programs arrive in, joined onto each document
STORED_DOC, STORED_CHUNKS = "stored_doc", "stored_chunks"


def stored_programs(programs: DataFrame) -> DataFrame:
    """``(shard, doc_id, stored_doc, stored_chunks)``, one row per document of one run's ``programs`` rows
    (a chunk-less document has a null ``stored_chunks``, a document without a doc row a null ``stored_doc``)."""
    stage = F.col("stage")
    doc = programs.filter(stage == "doc").select(
        "shard", "doc_id", F.struct(*STORED_DOC_FIELDS).alias(STORED_DOC)
    )
    chunks = programs.filter(stage == "chunk").groupBy("shard", "doc_id").agg(
        F.collect_list(F.struct(*STORED_CHUNK_FIELDS)).alias(STORED_CHUNKS)
    )
    return doc.join(chunks, ["shard", "doc_id"], "full")


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
    added: dict[str, T.DataType] = {**ROW_TYPES, QUARANTINE_REASON: T.StringType(), QUARANTINE_DETAIL: T.StringType()}

    def apply(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        applied = apply_stored_programs(
            batch.column("text").to_pylist(), stages, settings, rules_preset=rules_preset,
            doc_programs=batch.column(STORED_DOC).to_pylist(), chunk_programs=batch.column(STORED_CHUNKS).to_pylist(),
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

    return map_stage_columns(joined, added, apply, drop=(STORED_DOC, STORED_CHUNKS))
