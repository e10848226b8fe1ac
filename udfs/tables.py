"""The refine job's Delta tables: schemas with table/column comments, creation, idempotent writes.

The ``refined`` and ``programs`` columns that the core's rows fill are declared with the rows
(``prox_spark.pipeline.rows``: name, Arrow type, description); their specs here add only the columns the job
owns (the run, the shard, the document id, the input's source columns).

Every run writes rows tagged with its ``run_id``; a write replaces exactly the rows of the run's shards
it covers (Delta ``replaceWhere``), so a rerun or a resumed run never duplicates rows, and a process
killed mid-write leaves no partial commit (Delta commits are atomic).

Every commit carries ``userMetadata`` naming the run (``DESCRIBE HISTORY`` shows which run wrote what),
and a commit that loses a race with another writer of the same tables (``ConcurrentAppendException``,
``ProtocolChangedException``, ...) is retried from a fresh snapshot ``output.commit_attempts`` times
with exponential backoff before the job fails with one line naming the table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Collection, Iterable, TypeVar

import delta.exceptions as delta_errors  # importing it maps Delta's JVM conflict errors to Python classes
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from prox_spark.udfs.connect import session_conf
from prox_spark.udfs.side_by_side import run_concurrently
from prox_spark.udfs.spark_line import SPARK4
from prox_spark.config import OutputConfig
from prox_spark.pipeline.rows import PROGRAM_ROW_FIELDS, REFINED_ROW_FIELDS, REFINED_ROW_ONLY_FIELDS, RowField

log = logging.getLogger("prox_spark.tables")

T_ = TypeVar("T_")

#: Delta's commit conflicts: another transaction committed between this one's read and its commit
CONFLICTS: tuple[type[BaseException], ...] = (
    delta_errors.DeltaConcurrentModificationException,
    delta_errors.ConcurrentWriteException,
    delta_errors.MetadataChangedException,
    delta_errors.ProtocolChangedException,
    delta_errors.ConcurrentAppendException,
    delta_errors.ConcurrentDeleteReadException,
    delta_errors.ConcurrentDeleteDeleteException,
    delta_errors.ConcurrentTransactionException,
)
#: the same conflicts by their JVM names, for errors that reach Python unconverted (a builder's Py4J call)
CONFLICT_NAMES = tuple(cls.__name__ for cls in CONFLICTS) + ("DeltaConcurrentModificationException",)
#: what a table creation sees while another job's creation of the same table is half done (its files
#: are there, its first commit is not yet): a non-empty location, or, where ``CREATE TABLE IF NOT EXISTS``
#: took the half-made folder for a table (Delta 3.3 on Spark 3.5), no table at the read that follows.
#: Retried like a conflict: the next try finds the table
CREATION_RACES = ("DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION", "DELTA_TABLE_NOT_FOUND")
#: session conf Delta copies into every commit's ``userMetadata`` (a writer's ``userMetadata`` option wins)
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


class CommitConflictError(RuntimeError):
    """A Delta commit still conflicted with concurrent writers after ``output.commit_attempts`` attempts."""


@dataclass(frozen=True)
class Column:
    name: str
    type: T.DataType
    comment: str


@dataclass(frozen=True)
class TableSpec:
    key: str
    comment: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...] = ()

    @property
    def schema(self) -> T.StructType:
        return T.StructType([T.StructField(c.name, c.type, True) for c in self.columns])


def _row_columns(fields: Iterable[RowField], leave_out: Collection[str] = ()) -> tuple[Column, ...]:
    """The columns a core row fills (``prox_spark.pipeline.rows``), in its order, less the fields in ``leave_out``:
    each field's Spark type derived from its Arrow type, its description as the comment, so the row declares them
    once and the job's writes select exactly its fields."""
    return tuple(Column(f.name, from_arrow_type(f.type), f.description) for f in fields if f.name not in leave_out)


REFINED = TableSpec(
    "refined",
    "ProX-refined corpus: one row per input document that was read (kept or dropped), final text in `text`.",
    (
        Column("run_id", T.StringType(), "Run that produced the row."),
        Column("shard", T.StringType(), "Corpus shard (input file: `<file name>@<hash of its full path>`) the document came from; partition key."),
        Column("doc_id", T.StringType(), "Stable document id: the input's id, else a sha256 content hash."),
        *_row_columns(REFINED_ROW_FIELDS, REFINED_ROW_ONLY_FIELDS),
        Column("source_file", T.StringType(), "Input file path."),
        Column("record_index", T.LongType(), "Position of the record in its input file."),
        Column("url", T.StringType(), "Source URL when the input has one (WARC)."),
        Column("metadata_json", T.StringType(), "Other input fields, as JSON."),
    ),
    ("shard",),
)

