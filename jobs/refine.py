"""spark-submit entry point of the refine job: corpus → ProX programs → Delta tables.

    spark-submit jobs/refine.py --conf conf/emr.yaml input.path=s3://... run_id=2026-11-29
    python -m jobs.refine --conf conf/local.yaml            (local Spark + Delta)
    prox-spark refine --conf conf/local.yaml

Order of work: validate the config, the input listing and both model directories *before* any Spark
stage (a typo or a corrupt model fails in seconds, not after an hour of reading); then, per commit of
``input.shards_per_commit`` shards not yet committed by this run, read → refine → write quarantine,
programs, refined and the shard commit log; then check the whole run against its own input listing
(every listed file committed, input = kept + dropped + quarantined, something read, quarantined
fraction at most ``input.max_quarantined_fraction``) and write the attempt's row to ``runs``.

Exit codes: 0 succeeded; 1 the run failed its checks (its ``runs`` row says ``failed``) or a Delta commit
kept conflicting with another writer; 2 a configuration, input or model problem found before Spark.

Logs: every record the driver logs carries the run id (``RunIdFilter`` adds ``record.run_id``: the run in
progress, ``-`` outside one); ``--log-format json`` writes one JSON object per line for log pipelines.
Python workers (the UDFs) log in their executors' logs, without the run id.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import refine_plan as plan
from jobs.connect import get_conf, redact_remote, set_conf
from jobs.input_files import list_input_files, needs_session
from jobs.job_tags import job_tag, run_tag
from jobs.side_by_side import run_concurrently
from jobs.staging import Staging, staging_for, staging_root
from jobs.summary import RunSummary, print_summary, summarize_run
from jobs.tables import (
    PROGRAMS, QUARANTINE, REFINED, RUNS, SHARDS, CommitConflictError, ensure_tables, read_table, replace_rows,
)
from prox_spark.config import ConfigError, RefineConfig, as_dict, load_config, stage_model_paths
from prox_spark.inference import ModelLoadError
from prox_spark.pipeline import verify_stage_model
from prox_spark.readers.storage import hadoop_local_path, local_path

log = logging.getLogger("prox_spark.refine")

#: the run in progress in this driver (set by ``run_refine``), read by ``RunIdFilter``
_RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("prox_spark_run_id", default="-")

TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [run=%(run_id)s]: %(message)s"


class RunIdFilter(logging.Filter):
    """Adds ``run_id`` (the refine run in progress, ``-`` outside one) to every record a handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = _RUN_ID.get()
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, run_id, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", _RUN_ID.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Install (once) a stderr handler on the root logger whose records carry the run id; returns it.

    Notebooks call it too: it adds its own handler and leaves any the platform installed alone."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_prox_spark", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._prox_spark = True  # type: ignore[attr-defined]
        handler.addFilter(RunIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonLogFormatter() if fmt == "json" else logging.Formatter(TEXT_LOG_FORMAT))
    root.setLevel(level)
    # py4j logs every closed gateway connection at INFO: one per driver thread the job's side-by-side writes use
    logging.getLogger("py4j").setLevel(max(level, logging.WARNING))
    return handler


class RunCheckError(RuntimeError):
    """The run failed its end-of-run checks (input unaccounted for, nothing read, too much quarantined);
    ``summary`` holds its counts."""

    def __init__(self, message: str, summary: RunSummary):
        super().__init__(message)
        self.summary = summary


class UnreadRowsError(RuntimeError):
    """A commit read fewer (or more) rows of a listed input file than the listing counted in it: rows that would
    be lost without a trace, since every later count starts from the rows read."""


@dataclass
class Preflight:
    """What was checked before Spark starts: the input files and the manifests of the stages' models.

    A model id is ``""`` when ``pipeline.mode`` does not run that stage (rules-only runs need no model)."""

    files: list[str]
    doc_model_id: str
    chunk_model_id: str
    versions: dict = field(default_factory=dict)
    #: rows per listed file where the listing counted them (table input: ``refine_plan.table_data_files``); each
    #: commit must read exactly these (None: files, whose readers count every record they meet)
    listed_rows: dict[str, int] | None = None


