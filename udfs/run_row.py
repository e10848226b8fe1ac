"""A run attempt's row in the ``runs`` table: its number, its config with the secrets redacted, its counts and
timings.

Each attempt of a run id writes its own row (``attempt``): earlier attempts keep theirs.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.connect import redact_remote
from prox_spark.udfs.preflight import Preflight
from prox_spark.udfs.summary import RunSummary
from prox_spark.udfs.tables import RUNS, read_table, replace_rows
from prox_spark.config import RefineConfig, as_dict

#: spark.conf keys whose values runs.config_json never shows (credentials: fs.s3a.secret.key, ...)
SECRET_KEY = re.compile(r"secret|password|token|key|credential", re.IGNORECASE)
REDACTED = "***redacted***"


def next_attempt(spark: SparkSession, config: RefineConfig, run_id: str) -> int:
    """This attempt's number: one more than the run id's attempts recorded in ``runs`` (a row from
    before attempts were numbered counts as attempt 1)."""
    latest = (
        read_table(spark, config.output, RUNS).filter(F.col("run_id") == run_id)
        .agg(F.max(F.coalesce(F.col("attempt"), F.lit(1)))).first()[0]
    )
    return int(latest or 0) + 1


def redacted_config(config: RefineConfig) -> dict:
    """The config as recorded in ``runs.config_json``: secret-looking ``spark.conf`` values (Hadoop
    credentials such as ``spark.hadoop.fs.s3a.secret.key``) and the parameters of a ``spark.remote`` URL
    (``;token=...``) replaced by a marker, since every reader of the runs table would otherwise see them."""
    data = as_dict(config)
    data["spark"]["conf"] = {
        key: REDACTED if SECRET_KEY.search(str(key)) else value for key, value in data["spark"]["conf"].items()
    }
    data["spark"]["remote"] = redact_remote(data["spark"]["remote"])  # sc://...;token=<personal access token>
    return data


def write_run_row(
    spark: SparkSession, config: RefineConfig, checked: Preflight, run_id: str, attempt: int,
    times: tuple[datetime, datetime], status: str, summary: RunSummary, timings: dict[str, float],
    source_run_id: str | None,
) -> None:
    """This attempt's own row: earlier attempts of the run id keep theirs (a no-op rerun, whose timings are
    all ~0, once overwrote the real run's start time and timings)."""
    started, finished = times
    row = (
        run_id, started, finished, status, json.dumps(redacted_config(config), sort_keys=True),
        json.dumps(checked.versions), config.input.path or config.input.table, summary.shards, summary.records_read,
        summary.kept, summary.dropped, summary.quarantined, summary.words_before, summary.words_after,
        json.dumps({k: round(v, 3) for k, v in timings.items()}), config.pipeline.mode, attempt, source_run_id,
    )
    replace_rows(spark.createDataFrame([row], RUNS.schema), config.output, RUNS, run_id, None, attempt=attempt)