PROGRAMS = TableSpec(
    "programs",
    "Programs the refining models wrote, stored apart from their effect so an audit can re-execute them.",
    (
        Column("run_id", T.StringType(), "Run that produced the row."),
        Column("shard", T.StringType(), "Corpus shard (input file)."),
        Column("doc_id", T.StringType(), "Document id (joins refined.doc_id)."),
        *_row_columns(PROGRAM_ROW_FIELDS),
    ),
    ("stage",),
)

QUARANTINE = TableSpec(
    "quarantine",
    "Input records that could not be refined: unreadable, malformed or without usable text.",
    (
        Column("run_id", T.StringType(), "Run that produced the row."),
        Column("shard", T.StringType(), "Corpus shard (input file)."),
        Column("source_file", T.StringType(), "Input file path."),
        Column("record_index", T.LongType(), "Position of the record in its file, null when unknown."),
        Column("doc_id", T.StringType(), "Document id when one could be read."),
        Column("raw", T.StringType(), "The raw record as a string (capped)."),
        Column("reason", T.StringType(), "Machine-readable reason (invalid_json, missing_text, truncated_gzip, ...)."),
        Column("detail", T.StringType(), "Human-readable explanation."),
    ),
)

RUNS = TableSpec(
    "runs",
    "One row per attempt of a refine or apply run (run_id, attempt): configuration, versions, counts (input = kept + dropped + quarantined) and timings.",
    (
        Column("run_id", T.StringType(), "Run id."),
        Column("started_at", T.TimestampType(), "Start time (UTC)."),
        Column("finished_at", T.TimestampType(), "End time (UTC)."),
        Column("status", T.StringType(), "succeeded or failed."),
        Column("config_json", T.StringType(), "Full job configuration as JSON (secret-looking spark.conf values redacted)."),
        Column("versions_json", T.StringType(), "Library and model versions as JSON."),
        Column("input_path", T.StringType(), "Input corpus path, or the input table's name (input.table)."),
        Column("shards", T.LongType(), "Input shards (files) in the run."),
        Column("input_docs", T.LongType(), "Input records read (documents + quarantined)."),
        Column("kept_docs", T.LongType(), "Documents kept."),
        Column("dropped_docs", T.LongType(), "Documents dropped (doc or chunk stage)."),
        Column("quarantined_docs", T.LongType(), "Records quarantined."),
        Column("words_before", T.LongType(), "Words in all read documents."),
        Column("words_after", T.LongType(), "Words in kept documents."),
        Column("stage_seconds_json", T.StringType(), "Seconds per stage as JSON."),
        Column("mode", T.StringType(), "pipeline.mode of the run: prox, prox-doc, rules or rules+prox (null: before modes existed)."),
        Column("attempt", T.LongType(), "Attempt number of the run id (1, 2, ...): every rerun or resume adds a row (null: before attempts were kept)."),
        Column("source_run_id", T.StringType(), "prox-spark apply: the run whose stored programs this run re-executed under its own executor settings; null for a refine run."),
    ),
)

SHARDS = TableSpec(
    "shards",
    "Commit log: one row per input shard a run has fully written; a resumed run skips these shards.",
    (
        Column("run_id", T.StringType(), "Run id."),
        Column("shard", T.StringType(), "Input shard: `<file name>@<16 hex digits of sha256(full path or URI)>`."),
        Column("records_read", T.LongType(), "Records the reader produced (documents + quarantined)."),
        Column("documents", T.LongType(), "Documents refined (rows in refined)."),
        Column("kept", T.LongType(), "Documents kept."),
        Column("quarantined", T.LongType(), "Records quarantined."),
        Column("committed_at", T.TimestampType(), "When the shard's rows were committed (UTC)."),
        Column("source_file", T.StringType(), "The input file's full path or URI as listed (the shard's identity)."),
    ),
)

ALL_TABLES = (REFINED, PROGRAMS, QUARANTINE, RUNS, SHARDS)


def quote_identifier(name: str) -> str:
    """``name`` as one SQL identifier in backticks (a backtick inside doubled): a database or table name
    with a dash, a dot or a quote is then a name, never SQL."""
    return "`" + name.replace("`", "``") + "`"


def qualified_name(*parts: str) -> str:
    """A multi-part SQL name with every part quoted: `` `main`.`prox-2026`.`refined` ``."""
    return ".".join(quote_identifier(part) for part in parts)


def table_location(output: OutputConfig, spec: TableSpec) -> str:
    """Path (path-based tables) or quoted qualified name (metastore tables: `` `schema`.`table` ``, or
    `` `catalog`.`schema`.`table` `` with a catalog) of one table."""
    name = getattr(output, f"{spec.key}_table")
    if output.database:
        return qualified_name(*output.namespace, name)
    base = output.path.rstrip("/")
    if ":" not in base.split("/", 1)[0]:  # a local path (no s3:, dbfs:, abfss: ... scheme): make it absolute
        base = os.path.abspath(base)
    return f"{base}/{name}"