def preflight(config: RefineConfig, spark: SparkSession | None = None) -> Preflight:
    """Fail fast with a message naming the problem: missing input, bad model, missing output location.

    ``spark`` lists URI inputs (``s3://``, ``abfss://``, ``gs://``, ``dbfs:/``, ``file:``) through Hadoop's
    FileSystem; plain paths need none (``jobs.input_files``)."""
    if not (config.input.path or config.input.table):
        raise ConfigError("input.path: required (a file, a directory or a glob), or input.table (a table name)")
    if not (config.output.path or config.output.database):
        raise ConfigError("output.path or output.database: one is required")
    if config.input.table:
        files = [config.input.table]  # the table's data files are listed once Spark runs (run_refine)
    elif config.input.format == "delta":
        local = hadoop_local_path(config.input.path)  # as typed: not percent-encoded
        if local is not None and not os.path.isdir(os.path.join(local, "_delta_log")):
            raise ConfigError(f"input.path: no Delta table at {config.input.path!r} (no _delta_log folder)")
        files = [config.input.path]
    else:
        try:
            files = list_input_files(config.input.path, spark)
        except FileNotFoundError as exc:
            raise ConfigError(f"input.path: {exc}") from None
    if config.spark.staging == "delta":
        staging_root(config)  # a database output needs output.staging_path
    models = {}
    for stage, path in stage_model_paths(config).items():
        try:
            models[stage] = verify_stage_model(path, getattr(config.models, stage).kind, stage)
        except ModelLoadError as exc:
            raise ModelLoadError(f"models.{stage}.path: {exc}") from None
    versions = library_versions()
    versions.update({f"model.{k}": model_id + "@" + checksum[:12] for k, (model_id, checksum) in models.items()})
    if "rules" in config.pipeline.stages:
        versions["rules"] = rules_id(config)
    model_id = {stage: model_id for stage, (model_id, _) in models.items()}
    return Preflight(files, model_id.get("doc", ""), model_id.get("chunk", ""), versions)


def rules_id(config: RefineConfig) -> str:
    """The rules stage's ``model_id`` in the programs table: ``rules:<preset>``."""
    return f"rules:{config.rules.preset}"


def library_versions() -> dict[str, str | None]:
    """The installed versions ``runs.versions_json`` records (None: not installed)."""
    return {name: _version(name) for name in ("prox-spark", "pyspark", "delta-spark", "onnxruntime", "onnxruntime-gpu")}


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


#: rows per cached columnar batch of the persisted records and stage results (Spark's default: 10,000)
CACHED_BATCH_ROWS = 512


def derive_run_id(config: RefineConfig, files: list[str]) -> str:
    """Stable id from the config and the input listing: rerunning the same job over the same input
    replaces its own rows instead of adding a second copy."""
    if config.run_id:
        return config.run_id
    listing = [(path, _local_size(path)) for path in files]
    payload = json.dumps([as_dict(config), listing], sort_keys=True, default=str)
    return "run-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _local_size(path: str) -> int | None:
    """Size of a local input file (part of the derived run id); None for remote or vanished files."""
    local = local_path(path)
    return os.path.getsize(local) if local is not None and os.path.exists(local) else None


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


def committed_shards(spark: SparkSession, config: RefineConfig, run_id: str) -> set[str]:
    rows = read_table(spark, config.output, SHARDS).filter(F.col("run_id") == run_id).select("shard").collect()
    return {row.shard for row in rows}


def next_attempt(spark: SparkSession, config: RefineConfig, run_id: str) -> int:
    """This attempt's number: one more than the run id's attempts recorded in ``runs`` (a row from
    before attempts were numbered counts as attempt 1)."""
    latest = (
        read_table(spark, config.output, RUNS).filter(F.col("run_id") == run_id)
        .agg(F.max(F.coalesce(F.col("attempt"), F.lit(1)))).first()[0]
    )
    return int(latest or 0) + 1


