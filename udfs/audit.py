"""Audits of refine runs over the job's Delta tables: plain SQL files, and the same queries as DataFrames.

The issue asked for ``prox_spark/audit.py``; it lives in ``jobs/`` because it builds Spark DataFrames and the
core package never imports pyspark (architecture.md, "Layers"). The queries live in ``udfs/sql/audit/*.sql``,
one self-contained query per file, and the functions here run those files, so a rule is written once:

    from prox_spark.udfs.audit import audit_drop_reasons, audit_sql
    audit_drop_reasons(spark, "out/local", "r1").show()   # one run, in the query's order
    audit_sql(spark, "out/local", "failure_ratio").show()  # the file as it is: every run

Each file reads the tables through named parameter markers, ``IDENTIFIER(:refined)``, ``IDENTIFIER(:programs)``,
``IDENTIFIER(:quarantine)``, ``IDENTIFIER(:runs)`` and ``IDENTIFIER(:shards)`` (one per table of
``udfs.tables``), so it also runs as it is in Databricks SQL or through ``spark.sql(query, args=...)`` with
the tables' metastore names or path-based names as parameter values (``table_names``). Nothing is registered
in the session. Every query returns all runs with a ``run_id`` column, sorted so that the same tables give
the same rows in the same order; the ``audit_*`` functions filter on ``run_id`` (``None``: every run), and
Spark pushes that filter below the aggregation and the sort. A file that builds on another audit carries its
CTEs (``removed_lines``, kept identical by tests/test_audit.py).

What the tables can and cannot tell (the raw input text is not stored, only the final text):

- drop reasons, word retention (per run, shard and document), failure ratio per stage against ProX's 0.04%
  doc / 0.36% chunk, ops per program, op kinds and statuses, normalize sources and model time per shard come
  from the tables alone;
- removed lines are known by *position* (document line numbers of the chunk programs' ``remove_lines``):
  ``removed_by_position`` (ten relative-position buckets) and ``removed_line_offsets`` (line offsets from the
  start and the end);
- the *text* of removed lines and before/after diffs need the input: ``audit_removed_line_patterns``,
  ``document_report`` and ``sample_reports`` (``udfs.audit_documents``, importable from here too) re-read it
  with the job's own reader, from the input path the run recorded in ``runs`` (or ``input_path``), and use a
  document only when it still has the line and word counts the run recorded (``input_matches``). File inputs
  need local or FUSE paths (``/dbfs/``, ``/Volumes/``); a Delta input is read by Spark (its current version: a
  table rewritten since the run no longer matches).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Optional, Union

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.tables import ALL_TABLES, RUNS, read_table, table_location
from prox_spark.config import OutputConfig, RefineConfig, build

__all__ = [
    "AUDITS",
    "AuditError",
    "PATH_PREFIXES",
    "SQL_DIR",
    "audit",
    "audit_doc_results",
    "audit_doc_retention",
    "audit_drop_reasons",
    "audit_failure_ratio",
    "audit_normalize_sources",
    "audit_op_counts",
    "audit_ops_per_program",
    "audit_removed_by_position",
    "audit_removed_line_offsets",
    "audit_removed_lines",
    "audit_retention",
    "audit_shard_retention",
    "audit_guard_overrides",
    "audit_slowest_shards",
    "audit_sql",
    "latest_run_id",
    "load_sql",
    "run_config",
    "table_names",
]

#: the folder holding one ``<name>.sql`` per audit
SQL_DIR = Path(__file__).resolve().parent / "sql" / "audit"

#: the audits that read the job's tables alone (``removed_line_patterns`` also needs the input text)
AUDITS = (
    "drop_reasons",
    "retention",
    "doc_retention",
    "shard_retention",
    "failure_ratio",
    "ops_per_program",
    "op_counts",
    "normalize_sources",
    "removed_lines",
    "removed_by_position",
    "removed_line_offsets",
    "slowest_shards",
    "doc_results",
    "guard_overrides",
)

#: how a path-based table is named inside ``IDENTIFIER(...)``, in the order tried. ``delta.`<path>``` is the
#: form Delta documents; open-source Spark 4.0.1 resolves that two-part name from ``IDENTIFIER`` as a query on
#: files and refuses it (UNSUPPORTED_DATASOURCE_FOR_DIRECT_QUERY), but reaches the same table through the
#: session catalog's three-part name.
PATH_PREFIXES = ("delta", "spark_catalog.delta")

#: Spark version -> the entry of ``PATH_PREFIXES`` that worked, so later queries skip the refused form
_path_prefix_found: dict[str, str] = {}

Output = Union[OutputConfig, str]


class AuditError(RuntimeError):
    """The audit cannot run: tables missing, run unknown, input unreadable (the message says which)."""


def as_output(output: Output) -> OutputConfig:
    """``OutputConfig`` as given, or a path-based one for a plain path string."""
    return output if isinstance(output, OutputConfig) else OutputConfig(path=str(output))


def load_sql(name: str) -> str:
    """The query of one audit (``udfs/sql/audit/<name>.sql``) without a trailing semicolon."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SQL_DIR.glob("*.sql"))) or "none"
        raise AuditError(f"no audit query {name!r} at {path} (known: {known})")
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def table_names(output: Output, path_prefix: str = PATH_PREFIXES[0]) -> dict[str, str]:
    """The SQL parameters naming ``output``'s tables: table key (``refined``, ``programs``, ...) -> name.

    A metastore table keeps its qualified name (`` `db`.`refined` ``); a path-based one becomes
    ``<path_prefix>.`<path>``` (see ``PATH_PREFIXES``), both as ``IDENTIFIER`` reads them."""
    output = as_output(output)
    if output.database:
        return {spec.key: table_location(output, spec) for spec in ALL_TABLES}
    return {spec.key: f"{path_prefix}.`" + table_location(output, spec).replace("`", "``") + "`" for spec in ALL_TABLES}


