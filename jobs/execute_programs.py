"""Demo job: apply ready-made ProX programs with the executor UDF and write a Delta table ``refined``.

Input is JSONL with ``id``, ``text``, ``doc_program`` and ``chunk_program`` per line (programs as a
refining model would write them). The doc stage runs on every document; the chunk stage runs on the
documents the doc stage kept. The result (one row per input document, kept or dropped with its stage
and reason) overwrites ``<output>/refined``; the job reads it back and prints a summary.

    python -m jobs.execute_programs --output out/demo                 # bundled sample corpus
    python -m jobs.execute_programs --input docs.jsonl --output DIR [--dialect strict]

No model runs here: this is the executor half of the pipeline, until the refine job exists.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.spark import DeltaJarsMissing, get_session
from udfs.executor import OPS_TYPE, make_executor_udf

INPUT_SCHEMA = "id STRING, text STRING, doc_program STRING, chunk_program STRING"
REFINED_TABLE = "refined"


@dataclass
class DemoSummary:
    """What the job read back from the table it wrote."""

    table: str
    delta_version: int
    docs_in: int
    kept: int
    dropped: int
    dropped_by_stage: dict[str, int] = field(default_factory=dict)
    drop_reasons: list[tuple[str, str, int]] = field(default_factory=list)  # (stage, reason, docs)
    program_ignored: int = 0
    words_before: int = 0
    words_after: int = 0

    def render(self) -> str:
        kept_share = f"{self.words_after / self.words_before:.1%}" if self.words_before else "n/a"
        lines = [
            f"docs in:        {self.docs_in}",
            f"kept:           {self.kept}  (program ignored, original text kept: {self.program_ignored})",
            f"dropped:        {self.dropped}  "
            + "  ".join(f"{stage} stage: {n}" for stage, n in sorted(self.dropped_by_stage.items())),
            "top drop reasons:",
            *[f"  {n:>5}  {stage}/{reason}" for stage, reason, n in self.drop_reasons],
            f"words before:   {self.words_before}  (all input docs)",
            f"words after:    {self.words_after}  (kept docs; {kept_share} of the input)",
            f"table:          {self.table}  (Delta, version {self.delta_version})",
        ]
        return "\n".join(lines)


@contextmanager
def sample_corpus_path() -> Iterator[Path]:
    """The bundled sample corpus as a real file (package data ``prox_spark/resources/sample_corpus.jsonl``)."""
    with resources.as_file(resources.files("prox_spark") / "resources" / "sample_corpus.jsonl") as path:
        yield Path(path)


def read_documents(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.schema(INPUT_SCHEMA).option("mode", "FAILFAST").json(path)


def refine(docs: DataFrame, dialect: str = "reference") -> DataFrame:
    """Doc stage on every document, chunk stage on the kept ones: one output row per input document."""
    doc_stage = make_executor_udf("doc", dialect)
    chunk_stage = make_executor_udf("chunk", dialect)
    # Persisted so the doc stage (a model, in the real job) runs once although two branches read it.
    staged = docs.select("id", "chunk_program", doc_stage("text", "doc_program").alias("doc")).persist()
    doc = F.col("doc")

    dropped = staged.where(~doc.kept).select(
        "id",
        F.lit("").alias("text"),
        F.lit(False).alias("kept"),
        F.lit("doc").alias("drop_stage"),
        doc.reason.alias("drop_reason"),
        F.lit(False).alias("program_ignored"),
        doc.errors.alias("errors"),
        doc.words_before.alias("words_before"),
        F.lit(0).cast("long").alias("words_after"),
        doc.lines_before.alias("lines_before"),
        F.lit(0).cast("long").alias("lines_after"),
        F.lit(None).cast(OPS_TYPE).alias("chunk_ops"),
    )
    chunked = staged.where(doc.kept).select(
        "id", doc.alias("doc"), chunk_stage(doc.text, F.col("chunk_program")).alias("chunk")
    )
    chunk = F.col("chunk")
    kept = chunked.select(
        "id",
        chunk.text.alias("text"),
        chunk.kept.alias("kept"),
        _when_dropped(chunk, F.lit("chunk")).alias("drop_stage"),
        _when_dropped(chunk, chunk.reason).alias("drop_reason"),
        (chunk.outcome == F.lit("kept_original")).alias("program_ignored"),
        (F.col("doc.errors") + chunk.errors).alias("errors"),
        F.col("doc.words_before").alias("words_before"),
        chunk.words_after.alias("words_after"),
        F.col("doc.lines_before").alias("lines_before"),
        chunk.lines_after.alias("lines_after"),
        chunk.ops.alias("chunk_ops"),
    )
    return dropped.unionByName(kept)


def _when_dropped(result: Column, value: Column) -> Column:
    return F.when(~result.kept, value)


def run(spark: SparkSession, input_path: str, output_dir: str, *, dialect: str = "reference") -> DemoSummary:
    """Read, refine, overwrite ``<output_dir>/refined`` (Delta), read it back and summarise."""
    table = _as_uri(output_dir).rstrip("/") + "/" + REFINED_TABLE
    docs = read_documents(spark, _as_uri(input_path))
    refined = refine(docs, dialect)
    refined.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(table)
    return summarize(spark, table)


def summarize(spark: SparkSession, table: str) -> DemoSummary:
    spark.read.format("delta").load(table).createOrReplaceTempView("refined_demo")
    totals = spark.sql(
        """
        SELECT count(*) AS docs_in,
               coalesce(sum(CASE WHEN kept THEN 1 ELSE 0 END), 0) AS kept,
               coalesce(sum(CASE WHEN kept THEN 0 ELSE 1 END), 0) AS dropped,
               coalesce(sum(CASE WHEN program_ignored THEN 1 ELSE 0 END), 0) AS program_ignored,
               coalesce(sum(words_before), 0) AS words_before,
               coalesce(sum(CASE WHEN kept THEN words_after ELSE 0 END), 0) AS words_after
        FROM refined_demo
        """
    ).first()
    reasons = spark.sql(
        """
        SELECT drop_stage, drop_reason, count(*) AS docs FROM refined_demo WHERE NOT kept
        GROUP BY drop_stage, drop_reason ORDER BY docs DESC, drop_stage, drop_reason LIMIT 10
        """
    ).collect()
    by_stage: dict[str, int] = {}
    for row in reasons:
        by_stage[row.drop_stage] = by_stage.get(row.drop_stage, 0) + row.docs
    version = spark.sql(f"DESCRIBE HISTORY delta.`{table}` LIMIT 1").first().version
    return DemoSummary(
        table=table,
        delta_version=int(version),
        docs_in=totals.docs_in,
        kept=totals.kept,
        dropped=totals.dropped,
        dropped_by_stage=by_stage,
        drop_reasons=[(row.drop_stage, row.drop_reason, row.docs) for row in reasons],
        program_ignored=totals.program_ignored,
        words_before=totals.words_before,
        words_after=totals.words_after,
    )


def _as_uri(path: str) -> str:
    """Local paths become absolute (Spark resolves relative ones against its own working dir)."""
    if "://" in path or path.startswith(("dbfs:", "file:")):
        return path
    return str(Path(path).expanduser().resolve())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.execute_programs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="JSONL with id, text, doc_program, chunk_program (default: bundled sample)")
    parser.add_argument("--output", required=True, help="folder (or URI) for the Delta table 'refined'")
    parser.add_argument("--dialect", choices=("reference", "strict"), default="reference")
    parser.add_argument("--shuffle-partitions", type=int, default=2, help="local sessions only")
    args = parser.parse_args(argv)

    owned = SparkSession.getActiveSession() is None
    try:
        spark = get_session("prox-spark-demo", shuffle_partitions=args.shuffle_partitions)
    except DeltaJarsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.input is None:
            with sample_corpus_path() as sample:
                print(f"input:          {sample} (bundled sample corpus)")
                summary = run(spark, str(sample), args.output, dialect=args.dialect)
        else:
            print(f"input:          {args.input}")
            summary = run(spark, args.input, args.output, dialect=args.dialect)
        print(f"dialect:        {args.dialect}")
        print(summary.render())
        return 0
    finally:
        if owned:
            spark.stop()


if __name__ == "__main__":
    sys.exit(main())
