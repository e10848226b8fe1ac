"""All Spark glue, imported as ``prox_spark.udfs``: the passes that hand Arrow batches to the core
(``prox_spark``), the executor UDF, and the job's Spark plan (preflight, input listing, the DataFrame plan,
staging, Delta tables and writes, the commit loop, summaries, logs, audits). The entry points are in ``jobs/``."""

from prox_spark.udfs.executor import EXECUTOR_RESULT_TYPE, OPS_TYPE, make_executor_udf

__all__ = ["EXECUTOR_RESULT_TYPE", "OPS_TYPE", "make_executor_udf"]
