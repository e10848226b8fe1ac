"""Audits of refine runs over the job's Delta tables: plain SQL files, and the same queries as DataFrames.

The issue asked for ``prox_spark/audit.py``; it lives in ``jobs/`` because it builds Spark DataFrames and the
core package never imports pyspark (architecture.md, "Layers"). The queries live in ``jobs/sql/audit/*.sql``,
one self-contained query per file, and the functions here run those files, so a rule is written once:

    from jobs.audit import audit_drop_reasons, audit_sql
    audit_drop_reasons(spark, "out/local", "r1").show()   # one run, in the query's order
    audit_sql(spark, "out/local", "failure_ratio").show()  # the file as it is: every run

Each file reads the tables through named parameter markers, ``IDENTIFIER(:refined)``, ``IDENTIFIER(:programs)``,
``IDENTIFIER(:quarantine)``, ``IDENTIFIER(:runs)`` and ``IDENTIFIER(:shards)`` (one per table of
``jobs.tables``), so it also runs as it is in Databricks SQL or through ``spark.sql(query, args=...)`` with
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
  ``document_report`` and ``sample_reports`` re-read it with the job's own reader, from the input path the
  run recorded in ``runs`` (or ``input_path``), and use a document only when it still has the line and word
  counts the run recorded (``input_matches``). File inputs need local or FUSE paths (``/dbfs/``, ``/Volumes/``);
  a Delta input is read by Spark (its current version: a table rewritten since the run no longer matches).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.tables import ALL_TABLES, REFINED, RUNS, read_table, table_location
from prox_spark.config import OutputConfig, RefineConfig, build

__all__ = [
    "AUDITS",
    "AuditError",
    "DocumentReport",
    "PATH_PREFIXES",
    "SAMPLE_KINDS",
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
    "audit_removed_line_patterns",
    "audit_removed_lines",
    "audit_retention",
    "audit_shard_retention",
    "audit_guard_overrides",
    "audit_slowest_shards",
    "audit_sql",
    "document_report",
    "latest_run_id",
    "load_sql",
    "read_input_texts",
    "run_config",
    "sample_reports",
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

#: the temp view ``audit_removed_line_patterns`` registers over the re-read input, its ``:input_text``
#: (a DataFrame has no name a SQL parameter could hold)
INPUT_TEXT_VIEW = "prox_input_text"

Output = Union[OutputConfig, str]


class AuditError(RuntimeError):
    """The audit cannot run: tables missing, run unknown, input unreadable (the message says which)."""


def as_output(output: Output) -> OutputConfig:
    """``OutputConfig`` as given, or a path-based one for a plain path string."""
    return output if isinstance(output, OutputConfig) else OutputConfig(path=str(output))


def load_sql(name: str) -> str:
    """The query of one audit (``jobs/sql/audit/<name>.sql``) without a trailing semicolon."""
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
    """``jobs/sql/audit/<name>.sql`` as it is, every run, its tables bound to ``output``'s (``table_names``).

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


# --------------------------------------------------------------------------------------------------
# the input text: re-read with the job's reader (the tables keep only the final text)
# --------------------------------------------------------------------------------------------------


def run_config(spark: SparkSession, output: Output, run_id: str) -> RefineConfig:
    """The configuration a run recorded in ``runs.config_json``."""
    row = read_table(spark, as_output(output), RUNS).filter(F.col("run_id") == run_id).select("config_json").first()
    if row is None:
        raise AuditError(f"run {run_id!r} has no row in the runs table (unknown, or not finished)")
    return build(RefineConfig, json.loads(row.config_json), "")


