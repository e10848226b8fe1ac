"""Where a commit's intermediate results live while every output table is written from them (``spark.staging``).

The models must run once per document, yet four tables and the per-shard counts are derived from one commit's
stage results. Spark would recompute an unkept DataFrame for each action, so the results are kept:

- ``persist`` (default): Spark's ``DISK_ONLY`` storage on the executors, released after the shard commit.
- ``delta``: each result is written once to a staging Delta table and read back from it, and the staging
  tables are emptied after the shard commit. No ``persist``/``cache`` at all: Databricks serverless (Spark
  Connect) refuses them. Each run id has its own ``records`` and ``stages`` tables, so runs never share one;
  each commit overwrites them whole. Where they live (``staging_place``):

  - outputs under ``output.path``: path-based tables in ``<output.path>/_staging/<run>/`` (or under
    ``output.staging_path``);
  - metastore outputs (``output.database``): tables ``_prox_staging_<run>_records`` / ``_stages`` in the
    output schema (managed tables: Unity Catalog's Volumes hold files, not tables), dropped once every shard
    of the run is committed; or path-based under ``output.staging_path`` when that is set.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession

from jobs import refine_plan as plan
from jobs.connect import session_conf
from jobs.tables import qualified_name, quote_identifier, user_metadata
from prox_spark.config import ConfigError, RefineConfig

log = logging.getLogger("prox_spark.staging")

#: Delta's guard against VACUUM removing files younger than its retention (the staging files are the run's own)
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
#: the staging tables of a run, in the order a commit writes them
STAGED = ("records", "stages")
#: a Unity Catalog Volume path (``/Volumes/...``, ``dbfs:/Volumes/...``)
_VOLUME = re.compile(r"^(dbfs:)?/+Volumes/", re.IGNORECASE)


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


@dataclass(frozen=True)
class StagingPlace:
    """Where one run's staging tables live: a folder of path-based tables, or a metastore schema (``namespace``,
    the tables named ``<prefix><name>``)."""

    folder: str = ""
    namespace: tuple[str, ...] = ()
    prefix: str = ""

    def table(self, name: str) -> str:
        """The table's path, or its quoted qualified name."""
        if self.namespace:
            return qualified_name(*self.namespace, self.prefix + name)
        return f"{self.folder}/{name}"

    def relation(self, name: str) -> str:
        """The table in SQL: its qualified name, or ``delta.`<path>```."""
        return self.table(name) if self.namespace else "delta." + quote_identifier(self.table(name))


class DeltaStaging:
    """``spark.staging: delta``: a run's staging Delta tables (``StagingPlace``), emptied on ``release``."""

    def __init__(self, spark: SparkSession, place: StagingPlace, run_id: str) -> None:
        self.spark = spark
        self.place = place
        self.run_id = run_id
        self._written: list[str] = []

    def location(self, name: str) -> str:
        return self.place.table(name)

    def stage(self, df: DataFrame, name: str) -> DataFrame:
        """Write ``df`` over the staging table ``name`` (its schema too: a rerun may run other stages) and read
        it back: whatever reads the result later reads these rows, and nothing computes ``df`` again."""
        where = self.location(name)
        writer = (
            df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            .option("userMetadata", user_metadata(self.run_id))
        )
        if self.place.namespace:
            writer.saveAsTable(where)
        else:
            writer.save(where)
        if name not in self._written:
            self._written.append(name)
        return self.spark.read.table(where) if self.place.namespace else self.spark.read.format("delta").load(where)

    def derived(self, df: DataFrame) -> DataFrame:
        return df  # derived from staged tables: recomputing it reads them again, and runs no model

    def release(self) -> None:
        """Empty the staging tables and remove their files (``VACUUM ... RETAIN 0 HOURS``: only this run reads
        them; where the platform refuses the VACUUM, the files stay until the table's next VACUUM). After a shard
        commit its rows are in the output tables, so a clean-up that fails loses nothing: it is logged, and the
        next commit overwrites the rows."""
        for name in self._written:
            relation = self.place.relation(name)
            try:
                self.spark.sql(f"DELETE FROM {relation}")
            except Exception as exc:  # noqa: BLE001 - the shard commit is done: nothing is lost
                log.warning("staging table %s not emptied (the next commit overwrites it): %s", relation, str(exc)[:300])
                continue
            try:
                with session_conf(self.spark, RETENTION_CHECK_CONF, "false"):
                    self.spark.sql(f"VACUUM {relation} RETAIN 0 HOURS")
            except Exception as exc:  # noqa: BLE001 - the rows are gone; only disk space is at stake
                log.warning("staging table %s emptied, but its files stay until a VACUUM: %s", relation, str(exc)[:300])
        self._written.clear()