def audit_sql(spark: SparkSession, output: Output, name: str, **parameters: str) -> DataFrame:
    """``udfs/sql/audit/<name>.sql`` as it is, every run, its tables bound to ``output``'s (``table_names``).

    ``parameters`` binds the query's other markers (``run_id``, ``input_text`` of removed_line_patterns).
    For path-based tables the first name form of ``PATH_PREFIXES`` this Spark accepts is used."""
    output = as_output(output)
    query = load_sql(name)
    prefixes = PATH_PREFIXES
    if output.database:
        prefixes = PATH_PREFIXES[:1]  # not used in metastore names: one try
    elif spark.version in _path_prefix_found:
        prefixes = (_path_prefix_found[spark.version],)
    failure: Optional[AnalysisException] = None
    for prefix in prefixes:
        try:
            df = spark.sql(query, args={**table_names(output, prefix), **parameters})  # analysed here
        except AnalysisException as exc:  # the name form refused, or a table missing
            failure = exc
            continue
        if not output.database:
            _path_prefix_found[spark.version] = prefix
        return df
    first = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
    where = ", ".join(table_location(output, spec) for spec in ALL_TABLES)
    raise AuditError(f"cannot run the {name} audit over the tables {where}: run the refine job first "
                     f"({type(failure).__name__}: {first})") from failure


def audit(spark: SparkSession, output: Output, name: str, run_id: Optional[str] = None) -> DataFrame:
    """The audit ``name`` (one of ``AUDITS``) for one run (``None``: all runs), in its query's order."""
    if name not in AUDITS:
        raise AuditError(f"unknown audit {name!r} (known: {', '.join(AUDITS)})")
    return _for_run(audit_sql(spark, output, name), run_id)


def _for_run(df: DataFrame, run_id: Optional[str]) -> DataFrame:
    return df if run_id is None else df.filter(F.col("run_id") == run_id)


