"""The refine job's Delta tables: schemas with table/column comments, creation, idempotent writes.

Every run writes rows tagged with its ``run_id``; a write replaces exactly the rows of the run's shards
it covers (Delta ``replaceWhere``), so a rerun or a resumed run never duplicates rows, and a process
killed mid-write leaves no partial commit (Delta commits are atomic).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Iterable

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs.side_by_side import run_concurrently
from prox_spark.config import OutputConfig
from udfs.executor import OPS_TYPE

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


REFINED = TableSpec(
    "refined",
    "ProX-refined corpus: one row per input document that was read (kept or dropped), final text in `text`.",
    (
        Column("run_id", T.StringType(), "Run that produced the row."),
        Column("shard", T.StringType(), "Corpus shard (input file) the document came from; partition key."),
        Column("doc_id", T.StringType(), "Stable document id: the input's id, else a sha256 content hash."),
        Column("text", T.StringType(), "Final text after both stages; empty string when dropped."),
        Column("kept", T.BooleanType(), "True when the document survives refining."),
        Column("drop_stage", T.StringType(), "Stage that dropped the document (rules, doc, chunk) or null."),
        Column("drop_reason", T.StringType(), "Why it was dropped (doc_program_drop, kept_fraction_too_low, too_few_words, or the rule's reason: gopher_*, c4_*, fineweb_*, ...)."),
        Column("program_ignored", T.BooleanType(), "True when the chunk program had too many errors and the doc-stage text was kept."),
        Column("words_before", T.LongType(), "Words (str.split) of the input text."),
        Column("words_after", T.LongType(), "Words of the final text."),
        Column("lines_before", T.LongType(), "Lines of the input text."),
        Column("lines_after", T.LongType(), "Lines of the final text."),
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
        Column("stage", T.StringType(), "rules, doc or chunk."),
        Column("chunk_index", T.LongType(), "Chunk number within the document (chunk stage), null for the doc stage."),
        Column("first_line", T.LongType(), "First document line of the chunk (0-based)."),
        Column("last_line", T.LongType(), "Last document line of the chunk (inclusive)."),
        Column("model_id", T.StringType(), "Refining model id from its manifest; rules:<preset> for the rules stage."),
        Column("program", T.StringType(), "Program text as generated."),
        Column("ops", OPS_TYPE, "Parsed program lines with per-op status (applied, not_found, out_of_range, parse_error, ignored, skipped)."),
        Column("errors", T.LongType(), "Errors counted for this program's lines."),
        Column("outcome", T.StringType(), "Document outcome after this stage: kept, kept_original, dropped."),
        Column("reason", T.StringType(), "Drop reason or too_many_errors after this stage."),
        Column("words_before", T.LongType(), "Document words before this stage."),
        Column("words_after", T.LongType(), "Document words after this stage."),
        Column("lines_before", T.LongType(), "Document lines before this stage."),
        Column("lines_after", T.LongType(), "Document lines after this stage."),
        Column("prompt_tokens", T.LongType(), "Tokens in the model prompt."),
        Column("latency_ms", T.DoubleType(), "Model time attributed to this program (batch time ÷ batch size)."),
        Column("clipped_ops", T.LongType(), "Chunk stage with models.clip_chunk_programs: remove_lines ops the chunk-range guard narrowed to the chunk's lines or dropped (0 otherwise)."),
        Column("model_program", T.StringType(), "The model's program text when the chunk-range guard rewrote it (`program` then holds the clipped program that ran); null otherwise."),
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
    "One row per refine run: configuration, versions, counts (input = kept + dropped + quarantined) and timings.",
    (
        Column("run_id", T.StringType(), "Run id."),
        Column("started_at", T.TimestampType(), "Start time (UTC)."),
        Column("finished_at", T.TimestampType(), "End time (UTC)."),
        Column("status", T.StringType(), "succeeded or failed."),
        Column("config_json", T.StringType(), "Full job configuration as JSON."),
        Column("versions_json", T.StringType(), "Library and model versions as JSON."),
        Column("input_path", T.StringType(), "Input corpus path."),
        Column("shards", T.LongType(), "Input shards (files) in the run."),
        Column("input_docs", T.LongType(), "Input records read (documents + quarantined)."),
        Column("kept_docs", T.LongType(), "Documents kept."),
        Column("dropped_docs", T.LongType(), "Documents dropped (doc or chunk stage)."),
        Column("quarantined_docs", T.LongType(), "Records quarantined."),
        Column("words_before", T.LongType(), "Words in all read documents."),
        Column("words_after", T.LongType(), "Words in kept documents."),
        Column("stage_seconds_json", T.StringType(), "Seconds per stage as JSON."),
        Column("mode", T.StringType(), "pipeline.mode of the run: prox, prox-doc, rules or rules+prox (null: before modes existed)."),
    ),
)

SHARDS = TableSpec(
    "shards",
    "Commit log: one row per input shard a run has fully written; a resumed run skips these shards.",
    (
        Column("run_id", T.StringType(), "Run id."),
        Column("shard", T.StringType(), "Input shard (file)."),
        Column("records_read", T.LongType(), "Records the reader produced (documents + quarantined)."),
        Column("documents", T.LongType(), "Documents refined (rows in refined)."),
        Column("kept", T.LongType(), "Documents kept."),
        Column("quarantined", T.LongType(), "Records quarantined."),
        Column("committed_at", T.TimestampType(), "When the shard's rows were committed (UTC)."),
    ),
)

ALL_TABLES = (REFINED, PROGRAMS, QUARANTINE, RUNS, SHARDS)


def table_location(output: OutputConfig, spec: TableSpec) -> str:
    """Path (path-based tables) or qualified name (metastore tables) of one table."""
    name = getattr(output, f"{spec.key}_table")
    if output.database:
        return f"{output.database}.{name}"
    base = output.path.rstrip("/")
    if ":" not in base.split("/", 1)[0]:  # a local path (no s3:, dbfs:, abfss: ... scheme): make it absolute
        base = os.path.abspath(base)
    return f"{base}/{name}"


def ensure_tables(spark: SparkSession, output: OutputConfig) -> None:
    """Create each table with its comments when missing (idempotent); the tables are created side by side."""
    if output.database:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {output.database}")
    run_concurrently(spark, {spec.key: partial(_create_table, spark, output, spec) for spec in ALL_TABLES})


def _create_table(spark: SparkSession, output: OutputConfig, spec: TableSpec) -> None:
    builder = DeltaTable.createIfNotExists(spark)
    where = table_location(output, spec)
    builder = builder.tableName(where) if output.database else builder.location(where)
    builder = builder.comment(spec.comment)
    for column in spec.columns:
        builder = builder.addColumn(column.name, column.type, comment=column.comment)
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    builder.execute()


def replace_rows(df: DataFrame, output: OutputConfig, spec: TableSpec, run_id: str, shards: Iterable[str] | None) -> None:
    """Overwrite exactly this run's rows (for ``shards`` when given) with ``df``: reruns never duplicate."""
    condition = f"run_id = {_sql_str(run_id)}"
    shard_list = sorted(shards) if shards is not None else None
    if shard_list is not None:
        condition += f" AND shard IN ({', '.join(_sql_str(s) for s in shard_list)})"
    writer = (
        df.select(*[c.name for c in spec.columns])
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", condition)
        # tables written before a column was added (e.g. programs.clipped_ops) gain it instead of failing
        .option("mergeSchema", "true")
    )
    where = table_location(output, spec)
    if output.database:
        writer.saveAsTable(where)
    else:
        writer.save(where)


def read_table(spark: SparkSession, output: OutputConfig, spec: TableSpec) -> DataFrame:
    where = table_location(output, spec)
    return spark.read.table(where) if output.database else spark.read.format("delta").load(where)


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
