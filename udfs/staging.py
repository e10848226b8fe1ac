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

  A commit's staged results stay when it fails (or the job is killed) before its shard commit: each staging
  write records what it was computed from (``commit_fingerprints``: the commit's input files and every
  setting and model that shapes the result) in its Delta commit's ``userMetadata``, and a rerun with the same
  run id whose next commit has the same fingerprint reads them back instead of reading the input and running
  the models again. A staging table holding another fingerprint is stale: it is overwritten, with a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession

from prox_spark.udfs import refine_plan as plan
from prox_spark.udfs.connect import session_conf
from prox_spark.udfs.side_by_side import run_concurrently
from prox_spark.udfs.tables import qualified_name, quote_identifier
from prox_spark.config import ConfigError, RefineConfig, as_dict

log = logging.getLogger("prox_spark.staging")

#: Delta's guard against VACUUM removing files younger than its retention (the staging files are the run's own)
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
#: the staging tables of a run, in the order a commit writes them
STAGED = ("records", "stages")
#: Delta operations that leave a table's rows as they were (its own VACUUM, a platform's automatic OPTIMIZE or
#: statistics): skipped when looking for the write that put the staged rows there
MAINTENANCE_OPERATIONS = ("VACUUM", "OPTIMIZE", "ANALYZE", "COMPUTE STATS")
#: bumped when what a staging table holds changes shape: staged rows of an older job version are then stale
#: (2: ``stages`` holds each document's table rows, ``refined`` and ``programs``, instead of the stage columns)
STAGING_FORMAT = 2
#: a Unity Catalog Volume path (``/Volumes/...``, ``dbfs:/Volumes/...``)
_VOLUME = re.compile(r"^(dbfs:)?/+Volumes/", re.IGNORECASE)


class Staging(Protocol):
    """Keeps a commit's results so that each is computed once (``stage``), then lets them go (``release``)."""

    def stage(self, df: DataFrame, name: str, fingerprint: str = "") -> DataFrame:
        """``df`` computed once and kept; the returned frame reads the kept rows. ``fingerprint`` names what
        ``df`` is computed from: kept rows with the same fingerprint are reused without computing ``df``."""

    def derived(self, df: DataFrame) -> DataFrame:
        """A cheap frame derived from staged ones that is read more than once (written, then counted)."""

    def release(self, committed: bool) -> None:
        """After the commit: drop what it kept once its shards are committed (``committed``); after a failure,
        what can be resumed from stays."""