def audit_drop_reasons(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Documents per outcome (kept / dropped / quarantined), stage and reason, with their share of the input."""
    return audit(spark, output, "drop_reasons", run_id)


def audit_retention(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Documents and words before, after the doc stage and at the end; word retention ratios."""
    return audit(spark, output, "retention", run_id)


def audit_doc_retention(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """One row per document: words before/after and ``word_retention`` (the retention histogram's data)."""
    return audit(spark, output, "doc_retention", run_id)


def audit_shard_retention(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Per input shard: documents kept (``kept_fraction``) and words kept, to spot a shard unlike the rest."""
    return audit(spark, output, "shard_retention", run_id)


def audit_guard_overrides(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Programs a guard rewrote (doc main-text guard, chunk-range guard, the line refiner's page cuts) per run and stage."""
    return audit(spark, output, "guard_overrides", run_id)


def audit_failure_ratio(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Programs with a parse_error/out_of_range line per stage, against ProX's 0.04% (doc) / 0.36% (chunk)."""
    return audit(spark, output, "failure_ratio", run_id)


def audit_ops_per_program(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Calls per program per stage (mean, median, max), ProX's 3.7 per chunk program beside it."""
    return audit(spark, output, "ops_per_program", run_id)


def audit_op_counts(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Program lines per stage, op kind and status."""
    return audit(spark, output, "op_counts", run_id)


def audit_normalize_sources(spark: SparkSession, output: Output, run_id: Optional[str] = None,
                            limit: Optional[int] = 20) -> DataFrame:
    """The most frequent normalize (source, target) pairs with how often they applied."""
    df = audit(spark, output, "normalize_sources", run_id)
    return df.limit(limit) if limit else df


def audit_removed_lines(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """One row per removed document line (run_id, doc_id, n_lines, line) of documents the chunk stage edited."""
    return audit(spark, output, "removed_lines", run_id)


def audit_removed_by_position(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Removed lines by relative position in the document: ten buckets (0-10%, ..., 90-100%)."""
    return audit(spark, output, "removed_by_position", run_id)


def audit_removed_line_offsets(spark: SparkSession, output: Output, run_id: Optional[str] = None,
                               limit: Optional[int] = 20) -> DataFrame:
    """The most removed line offsets from the start / end of a document, with removal rates."""
    df = audit(spark, output, "removed_line_offsets", run_id)
    return df.limit(limit) if limit else df


def audit_slowest_shards(spark: SparkSession, output: Output, run_id: Optional[str] = None,
                         limit: Optional[int] = 20) -> DataFrame:
    """Shards by model time (programs' latency summed per shard), slowest first."""
    df = audit(spark, output, "slowest_shards", run_id)
    return df.limit(limit) if limit else df


def audit_doc_results(spark: SparkSession, output: Output, run_id: Optional[str] = None) -> DataFrame:
    """Per document: doc program, chunk programs (in order, with line statuses), decision and final text."""
    return audit(spark, output, "doc_results", run_id)


def latest_run_id(spark: SparkSession, output: Output) -> str:
    """The most recently started run that wrote a ``runs`` row (a finished run)."""
    row = (
        read_table(spark, as_output(output), RUNS)
        .orderBy(F.desc("started_at"), F.desc("run_id"))
        .select("run_id")
        .first()
    )
    if row is None:
        raise AuditError(f"no finished run in {table_location(as_output(output), RUNS)}")
    return row.run_id


def run_config(spark: SparkSession, output: Output, run_id: str) -> RefineConfig:
    """The configuration a run recorded in ``runs.config_json``."""
    row = read_table(spark, as_output(output), RUNS).filter(F.col("run_id") == run_id).select("config_json").first()
    if row is None:
        raise AuditError(f"run {run_id!r} has no row in the runs table (unknown, or not finished)")
    return build(RefineConfig, json.loads(row.config_json), "")


#: what ``udfs.audit_documents`` holds (the audits that re-read the input, and one document's report), still
#: importable from here: ``from udfs.audit import sample_reports`` (not in ``__all__``)
_DOCUMENT_AUDITS = (
    "DocumentReport", "INPUT_TEXT_VIEW", "SAMPLE_KINDS", "audit_removed_line_patterns", "document_report",
    "read_input_texts", "sample_reports",
)


def __getattr__(name: str) -> Any:
    if name in _DOCUMENT_AUDITS:  # imported on first use: udfs.audit_documents builds on this module
        return getattr(importlib.import_module("prox_spark.udfs.audit_documents"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