def read_input_texts(
    spark: SparkSession,
    output: Output,
    run_id: str,
    input_path: Optional[str] = None,
    doc_ids: Optional[Iterable[str]] = None,
) -> DataFrame:
    """``(run_id, doc_id, text)`` of the run's input, re-read with the job's reader and the run's input settings.

    ``input_path`` replaces the path the run recorded (the corpus moved, or a subset is enough). With
    ``doc_ids`` only the shards holding those documents are read. The text is the input *now*: callers
    compare it with the counts the run recorded before trusting it (``DocumentReport.input_matches``)."""
    from jobs import refine_plan as plan
    from prox_spark.readers.dispatch import list_input_files

    output = as_output(output)
    config = run_config(spark, output, run_id)
    if input_path:  # a path in place of the recorded input, read with the run's input.format
        config = dataclasses.replace(config, input=dataclasses.replace(config.input, path=input_path, table=""))
    path = config.input.path or config.input.table
    try:
        if config.input.reads_table:  # Spark reads it: any path or table Spark can, its data files are the shards
            files = plan.delta_input_files(spark, config)
        else:
            files = list_input_files(path)
    except Exception as exc:  # FileNotFoundError, or Spark's AnalysisException for a missing table
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditError(f"cannot re-read the input of run {run_id!r} at {path!r}: {first} (pass input_path=...)") from None
    wanted = None if doc_ids is None else sorted(set(doc_ids))
    if wanted is not None:
        shards = {
            row.shard
            for row in read_table(spark, output, REFINED)
            .filter((F.col("run_id") == run_id) & F.col("doc_id").isin(wanted))
            .select("shard").distinct().collect()
        }
        # a shard is its file's full path: a corpus moved since the run (input_path) is matched by file name
        names = {shard.rsplit("@", 1)[0] for shard in shards} if input_path else set()
        files = [f for f in files if plan.shard_of(f) in shards or os.path.basename(f) in names]
    if not files:
        return spark.createDataFrame([], "run_id string, doc_id string, text string")
    if config.input.reads_table:
        records = plan.read_delta_records(spark, config, files)
    else:
        records = plan.read_records(spark, files, config)
    docs, _ = plan.split_records(records)
    if wanted is not None:
        docs = docs.filter(F.col("doc_id").isin(wanted))
    return docs.select(F.lit(run_id).alias("run_id"), "doc_id", "text")


def audit_removed_line_patterns(
    spark: SparkSession,
    output: Output,
    run_id: str,
    input_path: Optional[str] = None,
    limit: Optional[int] = 30,
) -> DataFrame:
    """The most removed line texts, grouped by pattern (digits -> 0, lower case), with an example line.

    Re-reads the whole input of the run (see ``read_input_texts``; pass a narrower ``input_path`` glob to
    sample shards). Documents whose input no longer has the recorded line count are left out."""
    read_input_texts(spark, output, run_id, input_path).createOrReplaceTempView(INPUT_TEXT_VIEW)
    df = audit_sql(spark, output, "removed_line_patterns", run_id=run_id, input_text=INPUT_TEXT_VIEW)
    return df.limit(limit) if limit else df


# --------------------------------------------------------------------------------------------------
# one document: programs and result side by side
# --------------------------------------------------------------------------------------------------


@dataclass
class DocumentReport:
    """A document's programs next to its result, and a diff against its input when that could be re-read."""

    run_id: str
    doc_id: str
    shard: str
    kept: bool
    drop_stage: Optional[str]
    drop_reason: Optional[str]
    program_ignored: bool
    words_before: int
    words_after: int
    lines_before: int
    lines_after: int
    doc_program: Optional[str]
    chunk_program: Optional[str]
    chunk_ops: list[dict] = field(default_factory=list)
    final_text: str = ""
    input_text: Optional[str] = None

    @property
    def input_matches(self) -> Optional[bool]:
        """Whether the re-read input has the word and line counts the run recorded (None: not read)."""
        if self.input_text is None:
            return None
        return (len(self.input_text.split()), self.input_text.count("\n") + 1) == (self.words_before, self.lines_before)

    @property
    def decision(self) -> str:
        if self.kept:
            return "kept (program ignored: too many errors)" if self.program_ignored else "kept"
        return f"dropped at the {self.drop_stage} stage: {self.drop_reason}"

    def diff(self, context: int = 1) -> str:
        """Unified diff (difflib) of the input text against the final text; '' when the input is unknown."""
        if self.input_text is None:
            return ""
        return "".join(
            difflib.unified_diff(
                _lines(self.input_text), _lines(self.final_text),
                fromfile=f"{self.doc_id} (input)", tofile=f"{self.doc_id} (final)", n=context,
            )
        )

    def render(self, context: int = 1, max_chars: int = 4000) -> str:
        """Programs, line statuses, decision and diff (or final text) as one printable block."""
        out = [
            f"== {self.doc_id}  [{self.shard}]  {self.decision}",
            f"   words {self.words_before} -> {self.words_after}, lines {self.lines_before} -> {self.lines_after}",
            "-- doc program:",
            _indent(self.doc_program or "(none)"),
        ]
        if self.chunk_program is not None:
            out += ["-- chunk programs (in chunk order):", _indent(self.chunk_program or "(empty)")]
            statuses = [f"{op.get('op') or '(none)'}:{op.get('status')}" for op in self.chunk_ops]
            if statuses:
                out.append("-- line statuses: " + ", ".join(statuses))
        if self.input_text is None:
            out += ["-- final text (input not available for a diff):", _indent(self.final_text or "(empty)")]
        elif not self.input_matches:
            out += ["-- input re-read, but it no longer has the recorded word/line counts: no diff",
                    "-- final text:", _indent(self.final_text or "(empty)")]
        else:
            out += ["-- diff input -> final:", self.diff(context) or "   (unchanged)"]
        text = "\n".join(out)
        return text if len(text) <= max_chars else text[:max_chars] + f"\n... ({len(text) - max_chars} more characters)"


