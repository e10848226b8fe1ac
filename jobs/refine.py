"""spark-submit entry point of the refine job: corpus → ProX programs → Delta tables.

    spark-submit jobs/refine.py --conf conf/emr.yaml input.path=s3://... run_id=2026-11-29
    python -m jobs.refine --conf conf/local.yaml            (local Spark + Delta)
    prox-spark refine --conf conf/local.yaml

Order of work: validate the config, the input listing and both model directories *before* any Spark
stage (``udfs.preflight``: a typo or a corrupt model fails in seconds, not after an hour of reading); then,
per commit of ``input.shards_per_commit`` shards not yet committed by this run, read → refine → write
quarantine, programs, refined and the shard commit log (``udfs.commit_loop``); then check the whole run
against its own input listing (every listed file committed, input = kept + dropped + quarantined, something
read, quarantined fraction at most ``input.max_quarantined_fraction``: ``udfs.summary.run_problems``) and
write the attempt's row to ``runs`` (``udfs.run_row``).

Exit codes: 0 succeeded; 1 the run failed its checks (its ``runs`` row says ``failed``) or a Delta commit
kept conflicting with another writer; 2 a configuration, input or model problem found before Spark.

Logs: every record the driver logs carries the run id (``udfs.logs``); ``--log-format json`` writes one JSON
object per line for log pipelines.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from pyspark.sql import SparkSession

from prox_spark.udfs import refine_plan as plan
from prox_spark.udfs.commit_loop import write_run
from prox_spark.udfs.connect import get_conf
from prox_spark.udfs.input_files import needs_session
from prox_spark.udfs.logs import configure_logging
from prox_spark.udfs.preflight import Preflight, derive_run_id, preflight
from prox_spark.udfs.session import job_session
from prox_spark.udfs.summary import RunCheckError, RunSummary, print_summary
from prox_spark.udfs.tables import CommitConflictError
from prox_spark.config import ConfigError, RefineConfig, load_config
from prox_spark.inference import ModelLoadError


def run_refine(spark: SparkSession, config: RefineConfig, checked: Preflight) -> RunSummary:
    """Refine the corpus into the Delta tables; returns the run's summary (counts checked)."""
    run_id = derive_run_id(config, checked.files)
    if config.input.reads_table:
        checked.listed_rows = plan.table_data_files(spark, config)
        checked.files = list(checked.listed_rows)
    tasks = concurrent_tasks(spark)
    model_ids = checked.program_model_ids(config)
    return write_run(
        spark, config, checked, run_id, lambda docs: plan.refine_documents(docs, config, tasks, model_ids)
    )


#: ``concurrent_tasks`` when the session says nothing about its executors (a Connect server that hides its
#: configuration): more tasks than any executor has cores, so each task's model runs on one onnxruntime thread,
#: which is what Spark's default of one task per core implies (``models.intra_op_threads`` overrides it)
ONE_THREAD_PER_TASK = 1 << 16


def concurrent_tasks(spark: SparkSession) -> int:
    """Tasks that share one executor's cores (sizes onnxruntime's threads: cores ÷ tasks).

    From ``spark.conf`` only, so it works on a Spark Connect session (no ``SparkContext``): the executor's
    cores ÷ ``spark.task.cpus``; else ``spark.default.parallelism`` (local sessions set it); else the N of a
    ``local[N]`` master (``local[*]``: this machine's cores); else ``ONE_THREAD_PER_TASK``. On a cluster
    without ``spark.executor.cores`` the classic job used ``defaultParallelism``, the cores of all
    executors, which also came to one thread per task."""
    cores = get_conf(spark, "spark.executor.cores")
    if cores:
        return max(1, int(cores) // int(get_conf(spark, "spark.task.cpus") or "1"))
    parallelism = get_conf(spark, "spark.default.parallelism")
    if parallelism:
        return max(1, int(parallelism))
    local = re.fullmatch(r"local(?:\[([0-9]+|\*)(?:,[0-9]+)?\])?", get_conf(spark, "spark.master") or "")
    if local:
        count = local.group(1) or "1"
        return max(1, os.cpu_count() or 1) if count == "*" else max(1, int(count))
    return ONE_THREAD_PER_TASK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prox-spark refine",
        description="Refine a web corpus with ProX programs into Delta tables (refined, programs, quarantine, runs, shards).",
    )
    parser.add_argument("--conf", help="YAML config (conf/local.yaml, conf/databricks.yaml, conf/emr.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides, e.g. input.path=/data run_id=r1")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="driver log lines as text (default) or one JSON object per line; both carry the run id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_format)
    spark = None
    try:
        config = load_config(args.conf, args.overrides)
        if not config.input.reads_table and needs_session(config.input.path):
            spark = job_session(config)  # cloud URIs are listed through the session's Hadoop FileSystem
        checked = preflight(config, spark)
    except (ConfigError, ModelLoadError) as exc:
        print(f"prox-spark refine: {exc}", file=sys.stderr)
        return 2
    spark = spark or job_session(config)
    try:
        summary = run_refine(spark, config, checked)
    except RunCheckError as exc:
        print_summary(exc.summary, config.output)
        print(f"prox-spark refine: {exc}", file=sys.stderr)
        return 1
    except CommitConflictError as exc:
        print(f"prox-spark refine: {exc}", file=sys.stderr)
        return 1
    print_summary(summary, config.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
