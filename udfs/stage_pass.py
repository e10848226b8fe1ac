"""All model and rule stages of the refine job in one Python pass per partition (``mapInArrow``).

Chaining one pandas UDF per stage sent each document's text across the JVM/Python boundary once per
stage, each stage its own ArrowEvalPython node. Here every Arrow batch crosses once: the core
(``prox_spark.pipeline.run_stages``) runs the configured stages over it, the core's row builder
(``prox_spark.pipeline.rows.table_rows``) turns their results into the document's ``refined`` row and its
``programs`` rows, and the batch comes back with those two columns appended (the job only selects and
explodes them). ``mapInArrow`` rather than ``mapInPandas``: the document's own columns (text, metadata) pass
through as the same Arrow arrays, never converted to pandas and back.

Greedy decoding is deterministic for a given batch, so a retried task recomputes the same rows.
``prox-spark apply`` runs the same pass with the stored programs instead of the models (``udfs.apply``).
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from prox_spark.pipeline import RefineSettings, run_stages, staged_columns
from prox_spark.pipeline.rows import ROWS_SCHEMA, table_rows
from prox_spark.rules import DEFAULT_PRESET, get_preset
from prox_spark.udfs.worker_models import StageModelSettings

#: Spark type of each column a stage pass adds (``refined``: the document's row, ``programs``: its program
#: rows): derived from the core's Arrow schema (``prox_spark.pipeline.rows.ROWS_SCHEMA``), never written here
ROW_TYPES: dict[str, T.DataType] = {field.name: from_arrow_type(field.type) for field in ROWS_SCHEMA}

#: columns a stage pass adds when it cannot stage some documents (apply: no stored program): the job
#: quarantines a document whose reason is set, with that reason and detail, instead of writing its rows
QUARANTINE_REASON = "quarantine_reason"
QUARANTINE_DETAIL = "quarantine_detail"


def stage_documents(
    docs: DataFrame,
    stages: tuple[str, ...],
    settings: RefineSettings,
    *,
    model_ids: Mapping[str, str],
    models: Mapping[str, StageModelSettings],
    rules_preset: str = DEFAULT_PRESET,
    fail_first_attempt_of_partition: int = -1,
) -> DataFrame:
    """``docs`` (with a ``text`` column) plus its rows after ``stages`` (``ROW_TYPES``), the program rows
    carrying ``model_ids`` (``prox_spark.pipeline.rows.stage_model_ids``). ``models``: how a worker loads each
    model stage's model, by stage name.

    ``fail_first_attempt_of_partition`` (fault injection, ``faults.*``): the first attempt of that
    partition raises, its retry runs normally.
    """
    check_stages(stages, rules_preset)

    def stage(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        columns = run_stages(
            batch.column("text").to_pylist(), stages, settings, rules_preset=rules_preset,
            models={name: model.load() for name, model in models.items()},
        )
        return row_columns(table_rows(columns, stages, model_ids))

    return map_stage_columns(docs, ROW_TYPES, stage, on_partition=lambda: _maybe_fail(fail_first_attempt_of_partition))


def check_stages(stages: tuple[str, ...], rules_preset: str) -> None:
    """An unknown stage, or an unknown rule preset when the rules run, fails here, on the driver, before a task."""
    staged_columns(stages)
    if "rules" in stages:
        get_preset(rules_preset)


def row_columns(rows: pa.RecordBatch) -> dict[str, pa.Array]:
    """``table_rows``' result as the columns a stage pass adds, by name."""
    return dict(zip(rows.schema.names, rows.columns))


def map_stage_columns(
    docs: DataFrame,
    added: dict[str, T.DataType],
    compute: Callable[[pa.RecordBatch], Mapping[str, pa.Array]],
    *,
    drop: tuple[str, ...] = (),
    on_partition: Callable[[], None] | None = None,
) -> DataFrame:
    """``docs`` without ``drop``, plus the ``added`` columns ``compute`` returns for each Arrow batch (arrays of
    the Arrow types the Spark types in ``added`` are derived from), in one Python pass per partition
    (``mapInArrow``): the stage passes of ``refine`` and ``apply`` share it. ``on_partition`` runs as each
    partition starts (fault injection)."""
    if "text" not in docs.columns:
        raise ValueError(f"a stage pass needs a 'text' column, got {docs.columns}")
    kept = [field for field in docs.schema.fields if field.name not in drop]
    schema = T.StructType(kept + [T.StructField(name, data_type) for name, data_type in added.items()])
    passed = [field.name for field in kept]

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if on_partition is not None:
            on_partition()
        for batch in batches:
            columns = compute(batch)
            yield pa.RecordBatch.from_arrays(
                [batch.column(name) for name in passed] + [columns[name] for name in added], names=passed + list(added)
            )

    return docs.mapInArrow(run, schema)


def _maybe_fail(partition: int) -> None:
    context = TaskContext.get()
    if partition >= 0 and context is not None and context.partitionId() == partition and context.attemptNumber() == 0:
        raise RuntimeError(f"injected failure: first attempt of partition {partition}")