#: spark.conf keys whose values runs.config_json never shows (credentials: fs.s3a.secret.key, ...)
SECRET_KEY = re.compile(r"secret|password|token|key|credential", re.IGNORECASE)
REDACTED = "***redacted***"


def redacted_config(config: RefineConfig) -> dict:
    """The config as recorded in ``runs.config_json``: secret-looking ``spark.conf`` values (Hadoop
    credentials such as ``spark.hadoop.fs.s3a.secret.key``) and the parameters of a ``spark.remote`` URL
    (``;token=...``) replaced by a marker, since every reader of the runs table would otherwise see them."""
    data = as_dict(config)
    data["spark"]["conf"] = {
        key: REDACTED if SECRET_KEY.search(str(key)) else value for key, value in data["spark"]["conf"].items()
    }
    data["spark"]["remote"] = redact_remote(data["spark"]["remote"])  # sc://...;token=<personal access token>
    return data


#: a commit's documents -> the same rows with the stage columns appended (and, for documents the pass
#: could not stage, ``udfs.staged.QUARANTINE_REASON``): the models (refine) or a run's stored programs (apply)
Stager = Callable[[DataFrame], DataFrame]


def run_refine(spark: SparkSession, config: RefineConfig, checked: Preflight) -> RunSummary:
    """Refine the corpus into the Delta tables; returns the run's summary (counts checked)."""
    run_id = derive_run_id(config, checked.files)
    if config.input.reads_table:
        checked.listed_rows = plan.table_data_files(spark, config)
        checked.files = list(checked.listed_rows)
    tasks = concurrent_tasks(spark)
    return write_run(spark, config, checked, run_id, lambda docs: plan.refine_documents(docs, config, tasks))


def write_run(
    spark: SparkSession, config: RefineConfig, checked: Preflight, run_id: str, stage: Stager,
    *, source_run_id: str | None = None,
) -> RunSummary:
    """Stage ``checked.files`` with ``stage`` into the Delta tables as run ``run_id`` (resuming its committed
    shards), check the run and write its ``runs`` row (``source_run_id``: the run whose programs ``apply``
    re-executed); returns the run's summary."""
    token = _RUN_ID.set(run_id)  # every log record from here on names the run
    try:
        return _write_run(spark, config, checked, run_id, stage, source_run_id)
    finally:
        _RUN_ID.reset(token)


def _write_run(spark, config, checked, run_id, stage, source_run_id) -> RunSummary:
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with job_tag(spark, run_tag(run_id)):  # on every Spark job of the run: spark.interruptTag cancels the run
        return _write_tagged_run(spark, config, checked, run_id, stage, source_run_id, started, t0)