class PersistStaging:
    """``spark.staging: persist``: Spark's DISK_ONLY storage (``refine_plan.persist``)."""

    def __init__(self) -> None:
        self._kept: list[DataFrame] = []

    def stage(self, df: DataFrame, name: str, fingerprint: str = "") -> DataFrame:
        kept = plan.persist(df)
        self._kept.append(kept)
        return kept

    def derived(self, df: DataFrame) -> DataFrame:
        return self.stage(df, "derived")

    def release(self, committed: bool) -> None:
        for frame in reversed(self._kept):  # the executors' storage dies with the application anyway
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
        #: the staging tables this commit wrote or reused, and those it reused
        self._written: list[str] = []
        self.reused: list[str] = []

    def location(self, name: str) -> str:
        return self.place.table(name)

    def stage(self, df: DataFrame, name: str, fingerprint: str = "") -> DataFrame:
        """Write ``df`` over the staging table ``name`` (its schema too: a rerun may run other stages) and read
        it back: whatever reads the result later reads these rows, and nothing computes ``df`` again. When the
        table still holds the rows of a commit with this ``fingerprint`` (a killed or failed attempt of the same
        commit), they are read back as they are and ``df`` is not computed at all."""
        where = self.location(name)
        found = staged_fingerprint(self.spark, self.place, name)
        if fingerprint and found == fingerprint:
            log.info("resuming from staging: %s holds this commit's %s (same input files, settings and models): "
                     "reused, not computed again", where, name)
            self.reused.append(name)
        else:
            if found:
                log.warning("staging %s holds %s staged for other input files or settings (stale): discarded, "
                            "computing them again", where, name)
            writer = (
                df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
                .option("userMetadata", staging_metadata(self.run_id, fingerprint))
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

    def release(self, committed: bool) -> None:
        """After the shard commit: empty the staging tables and remove their files (``vacuum``, retaining 0
        hours: only this run reads them; where the platform refuses the VACUUM, the files stay until the
        table's next VACUUM). The commit's rows are in the output tables by then, so a clean-up that fails
        loses nothing: it is logged, and the next commit overwrites the rows. After a failure the staged rows
        stay, for a rerun to resume from."""
        if not committed:
            if self._written:
                log.info("commit failed: its staged %s stay in %s for a rerun with run id %s to resume from",
                         " and ".join(self._written), self.place.folder or self.place.table("*"), self.run_id)
            self._written.clear()
            return
        # the tables side by side: each DELETE and VACUUM is mostly driver time; one retention setting around both
        with session_conf(self.spark, RETENTION_CHECK_CONF, "false"):
            run_concurrently(self.spark, {name: partial(self._empty, name) for name in self._written})
        self._written.clear()

    def _empty(self, name: str) -> None:
        relation = self.place.relation(name)
        try:
            self.spark.sql(f"DELETE FROM {relation}")
        except Exception as exc:  # noqa: BLE001 - the shard commit is done: nothing is lost
            log.warning("staging table %s not emptied after the shard commit (its rows are committed; the "
                        "next commit overwrites them): %s", relation, str(exc)[:300])
            return
        try:
            vacuum(self.spark, relation)
        except Exception as exc:  # noqa: BLE001 - the rows are gone; only disk space is at stake
            log.warning("staging table %s emptied, but its files stay until a VACUUM: %s", relation, str(exc)[:300])


def vacuum(spark: SparkSession, relation: str) -> None:
    """Remove the files of a staging table's removed rows now. ``LITE`` takes them from the Delta log (seconds;
    a full VACUUM lists the table's folder, ~30 s a table on local[2]); where LITE is refused (a file no commit
    references, such as a killed write's, or a Delta without LITE), the full VACUUM."""
    try:
        spark.sql(f"VACUUM {relation} LITE RETAIN 0 HOURS")
    except Exception as exc:  # noqa: BLE001 - DELTA_CANNOT_VACUUM_LITE, or a parser without LITE
        log.debug("VACUUM LITE refused on %s, running the full VACUUM: %s", relation, str(exc)[:200])
        spark.sql(f"VACUUM {relation} RETAIN 0 HOURS")


def staged_fingerprint(spark: SparkSession, place: StagingPlace, name: str) -> str:
    """The fingerprint of the rows the staging table ``name`` holds: that of the write behind its latest commit
    (maintenance commits skipped); "" when the table is missing, was emptied after a shard commit, or its
    history cannot be read (the commit is then computed again)."""
    relation = place.relation(name)
    try:
        if place.namespace and not spark.catalog.tableExists(place.table(name)):
            return ""
        history = spark.sql(f"DESCRIBE HISTORY {relation} LIMIT 20").select("operation", "userMetadata").collect()
    except Exception as exc:  # noqa: BLE001 - a path that is no Delta table yet (the run's first commit)
        log.debug("no staged %s to resume from at %s: %s", name, relation, str(exc)[:200])
        return ""
    for commit in history:  # newest first
        if str(commit.operation or "").upper().startswith(MAINTENANCE_OPERATIONS):
            continue
        try:
            metadata = json.loads(commit.userMetadata or "{}")
        except ValueError:
            return ""
        return str(metadata.get("prox_spark_staging") or "") if isinstance(metadata, dict) else ""
    return ""


def staging_metadata(run_id: str, fingerprint: str) -> str:
    """A staging write's ``userMetadata``: the run, as on every commit of the job, and the fingerprint."""
    return json.dumps({"prox_spark_run_id": run_id, "prox_spark_staging": fingerprint})


def commit_fingerprints(
    config: RefineConfig, files: list[str], listed_rows: dict[str, int] | None, versions: dict,
    source_run_id: str | None,
) -> dict[str, str]:
    """What each staging table of a commit is computed from, as a digest per table: ``records`` from the commit's
    input files (with the rows the listing counted in each) and the reading settings; ``stages`` from those
    records, the pipeline, rules, model and executor settings, the models' ids and checksums and the library
    versions (``versions``, as in ``runs.versions_json``), and, for ``apply``, the source run. Settings that
    cannot change a staged row (where the outputs go, Spark's own, partitioning, faults) are left out."""
    reading = {key: value for key, value in as_dict(config.input).items()
               if key not in ("path", "table", "partitions", "shards_per_commit", "max_quarantined_fraction")}
    records = _digest({
        "format": STAGING_FORMAT, "files": sorted(files), "reading": reading, "versions": versions,
        "listed_rows": {path: listed_rows.get(path) for path in sorted(files)} if listed_rows is not None else None,
    })
    stages = _digest({
        "records": records, "pipeline": as_dict(config.pipeline), "rules": as_dict(config.rules),
        "models": as_dict(config.models), "executor": as_dict(config.executor), "source_run_id": source_run_id,
    })
    return {"records": records, "stages": stages}


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


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
    "DeltaStaging", "PersistStaging", "Staging", "StagingPlace", "commit_fingerprints", "drop_run_staging",
    "run_folder", "run_table_prefix", "staged_fingerprint", "staging_for", "staging_place", "staging_root",
]
