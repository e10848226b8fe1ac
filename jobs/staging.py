"""Where a commit's intermediate results live while every output table is written from them (``spark.staging``).

The models must run once per document, yet four tables and the per-shard counts are derived from one commit's
stage results. Spark would recompute an unkept DataFrame for each action, so the results are kept:

- ``persist`` (default): Spark's ``DISK_ONLY`` storage on the executors, released after the shard commit.
- ``delta``: each result is written once to a staging Delta table and read back from it, and the staging
  tables are emptied after the shard commit. No ``persist``/``cache`` at all: Databricks serverless (Spark
  Connect) refuses them. The tables sit under ``output.staging_path`` (default ``<output.path>/_staging``),
  one folder per run id, so runs never share a staging table; each commit overwrites them whole.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession

from jobs import refine_plan as plan
from jobs.connect import session_conf
from jobs.tables import quote_identifier, user_metadata
from prox_spark.config import ConfigError, RefineConfig

log = logging.getLogger("prox_spark.staging")

#: Delta's guard against VACUUM removing files younger than its retention (the staging files are the run's own)
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"


class Staging(Protocol):
    """Keeps a commit's results so that each is computed once (``stage``), then lets them go (``release``)."""

    def stage(self, df: DataFrame, name: str) -> DataFrame:
        """``df`` computed once and kept; the returned frame reads the kept rows."""

    def derived(self, df: DataFrame) -> DataFrame:
        """A cheap frame derived from staged ones that is read more than once (written, then counted)."""

    def release(self) -> None:
        """Drop what this commit kept (after its shard commit)."""


class PersistStaging:
    """``spark.staging: persist``: Spark's DISK_ONLY storage (``refine_plan.persist``)."""

    def __init__(self) -> None:
        self._kept: list[DataFrame] = []

    def stage(self, df: DataFrame, name: str) -> DataFrame:
        kept = plan.persist(df)
        self._kept.append(kept)
        return kept

    def derived(self, df: DataFrame) -> DataFrame:
        return self.stage(df, "derived")

    def release(self) -> None:
        for frame in reversed(self._kept):
            frame.unpersist()
        self._kept.clear()


class DeltaStaging:
    """``spark.staging: delta``: staging Delta tables ``<root>/<run>/<name>``, emptied on ``release``."""

    def __init__(self, spark: SparkSession, root: str, run_id: str) -> None:
        self.spark = spark
        self.run_id = run_id
        self.folder = f"{root.rstrip('/')}/{run_folder(run_id)}"
        self._written: list[str] = []

    def location(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def stage(self, df: DataFrame, name: str) -> DataFrame:
        """Write ``df`` over the staging table ``name`` (its schema too: a rerun may run other stages) and read
        it back: whatever reads the result later reads these rows, and nothing computes ``df`` again."""
        where = self.location(name)
        (
            df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            .option("userMetadata", user_metadata(self.run_id)).save(where)
        )
        if where not in self._written:
            self._written.append(where)
        return self.spark.read.format("delta").load(where)

    def derived(self, df: DataFrame) -> DataFrame:
        return df  # derived from staged tables: recomputing it reads them again, and runs no model

    def release(self) -> None:
        """Empty the staging tables and remove their files (``VACUUM ... RETAIN 0 HOURS``: only this run reads
        them). Where the platform refuses the VACUUM, the files stay until the table's next VACUUM."""
        for where in self._written:
            relation = "delta." + quote_identifier(where)
            self.spark.sql(f"DELETE FROM {relation}")
            try:
                with session_conf(self.spark, RETENTION_CHECK_CONF, "false"):
                    self.spark.sql(f"VACUUM {relation} RETAIN 0 HOURS")
            except Exception as exc:  # noqa: BLE001 - the rows are gone; only disk space is at stake
                log.warning("staging table %s emptied, but its files stay until a VACUUM: %s", where, str(exc)[:300])
        self._written.clear()


def run_folder(run_id: str) -> str:
    """A run's staging folder name: the run id made path-safe, with a hash so two ids never share one."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:64]
    return f"{readable}-{hashlib.sha256(run_id.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def staging_root(config: RefineConfig) -> str:
    """``output.staging_path``, else ``<output.path>/_staging`` (a local path made absolute, as the tables are)."""
    root = config.output.staging_path or (f"{config.output.path.rstrip('/')}/_staging" if config.output.path else "")
    if not root:
        raise ConfigError("output.staging_path: required with spark.staging=delta when the output is a database")
    return plan.task_path(root)


def staging_for(spark: SparkSession, config: RefineConfig, run_id: str) -> Staging:
    """The staging strategy ``spark.staging`` names, for one commit of run ``run_id``."""
    if config.spark.staging == "delta":
        return DeltaStaging(spark, staging_root(config), run_id)
    return PersistStaging()


__all__ = ["DeltaStaging", "PersistStaging", "Staging", "run_folder", "staging_for", "staging_root"]
