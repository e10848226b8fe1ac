"""The rule-baseline stage's Spark type: ``rules_exec`` = ``prox_spark.rules.rules_stage_batch``'s row.

Rules are pure functions of the text, so a retried task gives the same rows; ``udfs.staged`` runs them
on each Arrow batch through the core, which a plain-pandas run calls the same way.
"""

from __future__ import annotations

from pyspark.sql import types as T

from prox_spark.rules import RULES_STAGE_COLUMNS
from udfs.executor import OPS_TYPE

RULES_RESULT_TYPE = T.StructType(
    [
        T.StructField("text", T.StringType()),
        T.StructField("kept", T.BooleanType()),
        T.StructField("outcome", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("rule", T.StringType()),
        T.StructField("program", T.StringType()),
        T.StructField("ops", OPS_TYPE),
        T.StructField("words_before", T.LongType()),
        T.StructField("words_after", T.LongType()),
        T.StructField("lines_before", T.LongType()),
        T.StructField("lines_after", T.LongType()),
        T.StructField("latency_ms", T.DoubleType()),
    ]
)

if tuple(RULES_RESULT_TYPE.fieldNames()) != tuple(RULES_STAGE_COLUMNS):
    raise ImportError(f"RULES_RESULT_TYPE {RULES_RESULT_TYPE.fieldNames()} != RULES_STAGE_COLUMNS {RULES_STAGE_COLUMNS}")
