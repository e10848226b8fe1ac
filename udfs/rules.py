"""The rule-baseline stage as a pandas UDF: ``text -> RULES_RESULT_TYPE`` (``prox_spark.rules.rules_stage_batch``).

Rules are pure functions of the text, so a retried task gives the same rows; the UDF only hands each
Arrow batch to the core, which a plain-pandas run calls the same way.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from prox_spark.rules import RULES_STAGE_COLUMNS, get_preset, rules_stage_batch
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


def make_rules_udf(preset: str):
    """A pandas UDF running the rule chain ``preset``; an unknown preset fails here, on the driver."""
    get_preset(preset)

    def apply_rules(texts: pd.Series) -> pd.DataFrame:
        return rules_stage_batch(texts, preset)

    apply_rules.__name__ = apply_rules.__qualname__ = f"prox_rules_{preset}"
    return pandas_udf(RULES_RESULT_TYPE)(apply_rules)