def run_folder(run_id: str) -> str:
    """A run's staging folder name: the run id made path-safe, with a hash so two ids never share one."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:64]
    return f"{readable}-{_run_hash(run_id)}"


def run_table_prefix(run_id: str) -> str:
    """The name prefix of a run's staging tables in the output schema: ``_prox_staging_<run>_<hash>_``, the run
    id lower-cased to letters, digits and ``_`` (what every metastore takes unquoted), with a hash so two ids
    never share one."""
    readable = re.sub(r"[^a-z0-9_]+", "_", run_id.lower()).strip("_")[:40]
    return f"_prox_staging_{readable}_{_run_hash(run_id)}_" if readable else f"_prox_staging_{_run_hash(run_id)}_"


def _run_hash(run_id: str) -> str:
    return hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def is_volume_path(path: str) -> bool:
    return bool(_VOLUME.match(path))


def staging_root(config: RefineConfig) -> str:
    """The folder of path-based staging tables: ``output.staging_path``, else ``<output.path>/_staging`` (a
    local path made absolute, as the tables are); "" when the staging tables go to the output schema
    (``output.database`` without ``output.staging_path``). A Unity Catalog Volume is refused: Databricks does
    not allow tables in Volumes, which hold files."""
    if config.output.staging_path:
        root, key = config.output.staging_path, "output.staging_path"
    elif config.output.database:
        return ""
    else:
        root, key = f"{config.output.path.rstrip('/')}/_staging", "output.path"
    if is_volume_path(root):
        raise ConfigError(
            f"{key}: spark.staging=delta would keep its staging tables under {root!r}, a Unity Catalog Volume, "
            "which holds files, not tables: write the outputs to a schema (output.database; the staging tables "
            "then go there too) or set output.staging_path to a folder outside Volumes"
        )
    return plan.task_path(root)


def staging_place(config: RefineConfig, run_id: str) -> StagingPlace:
    """Where run ``run_id`` keeps its staging tables (``spark.staging: delta``)."""
    root = staging_root(config)
    if root:
        return StagingPlace(folder=f"{root.rstrip('/')}/{run_folder(run_id)}")
    return StagingPlace(namespace=config.output.namespace, prefix=run_table_prefix(run_id))


def staging_for(spark: SparkSession, config: RefineConfig, run_id: str) -> Staging:
    """The staging strategy ``spark.staging`` names, for one commit of run ``run_id``."""
    if config.spark.staging == "delta":
        return DeltaStaging(spark, staging_place(config, run_id), run_id)
    return PersistStaging()


def drop_run_staging(spark: SparkSession, config: RefineConfig, run_id: str) -> None:
    """Once every shard of the run is committed: drop its staging tables from the output schema, so that runs
    leave no tables behind there (path-based staging tables stay, empty). A failure is logged, not raised."""
    if config.spark.staging != "delta":
        return
    place = staging_place(config, run_id)
    if not place.namespace:
        return
    for name in STAGED:
        where = place.table(name)
        try:
            if spark.catalog.tableExists(where):
                spark.sql(f"DROP TABLE IF EXISTS {where}")
        except Exception as exc:  # noqa: BLE001 - every shard is committed: only an empty table is left over
            log.warning("staging table %s not dropped (it holds no rows the outputs need): %s", where, str(exc)[:300])


__all__ = [
    "DeltaStaging", "PersistStaging", "Staging", "StagingPlace", "drop_run_staging", "run_folder",
    "run_table_prefix", "staging_for", "staging_place", "staging_root",
]
