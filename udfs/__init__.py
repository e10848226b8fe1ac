"""Spark glue (the stages' Python pass, the executor UDF): thin wrappers that hand Arrow batches to the
core (``prox_spark``) and nothing more."""

from prox_spark.udfs.executor import EXECUTOR_RESULT_TYPE, OPS_TYPE, make_executor_udf

__all__ = ["EXECUTOR_RESULT_TYPE", "OPS_TYPE", "make_executor_udf"]