def table_relation(output: OutputConfig, spec: TableSpec) -> str:
    """One table in SQL: its quoted qualified name (metastore tables), or ``delta.`<path>```."""
    where = table_location(output, spec)
    return where if output.database else "delta." + quote_identifier(where)


def ensure_tables(spark: SparkSession, output: OutputConfig, run_id: str | None = None) -> None:
    """Create each table with its comments when missing (idempotent); the tables are created side by side.

    Two jobs creating the same tables at once race on the first commit (``ProtocolChangedException``):
    the loser retries and finds the table there. With ``run_id`` the creation commits name the run."""
    with commit_metadata(spark, run_id):
        if output.database:
            ensure_schema(spark, output)
        run_concurrently(spark, {
            spec.key: partial(with_commit_retries, partial(_create_table, spark, output, spec), output,
                              f"create {table_location(output, spec)}", also=CREATION_RACES)
            for spec in ALL_TABLES
        })


def ensure_schema(spark: SparkSession, output: OutputConfig) -> None:
    """The metastore schema of the tables, created only when it is missing: Unity Catalog grants ``CREATE SCHEMA``
    apart from the rights to write tables, and a job given an existing schema must not need it. The check is a
    catalog lookup (``spark.catalog.databaseExists``, on classic and Connect sessions alike); a catalog is never
    created."""
    schema = qualified_name(*output.namespace)
    if spark.catalog.databaseExists(schema):
        return
    log.info("schema %s not found: creating it", schema)
    try:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    except Exception:
        log.error("schema %s does not exist (or this principal cannot see it) and creating it failed: create it, "
                  "or grant USE SCHEMA on it, then rerun", schema)
        raise


@contextlib.contextmanager
def commit_metadata(spark: SparkSession, run_id: str | None) -> Iterator[None]:
    """Within the block, Delta commits made without a ``userMetadata`` option (table creation) carry the run's.

    It is a session setting: a second job in the same driver at the same moment could stamp these
    creation commits with its own id. Data writes set the writer option, which is per commit."""
    if run_id is None:
        yield
        return
    with session_conf(spark, USER_METADATA_CONF, user_metadata(run_id)):  # refused (serverless): no run id there
        yield


def user_metadata(run_id: str) -> str:
    """What every commit of a run records as ``userMetadata``: ``{"prox_spark_run_id": ...}``."""
    return json.dumps({"prox_spark_run_id": run_id})


def is_conflict(exc: BaseException, also: tuple[str, ...] = ()) -> bool:
    """Whether ``exc`` is a Delta commit conflict (retrying from a fresh snapshot can succeed), or one of
    the error names in ``also``."""
    return isinstance(exc, CONFLICTS) or any(name in str(exc)[:2000] for name in CONFLICT_NAMES + also)


def with_commit_retries(
    action: Callable[[], T_], output: OutputConfig, what: str, also: tuple[str, ...] = (),
) -> T_:
    """Run ``action`` (one Delta commit); on a commit conflict, wait and run it again, at most
    ``output.commit_attempts`` times in all. Each attempt starts a new transaction on the latest
    snapshot, so a replaceWhere retried after another run's commit replaces exactly its own rows again.
    Past the last attempt: ``CommitConflictError`` with one line naming ``what`` and the conflict.
    ``also`` names further errors to retry the same way (``CREATION_RACES`` for table creation)."""
    attempt = 1
    while True:
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - anything but a conflict is re-raised unchanged
            if not is_conflict(exc, also):
                raise
            kind = next(
                (name for name in CONFLICT_NAMES + also if name in f"{type(exc).__name__} {exc}"), type(exc).__name__
            )
            if attempt >= output.commit_attempts:
                raise CommitConflictError(
                    f"{what}: Delta commit conflicted with a concurrent writer {attempt} times ({kind}); "
                    "another job is writing the same tables (raise output.commit_attempts, or run them one after "
                    "the other)"
                ) from exc
            wait = output.commit_backoff_seconds * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            log.warning("%s: %s on attempt %d of %d, retrying in %.1fs", what, kind, attempt, output.commit_attempts, wait)
            time.sleep(wait)
            attempt += 1