def _write_tagged_run(spark, config, checked, run_id, stage, source_run_id, started, t0) -> RunSummary:
    ensure_tables(spark, config.output, run_id)
    set_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(config.models.udf_batch_rows))
    # the persisted frames hold whole documents: Spark's default of 10,000 rows per cached columnar batch
    # made ~100 MB batches of page text, and reading them back ran a 2 GB local[2] driver out of heap at
    # 100k pages
    set_conf(spark, "spark.sql.inMemoryColumnarStorage.batchSize", str(CACHED_BATCH_ROWS))
    attempt = next_attempt(spark, config, run_id)
    listing = {plan.shard_of(path): path for path in checked.files}
    done = committed_shards(spark, config, run_id)
    pending = [path for path in checked.files if plan.shard_of(path) not in done]
    log.info("run %s attempt %d: %d shards, %d already committed, %d to do",
             run_id, attempt, len(checked.files), len(checked.files) - len(pending), len(pending))
    stale = sorted(done - set(listing))
    if stale:
        log.warning("run %s: %d committed shards are not in this listing (input files removed?): %s",
                    run_id, len(stale), ", ".join(stale[:5]))
    step = config.input.shards_per_commit or max(1, len(pending))
    # seconds per step, recorded in runs.stage_seconds_json: model time (refine) apart from the job's own
    # fixed costs (table set-up and resume lookup, reads, Delta writes, shard commits, the final check)
    timings = {"setup": time.perf_counter() - t0, "read": 0.0, "refine": 0.0, "write": 0.0, "commit": 0.0}
    loop_started = time.perf_counter()
    unread = None
    for first in range(0, len(pending), step):
        batch = pending[first : first + step]
        try:
            _refine_shards(spark, config, checked, run_id, batch, stage, timings)
        except UnreadRowsError as exc:  # the run stops: its runs row says failed, and why
            unread = str(exc)
            break
        log.info("run %s: %s", run_id, commit_progress(first + len(batch), len(pending), time.perf_counter() - loop_started))
    t0 = time.perf_counter()
    summary = summarize_run(spark, config.output, run_id, listing)
    timings["summary"] = time.perf_counter() - t0
    finished = datetime.now(timezone.utc)
    problems = ([unread] if unread else []) + run_problems(summary, config)
    status = "failed" if problems else "succeeded"
    _write_run_row(spark, config, checked, run_id, attempt, (started, finished), status, summary, timings, source_run_id)
    if problems:
        raise RunCheckError(f"run {run_id} failed: " + "; ".join(problems), summary)
    return summary


def commit_progress(done: int, total: int, elapsed: float) -> str:
    """One progress line after a commit: shards done, elapsed time and, from the pace so far, the time left
    (a long run's operator wants to know when it ends, not only that it moves)."""
    line = f"committed {done}/{total} shards ({done / total:.0%}), {_duration(elapsed)} elapsed"
    if done < total:
        line += f", about {_duration(elapsed / done * (total - done))} left"
    return line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_problems(summary: RunSummary, config: RefineConfig) -> list[str]:
    """Why the run must not count as succeeded (empty: it may): each a sentence naming the numbers."""
    s = summary
    problems = []
    if s.uncommitted_files:
        problems.append(
            f"{len(s.uncommitted_files)} listed input file(s) never committed: " + ", ".join(s.uncommitted_files[:10])
        )
    if s.records_read != s.kept + s.dropped + s.quarantined:
        problems.append(
            f"{s.records_read} records read but {s.kept} kept + {s.dropped} dropped + {s.quarantined} quarantined = "
            f"{s.kept + s.dropped + s.quarantined}"
        )
    if s.records_read == 0:
        problems.append(f"no records read from {s.shards} input file(s) (empty files?)")
    limit = config.input.max_quarantined_fraction
    if s.quarantined_fraction > limit:
        problems.append(
            f"{s.quarantined} of {s.records_read} records quarantined ({s.quarantined_fraction:.1%}), over "
            f"input.max_quarantined_fraction={limit} (top reasons: "
            + ", ".join(f"{reason} {n}" for reason, n in s.quarantine_reasons[:3]) + ")"
        )
    return problems


def _refine_shards(spark, config, checked, run_id, files, stage: Stager, timings) -> None:
    staging = staging_for(spark, config, run_id)
    try:
        _stage_and_write(spark, config, checked, run_id, files, stage, timings, staging)
    finally:
        staging.release()  # after the shard commit (or the failure): a resumed run redoes the commit


