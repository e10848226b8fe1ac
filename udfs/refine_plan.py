"""The refine job's DataFrame plan: files → records → [rules] → doc stage → chunk stage → executor → table rows.

``pipeline.mode`` picks the stages (``prox``: doc + chunk; ``prox-doc``; ``rules``; ``rules+prox``). All
configured stages run in one Python pass per partition (``udfs.stage_pass``: rules, doc program, doc
executor, chunk programs, chunk executor on each Arrow batch, then the core's row builder), so every stage
runs once per document and each document crosses the JVM/Python boundary once; documents dropped at the doc
stage reach the chunk stage with empty text and cost no model call. The pass returns each document's
``refined`` row and ``programs`` rows; they are kept (``udfs.staging``: persisted, or written to a staging
Delta table) before the tables are written from them, so the models never run twice for the same documents.
Here the rows are only selected (``refined_rows``) and exploded (``program_rows``): their rules live in the
core (``prox_spark.pipeline.rows``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Mapping

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.tables import PROGRAMS, QUARANTINE, REFINED, SHARDS, TableSpec, qualified_name, read_table_pinned
from prox_spark.config import OutputConfig, RefineConfig, split_name
from prox_spark.pipeline import serving_of, settings_of
from prox_spark.pipeline.rows import PROGRAM_ROW_ARROW_TYPE, REFINED_ROW_ARROW_TYPE
from prox_spark.pipeline.stages import model_stages
from prox_spark.readers.dispatch import RECORD_SPARK_DDL, iter_record_frames, read_file
from prox_spark.readers.jsonl import record_from_fields
from prox_spark.readers.records import MAX_RAW_BYTES
from prox_spark.readers.storage import local_path, uri_scheme
from prox_spark.udfs.stage_pass import QUARANTINE_DETAIL, QUARANTINE_REASON, stage_documents
from prox_spark.udfs.worker_models import StageModelSettings


def input_uri(path: str) -> str:
    """The identity of an input file: its absolute local path (plain paths, ``file:`` URIs, ``dbfs:/`` on its
    mount), else its URI as listed (``s3://bucket/crawl/a.warc.gz``)."""
    local = local_path(path)
    return os.path.abspath(local) if local is not None else path


def shard_of(path: str) -> str:
    """The shard key of an input file: ``<file name>@<first 16 hex digits of sha256(input_uri(path))>``.

    The whole path decides, so ``a/part-0.jsonl`` and ``b/part-0.jsonl`` are two shards (keyed by the name
    alone, the second commit's replaceWhere deleted the first file's rows, and a refresh's
    ``day=02/part-00000.jsonl`` was skipped as already committed). The name keeps it readable, the
    hash keeps it short and partition-safe; ``shards.source_file`` keeps the full path. The cost: the
    same corpus read from another mount or URI is other shards (a resume there redoes them).
    """
    uri = input_uri(path)
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{name}@{hashlib.sha256(uri.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def task_path(path: str) -> str:
    """``path`` as tasks must see it: a plain local path made absolute (from the driver's working directory),
    a URI or an empty path unchanged."""
    if not path or uri_scheme(path) is not None:
        return path
    return os.path.abspath(path)


def read_records(spark: SparkSession, files: list[str], config: RefineConfig) -> DataFrame:
    """One task per input file; each yields documents and quarantine records (``RECORD_SPARK_DDL`` + shard)."""
    inp = config.input
    options = {"max_text_bytes": inp.max_text_bytes, "max_text_lines": inp.max_text_lines}
    if inp.format in ("auto", "jsonl", "parquet"):
        options.update(id_field=inp.id_column or None, text_field=inp.text_column)
    fmt = inp.format

    def read_partition(frames):
        for frame in frames:
            for path, location, shard in zip(frame["path"], frame["location"], frame["shard"]):
                for records in iter_record_frames(read_file(location, fmt, **options)):
                    records["source_file"] = path  # as listed, whatever the task's working directory is
                    records["shard"] = shard
                    yield records

    # tasks open the absolute location, and take the shard from the driver: a relative path means another
    # file in a task whose working directory is not the driver's (a Spark Connect server runs Python
    # workers in a per-session folder)
    rows = [(path, input_uri(path), shard_of(path)) for path in files]
    files_df = spark.createDataFrame(rows, "path string, location string, shard string").repartition(
        max(1, len(rows)), "path"
    )
    return files_df.mapInPandas(read_partition, schema=RECORD_SPARK_DDL + ", shard string")


def input_table(spark: SparkSession, config: RefineConfig) -> DataFrame:
    """The input table: the metastore table ``input.table`` (its name's parts quoted), else the Delta table at
    ``input.path`` (``input.format: delta``)."""
    inp = config.input
    if inp.table:
        return spark.read.table(qualified_name(*split_name(inp.table, "input.table")))
    return spark.read.format("delta").load(inp.path)


#: the data file a row of the input table was read from: Spark's file metadata column (``input_file_name()`` is
#: not available on Unity Catalog). Percent-encoded (``file:/tmp/in%20put/part-0.parquet``), where the table's
#: ``inputFiles()`` spells the same file decoded (``file:/tmp/in put/part-0.parquet``): the listing is taken
#: from this column too (``table_data_files``), so a row and its listed file compare equal
FILE_PATH = "_metadata.file_path"


def table_data_files(spark: SparkSession, config: RefineConfig) -> dict[str, int]:
    """The data files of the input table's current version (``input_table``), its shards, each with the rows
    it holds, sorted by path.

    Both come from the rows' own ``_metadata.file_path`` (one scan of the file metadata, no column read), the
    column ``read_delta_records`` selects each commit's rows by: listed as ``inputFiles()`` spells them, a
    file under a path Hadoop URL-encodes (a space, ``%``, ``#``, non-ASCII) or in a partition folder Delta
    escapes matched none of its rows, and those rows were silently left out. The row counts are what each
    commit must read (``unread_rows``)."""
    table = input_table(spark, config)
    counts = table.groupBy(F.col(FILE_PATH).alias("file")).count().collect()
    return {row.file: int(row["count"]) for row in sorted(counts, key=lambda row: row.file)}


def delta_input_files(spark: SparkSession, config: RefineConfig) -> list[str]:
    """The data files of the input table's current version (``table_data_files``): its shards."""
    return list(table_data_files(spark, config))


def unread_rows(files: list[str], listed_rows: dict[str, int], read_per_shard: dict[str, int]) -> str | None:
    """Why a commit of the input table's ``files`` must not be written, or None: a file whose rows read
    (``read_per_shard``, by shard) differ from the rows the listing counted in it (``listed_rows``). Such
    rows were never read, so no count after this point can see them; the sentence names the counts."""
    short = [(path, listed_rows.get(path, 0), read_per_shard.get(shard_of(path), 0)) for path in files]
    short = [entry for entry in short if entry[1] != entry[2]]
    if not short:
        return None
    listed = sum(listed_rows.get(path, 0) for path in files)
    read = sum(read_per_shard.get(shard_of(path), 0) for path in files)
    return (
        f"input table: {listed} rows listed in {len(files)} data file(s) of this commit but {read} read; "
        f"{len(short)} file(s) differ (" + ", ".join(f"{path}: {n} listed, {m} read" for path, n, m in short[:5])
        + "); a row that matches no listed file would be lost, so none of these shards is written"
    )


def read_delta_records(spark: SparkSession, config: RefineConfig, files: list[str]) -> DataFrame:
    """Rows of ``files`` of the input table (``input_table``), each validated exactly as a JSONL/parquet record.

    The shard of a row is its data file's name, so commits and resumes work per file as for other
    inputs. ``record_index`` counts rows per file within a task (informational only for table input).
    """
    inp = config.input
    table = input_table(spark, config)
    missing = [c for c in (inp.text_column,) if c not in table.columns]
    if missing:
        raise ValueError(f"input.text_column: column {missing[0]!r} not in the input table (has {table.columns})")
    rows = table.filter(F.col(FILE_PATH).isin(files)).select(
        F.to_json(F.struct(*[F.col(c) for c in table.columns])).alias("row_json"),
        F.col(FILE_PATH).alias("source_file"),
    )

    def validate(frames):
        seen: dict[str, int] = {}
        for frame in frames:
            records = []
            for row_json, source in zip(frame["row_json"], frame["source_file"]):
                index = seen[source] = seen.get(source, -1) + 1
                records.append(record_from_fields(
                    json.loads(row_json), source_file=source, record_index=index, raw=row_json,
                    id_field=inp.id_column or None, text_field=inp.text_column, url_field="url",
                    max_text_bytes=inp.max_text_bytes, max_text_lines=inp.max_text_lines,
                ))
            for out in iter_record_frames(records):
                out["shard"] = out["source_file"].map(shard_of)
                yield out

    return rows.mapInPandas(validate, schema=RECORD_SPARK_DDL + ", shard string")


def committed_doc_ids(spark: SparkSession, output: OutputConfig, run_id: str) -> DataFrame:
    """``(doc_id, shard)`` of the run's documents in shards it has committed (the narrow key columns only).

    Rows of a shard written but never committed (a killed attempt) are left out: that shard is redone
    and replaces them, so they must not make its own documents look repeated."""
    of_run = F.col("run_id") == run_id
    committed = read_table_pinned(spark, output, SHARDS).filter(of_run).select("shard")
    return (
        read_table_pinned(spark, output, REFINED).filter(of_run).select("doc_id", "shard")
        .join(committed, "shard", "left_semi")
    )


def split_records(records: DataFrame, earlier: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """(documents, quarantine rows); a repeated doc_id is quarantined as ``duplicate_doc_id``.

    Which copy wins, across the whole run: a copy already committed by the run (``earlier``:
    ``committed_doc_ids``) wins over every copy read now; among the records read now, the one with the
    smallest (source_file, record_index). Commits take the sorted listing in order, so in a run from
    scratch the winner is the first copy in (path, record_index) order whatever ``shards_per_commit``
    is; a file added later (the refresh pattern) loses to the copies already committed.

    Only the narrow keys are shuffled to find repeated ids; the documents, texts included, are then
    joined against the repeated ids alone (usually few, so a broadcast). A window over whole rows sorted
    every text by doc_id: at 100k pages on local[2] its sorter ran out of execution memory.
    """
    docs = records.filter(F.col("kind") == "document")
    repeated = (
        docs.groupBy("doc_id")
        .agg(F.count("*").alias("_copies"), F.min(F.struct("source_file", "record_index")).alias("_first"))
        .filter(F.col("_copies") > 1)
        .select("doc_id", "_first")
    )
    tagged = docs.join(repeated, "doc_id", "left")
    if earlier is None:
        tagged = tagged.withColumn("_earlier", F.lit(None).cast("string"))
    else:
        tagged = tagged.join(earlier.groupBy("doc_id").agg(F.min("shard").alias("_earlier")), "doc_id", "left")
    first_copy = F.col("_earlier").isNull() & (F.col("_first").isNull() | (
        (F.col("_first.source_file") == F.col("source_file")) & (F.col("_first.record_index") == F.col("record_index"))
    ))
    unique = tagged.filter(first_copy).drop("_first", "_earlier", "kind", "raw", "reason", "detail")
    duplicates = tagged.filter(~first_copy).select(
        "shard", "source_file", "record_index", "doc_id",
        _raw_text().alias("raw"),
        F.lit("duplicate_doc_id").alias("reason"),
        F.when(
            F.col("_earlier").isNotNull(),
            F.concat(F.lit("doc_id already committed by this run in shard "), F.col("_earlier"), F.lit(": "), F.col("doc_id")),
        ).otherwise(F.concat(F.lit("doc_id already read from an earlier record: "), F.col("doc_id"))).alias("detail"),
    )
    bad = records.filter(F.col("kind") == "quarantine").select(
        "shard", "source_file", "record_index", "doc_id", "raw", "reason", "detail"
    )
    return unique, bad.unionByName(duplicates)


def _raw_text() -> Column:
    """A document's text as a quarantine row's ``raw`` (capped, as the readers cap it)."""
    return F.substring("text", 1, MAX_RAW_BYTES)


def split_unstaged(staged: DataFrame) -> tuple[DataFrame, DataFrame | None]:
    """(the staged documents, quarantine rows of the documents the stage pass could not stage), the second
    None when the pass reports none (refine's models stage every document; apply has no program for some)."""
    if QUARANTINE_REASON not in staged.columns:
        return staged, None
    reason = F.col(QUARANTINE_REASON)
    unstaged = staged.filter(reason.isNotNull()).select(
        "shard", "source_file", "record_index", "doc_id", _raw_text().alias("raw"), reason.alias("reason"),
        F.col(QUARANTINE_DETAIL).alias("detail"),
    )
    return staged.filter(reason.isNull()), unstaged


def refine_documents(
    docs: DataFrame, config: RefineConfig, concurrent_tasks: int, model_ids: Mapping[str, str]
) -> DataFrame:
    """Run the configured stages (``pipeline.mode``, in stage order) over each document and add its rows.

    Columns: ``refined`` (the document's row) and ``programs`` (its program rows, carrying ``model_ids``), built
    by the core's row builder in the one Python pass per partition that runs the stages. A stage reads the text
    the previous stage kept; a document dropped earlier reaches it as ``""``, which costs no model call.
    """
    stages = config.pipeline.stages
    if config.input.partitions > 0:
        docs = docs.repartition(config.input.partitions, "doc_id")
    models = {}
    for stage in model_stages(stages):
        section = config.models.stage(stage.name)
        # an absolute model folder: a relative one resolves against the task's working directory, which under
        # Spark Connect is a per-session folder of the server, not the job's
        models[stage.name] = StageModelSettings(
            task_path(section.path), section.kind, serving_of(config, stage.name, concurrent_tasks)
        )
    return stage_documents(
        docs, stages, settings_of(config), model_ids=model_ids, models=models, rules_preset=config.rules.preset,
        fail_first_attempt_of_partition=config.faults.fail_first_attempt_of_partition,
    )


def refined_rows(staged: DataFrame, run_id: str) -> DataFrame:
    """One ``refined`` row per document: the row the stage pass built (``refined``: the first stage that dropped
    the document decides, else the last stage), with the run and the document's own columns."""
    return _table_rows(staged.withColumn("run_id", F.lit(run_id)), F.col("refined"), REFINED_ROW_ARROW_TYPE, REFINED)


def program_rows(staged: DataFrame, run_id: str) -> DataFrame:
    """The ``programs`` rows the stage pass built for each document (``programs``: one per stage it reached, one
    per chunk), with the run and the document's keys."""
    exploded = staged.select(F.lit(run_id).alias("run_id"), "shard", "doc_id", F.explode("programs").alias("row"))
    return _table_rows(exploded, F.col("row"), PROGRAM_ROW_ARROW_TYPE, PROGRAMS)


def _table_rows(rows: DataFrame, row: Column, row_type: pa.StructType, table: TableSpec) -> DataFrame:
    """``table``'s columns: the fields of the core's ``row`` struct, the others from ``rows`` (run, keys, source)."""
    fields = {field.name for field in row_type}
    return rows.select(*[row[c.name].alias(c.name) if c.name in fields else F.col(c.name) for c in table.columns])


def quarantine_rows(quarantine: DataFrame, run_id: str) -> DataFrame:
    return quarantine.withColumn("run_id", F.lit(run_id)).select(*[c.name for c in QUARANTINE.columns])


def persist(df: DataFrame) -> DataFrame:
    """Keep a frame the commit reads several times (counts, three table writes) on the executors' local disk.

    Not in memory: these frames hold whole pages, several texts per document, and a 100k-page run with the
    models (25k pages per commit) ran the 2 GB local JVM out of heap while building the in-memory cache,
    which the memory manager does not bound. Reading back from local disk costs little next to the models.
    """
    return df.persist(StorageLevel.DISK_ONLY)
