"""The program executor as a pandas UDF: ``(text, program) -> struct`` mirroring ``BATCH_COLUMNS``.

    from prox_spark.udfs import make_executor_udf
    chunk = make_executor_udf("chunk", "reference")
    df.select("id", chunk("text", "program").alias("r")).select("id", "r.*")

The UDF only calls ``prox_spark.programs.execute_batch`` on each Arrow batch, so a Spark run and a
plain-pandas run of the same inputs give identical rows. It is deterministic (safe to retry) and
CPU-only.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql.functions import pandas_udf
from pyspark.sql.pandas.types import from_arrow_type

from prox_spark.programs import ExecutorConfig, execute_batch
from prox_spark.programs.batch import EXECUTOR_RESULT_ARROW_TYPE, OPS_ARROW_TYPE

#: one parsed program line with its status (``ops`` column); same layout as the programs table's ``ops``
OPS_TYPE = from_arrow_type(OPS_ARROW_TYPE)

#: the UDF's return type: one field per ``BATCH_COLUMNS`` entry, in that order (derived from the core's Arrow type)
EXECUTOR_RESULT_TYPE = from_arrow_type(EXECUTOR_RESULT_ARROW_TYPE)


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