def _lines(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")] if text else []


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.split("\n"))


def _reports(rows: list[Any], texts: dict[str, str]) -> list[DocumentReport]:
    reports = []
    for row in rows:
        reports.append(
            DocumentReport(
                run_id=row.run_id, doc_id=row.doc_id, shard=row.shard, kept=bool(row.kept),
                drop_stage=row.drop_stage, drop_reason=row.drop_reason, program_ignored=bool(row.program_ignored),
                words_before=int(row.words_before or 0), words_after=int(row.words_after or 0),
                lines_before=int(row.lines_before or 0), lines_after=int(row.lines_after or 0),
                doc_program=row.doc_program, chunk_program=row.chunk_program,
                chunk_ops=[op.asDict() for op in (row.chunk_ops or [])],
                final_text=row.final_text or "", input_text=texts.get(row.doc_id),
            )
        )
    return reports


def _input_texts(spark, output, run_id, input_path, doc_ids, read_input) -> dict[str, str]:
    if not read_input or not doc_ids:
        return {}
    rows = read_input_texts(spark, output, run_id, input_path, doc_ids).collect()
    return {row.doc_id: row.text for row in rows}


def document_report(
    spark: SparkSession,
    output: Output,
    run_id: str,
    doc_id: str,
    input_path: Optional[str] = None,
    read_input: bool = True,
) -> DocumentReport:
    """Programs and result of one document; with ``read_input`` its input is re-read for a diff."""
    rows = audit_doc_results(spark, output, run_id).filter(F.col("doc_id") == doc_id).collect()
    if not rows:
        raise AuditError(f"document {doc_id!r} is not in run {run_id!r}")
    return _reports(rows, _input_texts(spark, output, run_id, input_path, [doc_id], read_input))[0]


SAMPLE_KINDS = ("any", "edited", "dropped", "kept")


def sample_reports(
    spark: SparkSession,
    output: Output,
    run_id: str,
    n: int = 3,
    kind: str = "any",
    seed: int = 0,
    input_path: Optional[str] = None,
    read_input: bool = True,
) -> list[DocumentReport]:
    """``n`` documents of a run (deterministic for a seed) as reports: ``kind`` any, edited (kept with
    fewer words), dropped or kept. With ``read_input`` the input of just their shards is re-read for diffs."""
    if kind not in SAMPLE_KINDS:
        raise AuditError(f"kind must be one of {', '.join(SAMPLE_KINDS)}, got {kind!r}")
    df = audit_doc_results(spark, output, run_id)
    if kind == "edited":
        df = df.filter(F.col("kept") & (F.col("words_after") < F.col("words_before")))
    elif kind == "dropped":
        df = df.filter(~F.col("kept"))
    elif kind == "kept":
        df = df.filter(F.col("kept"))
    rows = df.orderBy(F.xxhash64("doc_id", F.lit(seed)), "doc_id").limit(n).collect()
    texts = _input_texts(spark, output, run_id, input_path, [row.doc_id for row in rows], read_input)
    return _reports(rows, texts)
