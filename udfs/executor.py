"""The program executor as a pandas UDF: ``(text, program) -> struct`` mirroring ``BATCH_COLUMNS``.

    from udfs import make_executor_udf
    chunk = make_executor_udf("chunk", "reference")
    df.select("id", chunk("text", "program").alias("r")).select("id", "r.*")

The UDF only calls ``prox_spark.programs.execute_batch`` on each Arrow batch, so a Spark run and a
plain-pandas run of the same inputs give identical rows. It is deterministic (safe to retry) and
CPU-only.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from prox_spark.programs import BATCH_COLUMNS, ExecutorConfig, execute_batch
from prox_spark.programs.batch import OP_FIELDS

#: one parsed program line with its status (``ops`` column); same layout as the programs table's ``ops``
OPS_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("line", T.LongType()),
            T.StructField("op", T.StringType()),
            T.StructField("start", T.LongType()),
            T.StructField("end", T.LongType()),
            T.StructField("source", T.StringType()),
            T.StructField("target", T.StringType()),
            T.StructField("status", T.StringType()),
            T.StructField("errors", T.LongType()),
            T.StructField("detail", T.StringType()),
        ]
    )
)

#: the UDF's return type: one field per ``BATCH_COLUMNS`` entry, in that order
EXECUTOR_RESULT_TYPE = T.StructType(
    [
        T.StructField("text", T.StringType()),
        T.StructField("kept", T.BooleanType()),
        T.StructField("outcome", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("errors", T.LongType()),
        T.StructField("n_ops", T.LongType()),
        T.StructField("words_before", T.LongType()),
        T.StructField("words_after", T.LongType()),
        T.StructField("lines_before", T.LongType()),
        T.StructField("lines_after", T.LongType()),
        T.StructField("ops", OPS_TYPE),
    ]
)

# The schema is spelled out for readers and Spark; fail at import if it drifts from the core's contract.
if tuple(EXECUTOR_RESULT_TYPE.fieldNames()) != tuple(BATCH_COLUMNS):
    raise ImportError(f"EXECUTOR_RESULT_TYPE {EXECUTOR_RESULT_TYPE.fieldNames()} != BATCH_COLUMNS {BATCH_COLUMNS}")
if tuple(OPS_TYPE.elementType.fieldNames()) != tuple(OP_FIELDS):
    raise ImportError(f"OPS_TYPE {OPS_TYPE.elementType.fieldNames()} != OP_FIELDS {OP_FIELDS}")


def make_executor_udf(stage: str, dialect: str = "reference", config: ExecutorConfig | None = None):
    """A pandas UDF ``(text: string, program: string) -> EXECUTOR_RESULT_TYPE`` for one stage/dialect.

    ``stage`` is ``"doc"`` or ``"chunk"``, ``dialect`` ``"reference"`` or ``"strict"`` (``config``
    thresholds apply to ``strict`` only, as in ``execute_batch``). Bad values fail here, on the driver.
    """
    execute_batch([], [], stage=stage, dialect=dialect, config=config)  # validates stage/dialect now

    def execute_programs(texts: pd.Series, programs: pd.Series) -> pd.DataFrame:
        return execute_batch(texts, programs, stage=stage, dialect=dialect, config=config)

    execute_programs.__name__ = execute_programs.__qualname__ = f"prox_execute_{stage}_{dialect}"
    return pandas_udf(EXECUTOR_RESULT_TYPE)(execute_programs)