def _stage_and_write(spark, config, checked, run_id, files, stage: Stager, timings, staging: Staging) -> None:
    shards = [plan.shard_of(path) for path in files]
    t0 = time.perf_counter()
    with job_tag(spark, "prox-read"):
        if config.input.reads_table:
            reader = plan.read_delta_records(spark, config, files)
        else:
            reader = plan.read_records(spark, files, config)
        records = staging.stage(reader, "records")
        read_per_shard = {row.shard: row["count"] for row in records.groupBy("shard").count().collect()}
        if checked.listed_rows is not None:  # before any model runs or any table is written
            unread = plan.unread_rows(files, checked.listed_rows, read_per_shard)
            if unread:
                raise UnreadRowsError(unread)
        # repeated doc ids are found across the whole run: against the shards it has committed, and in this batch
        docs, quarantine = plan.split_records(records, plan.committed_doc_ids(spark, config.output, run_id))
    timings["read"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    with job_tag(spark, "prox-stages"):
        persisted = staging.stage(stage(docs), "stages")  # the models run here, once per document
        persisted.count()
    timings["refine"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    stages = config.pipeline.stages
    staged, unstaged = plan.split_unstaged(persisted)
    if unstaged is not None:
        quarantine = quarantine.unionByName(unstaged)
    quarantine_out = staging.derived(plan.quarantine_rows(quarantine, run_id))  # written, then counted
    programs = plan.program_rows(staged, run_id, checked.doc_model_id, checked.chunk_model_id, stages, rules_id(config))
    refined = plan.refined_rows(staged, run_id, stages)

    def write(df, spec):
        return partial(replace_rows, df, config.output, spec, run_id, shards)

    # the three tables' writes and the per-shard counts (from the staged frames, not the tables) overlap
    with job_tag(spark, "prox-write"):
        done = run_concurrently(spark, {
            "quarantine": write(quarantine_out, QUARANTINE),
            "programs": write(programs, PROGRAMS),
            "refined": write(refined, REFINED),
            "documents": lambda: refined.groupBy("shard").agg(
                F.count("*").alias("documents"), F.sum(F.col("kept").cast("long")).alias("kept")).collect(),
            "quarantined": lambda: quarantine_out.groupBy("shard").count().collect(),
        })
    timings["write"] += time.perf_counter() - t0

    # the shard commit comes last: a shard counts as done only once all three tables hold its rows
    t0 = time.perf_counter()
    per_shard = {row.shard: row for row in done["documents"]}
    quarantined = {row.shard: row["count"] for row in done["quarantined"]}
    now = datetime.now(timezone.utc)
    commits = [
        (run_id, shard, int(read_per_shard.get(shard, 0)), int(getattr(per_shard.get(shard), "documents", 0) or 0),
         int(getattr(per_shard.get(shard), "kept", 0) or 0), int(quarantined.get(shard, 0)), now, path)
        for shard, path in zip(shards, files)
    ]
    with job_tag(spark, "prox-commit"):
        replace_rows(spark.createDataFrame(commits, SHARDS.schema), config.output, SHARDS, run_id, shards)
    timings["commit"] += time.perf_counter() - t0


def _write_run_row(spark, config, checked, run_id, attempt, times, status, summary, timings, source_run_id) -> None:
    """This attempt's own row: earlier attempts of the run id keep theirs (a no-op rerun, whose timings are
    all ~0, once overwrote the real run's start time and timings)."""
    started, finished = times
    row = (
        run_id, started, finished, status, json.dumps(redacted_config(config), sort_keys=True),
        json.dumps(checked.versions), config.input.path or config.input.table, summary.shards, summary.records_read,
        summary.kept, summary.dropped, summary.quarantined, summary.words_before, summary.words_after,
        json.dumps({k: round(v, 3) for k, v in timings.items()}), config.pipeline.mode, attempt, source_run_id,
    )
    replace_rows(spark.createDataFrame([row], RUNS.schema), config.output, RUNS, run_id, None, attempt=attempt)


def job_session(config: RefineConfig) -> SparkSession:
    """The job's Spark session: the platform's when one is active, else a local one from ``spark.*``."""
    from jobs.spark import get_session

    return get_session(
        "prox-spark-refine",
        remote=config.spark.remote,
        master=config.spark.master,
        shuffle_partitions=config.spark.shuffle_partitions,
        extra_conf=config.spark.conf,
    )


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