def _create_table(spark: SparkSession, output: OutputConfig, spec: TableSpec) -> None:
    """``CREATE TABLE IF NOT EXISTS`` with the spec's comments, then add the columns a table made by an earlier
    version lacks.

    SQL, not ``delta.tables.DeltaTable.createIfNotExists``: under Spark Connect the Python ``DeltaTable``
    API needs the Delta Connect plugin on the server (``delta-connect-server``, not in the Delta jars a
    cluster or ``make jars`` installs: a local Connect server answers "No handler found for extension"),
    while Delta's SQL runs the same on classic and Connect sessions."""
    where = table_location(output, spec)
    relation = table_relation(output, spec)
    columns = ", ".join(
        f"{quote_identifier(c.name)} {type_sql(c.type)} COMMENT {_sql_str(c.comment)}" for c in spec.columns
    )
    partitioned = (
        f" PARTITIONED BY ({', '.join(quote_identifier(name) for name in spec.partition_by)})" if spec.partition_by else ""
    )
    if not (output.database and spark.catalog.tableExists(where)):  # an existing table needs no CREATE TABLE right
        spark.sql(f"CREATE TABLE IF NOT EXISTS {relation} ({columns}) USING DELTA{partitioned} COMMENT {_sql_str(spec.comment)}")
    # a table created by an earlier version of the job gains the columns added since (runs.attempt,
    # shards.source_file) before any write or replaceWhere condition names them
    present = set(read_table(spark, output, spec).columns)
    missing = [c for c in spec.columns if c.name not in present]
    if missing:
        added = ", ".join(
            f"{quote_identifier(c.name)} {type_sql(c.type)} COMMENT {_sql_str(c.comment)}" for c in missing
        )
        spark.sql(f"ALTER TABLE {relation} ADD COLUMNS ({added})")


def type_sql(data_type: T.DataType) -> str:
    """``data_type`` as SQL DDL, nested field names quoted (``ops`` has fields named ``start`` and ``end``)."""
    if isinstance(data_type, T.StructType):
        return "STRUCT<" + ", ".join(f"{quote_identifier(f.name)}: {type_sql(f.dataType)}" for f in data_type.fields) + ">"
    if isinstance(data_type, T.ArrayType):
        return f"ARRAY<{type_sql(data_type.elementType)}>"
    if isinstance(data_type, T.MapType):
        return f"MAP<{type_sql(data_type.keyType)}, {type_sql(data_type.valueType)}>"
    return data_type.simpleString()


def replace_rows(
    df: DataFrame, output: OutputConfig, spec: TableSpec, run_id: str, shards: Iterable[str] | None,
    *, attempt: int | None = None,
) -> None:
    """Overwrite exactly this run's rows (for ``shards``, or for one ``attempt``, when given) with ``df``:
    reruns never duplicate. The commit carries the run id as ``userMetadata`` and is retried on conflicts."""
    condition = f"run_id = {_sql_str(run_id)}"
    shard_list = sorted(shards) if shards is not None else None
    if shard_list is not None:
        condition += f" AND shard IN ({', '.join(_sql_str(s) for s in shard_list)})"
    if attempt is not None:
        condition += f" AND attempt = {int(attempt)}"
    writer = (
        df.select(*[c.name for c in spec.columns])
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", condition)
        # tables written before a column was added (e.g. programs.clipped_ops) gain it instead of failing
        .option("mergeSchema", "true")
        .option("userMetadata", user_metadata(run_id))
    )
    where = table_location(output, spec)
    if output.database and not SPARK4:
        # Spark 3.5: saveAsTable in overwrite mode takes Spark's v1 path for a Delta metastore table, which refuses
        # a frame that reads the table (the duplicate check reads `refined`) and in tests lost the rows of the
        # run's earlier commits; from 3.5.6 it fails on Delta 3.3 altogether ("does not support truncate").
        # DataFrameWriterV2's overwrite(condition) replaces exactly the rows the condition matches.
        save = partial(
            df.select(*[c.name for c in spec.columns]).writeTo(where)
            .option("mergeSchema", "true").option("userMetadata", user_metadata(run_id)).overwrite,
            F.expr(condition),
        )
    else:
        save = partial(writer.saveAsTable, where) if output.database else partial(writer.save, where)
    with_commit_retries(save, output, f"write {spec.key} ({where})")


def read_table(spark: SparkSession, output: OutputConfig, spec: TableSpec) -> DataFrame:
    where = table_location(output, spec)
    return spark.read.table(where) if output.database else spark.read.format("delta").load(where)


def read_table_pinned(spark: SparkSession, output: OutputConfig, spec: TableSpec) -> DataFrame:
    """The table as it is now, pinned to its current version (``VERSION AS OF``), for frames that a commit's
    persisted stage results derive from.

    Spark reuses persisted rows only for a plan equal to the one persisted. A plain Delta read is planned
    against the table's latest version each time, so once one of the commit's own writes lands on the table,
    the next write's plan differs from the persisted one and Spark runs the models again for every document.
    A pinned read plans the same whatever commits follow (and every write of the commit sees one snapshot)."""
    relation = table_relation(output, spec)
    version = spark.sql(f"DESCRIBE HISTORY {relation} LIMIT 1").first()["version"]
    return spark.sql(f"SELECT * FROM {relation} VERSION AS OF {int(version)}")


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
