"""A run written as a sequence of shard commits, shared by ``refine`` and ``apply`` (``write_run``).

Per commit of ``input.shards_per_commit`` shards the run has not committed yet: read → stage (the models, or a
run's stored programs: the ``Stager``) → write quarantine, programs and refined → the shard commit log. Then the
whole run is checked against its own input listing (``udfs.summary.run_problems``) and the attempt's row is
written to ``runs`` (``udfs.run_row``). A killed run resumes at the first uncommitted shard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs import refine_plan as plan
from prox_spark.udfs.connect import set_conf
from prox_spark.udfs.job_tags import job_tag, run_tag
from prox_spark.udfs.logs import logging_run
from prox_spark.udfs.preflight import Preflight
from prox_spark.udfs.progress import commit_progress
from prox_spark.udfs.run_row import next_attempt, write_run_row
from prox_spark.udfs.side_by_side import run_concurrently
from prox_spark.udfs.staging import Staging, commit_fingerprints, drop_run_staging, staging_for
from prox_spark.udfs.summary import RunCheckError, RunSummary, run_problems, summarize_run
from prox_spark.udfs.tables import PROGRAMS, QUARANTINE, REFINED, SHARDS, ensure_tables, read_table, replace_rows
from prox_spark.config import RefineConfig

log = logging.getLogger("prox_spark.refine")

#: rows per cached columnar batch of the persisted records and stage results (Spark's default: 10,000)
CACHED_BATCH_ROWS = 512

#: a commit's documents -> the same rows with their table rows appended (``udfs.stage_pass.ROW_TYPES``; and, for
#: documents the pass could not stage, ``udfs.stage_pass.QUARANTINE_REASON``): the models (refine) or a run's
#: stored programs (apply)
Stager = Callable[[DataFrame], DataFrame]


class InjectedFailure(RuntimeError):
    """``faults.fail_after_staging_commit``: a commit stopped on purpose after its results were staged, before
    any output table is written (how the tests interrupt a run where a resume must pick it up)."""


class UnreadRowsError(RuntimeError):
    """A commit read fewer (or more) rows of a listed input file than the listing counted in it: rows that would
    be lost without a trace, since every later count starts from the rows read."""


def write_run(
    spark: SparkSession, config: RefineConfig, checked: Preflight, run_id: str, stage: Stager,
    *, source_run_id: str | None = None,
) -> RunSummary:
    """Stage ``checked.files`` with ``stage`` into the Delta tables as run ``run_id`` (resuming its committed
    shards), check the run and write its ``runs`` row (``source_run_id``: the run whose programs ``apply``
    re-executed); returns the run's summary."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    # every log record from here on names the run; every Spark job carries its tag (spark.interruptTag cancels it)
    with logging_run(run_id), job_tag(spark, run_tag(run_id)):
        return _write_tagged_run(spark, config, checked, run_id, stage, source_run_id, started, t0)


def committed_shards(spark: SparkSession, config: RefineConfig, run_id: str) -> set[str]:
    rows = read_table(spark, config.output, SHARDS).filter(F.col("run_id") == run_id).select("shard").collect()
    return {row.shard for row in rows}


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
    # fixed costs (table set-up and resume lookup, reads, Delta writes, shard commits with the staging clean-up,
    # the final check)
    timings = {"setup": time.perf_counter() - t0, "read": 0.0, "refine": 0.0, "write": 0.0, "commit": 0.0}
    loop_started = time.perf_counter()
    unread = None
    for number, first in enumerate(range(0, len(pending), step)):
        batch = pending[first : first + step]
        fingerprints = commit_fingerprints(config, batch, checked.listed_rows, checked.versions, source_run_id)
        try:
            _commit_shards(spark, config, checked, run_id, batch, stage, timings, fingerprints, number)
        except UnreadRowsError as exc:  # the run stops: its runs row says failed, and why
            unread = str(exc)
            break
        log.info("run %s: %s", run_id, commit_progress(first + len(batch), len(pending), time.perf_counter() - loop_started))
    if unread is None:  # every listed shard is committed: the run's staging tables have nothing left to resume
        drop_run_staging(spark, config, run_id)
    t0 = time.perf_counter()
    summary = summarize_run(spark, config.output, run_id, listing)
    timings["summary"] = time.perf_counter() - t0
    finished = datetime.now(timezone.utc)
    problems = ([unread] if unread else []) + run_problems(summary, config)
    status = "failed" if problems else "succeeded"
    write_run_row(spark, config, checked, run_id, attempt, (started, finished), status, summary, timings, source_run_id)
    if problems:
        raise RunCheckError(f"run {run_id} failed: " + "; ".join(problems), summary)
    return summary


def _commit_shards(spark, config, checked, run_id, files, stage: Stager, timings, fingerprints, number) -> None:
    staging = staging_for(spark, config, run_id)
    committed = False
    try:
        _stage_and_write(spark, config, checked, run_id, files, stage, timings, staging, fingerprints, number)
        committed = True
    finally:
        # after the shard commit: let the staged results go; after a failure, staging Delta tables keep them
        # for a rerun to resume from (persisted frames are released either way). Timed with the shard commit.
        t0 = time.perf_counter()
        staging.release(committed)
        timings["commit"] += time.perf_counter() - t0


def _stage_and_write(
    spark, config, checked, run_id, files, stage: Stager, timings, staging: Staging, fingerprints, number,
) -> None:
    shards = [plan.shard_of(path) for path in files]
    t0 = time.perf_counter()
    with job_tag(spark, "prox-read"):
        if config.input.reads_table:
            reader = plan.read_delta_records(spark, config, files)
        else:
            reader = plan.read_records(spark, files, config)
        records = staging.stage(reader, "records", fingerprints["records"])
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
        # the models run here, once per document (not at all where a failed attempt staged this commit)
        persisted = staging.stage(stage(docs), "stages", fingerprints["stages"])
        persisted.count()
    timings["refine"] += time.perf_counter() - t0
    if number == config.faults.fail_after_staging_commit:
        raise InjectedFailure(f"injected failure after staging commit {number} (faults.fail_after_staging_commit)")

    t0 = time.perf_counter()
    staged, unstaged = plan.split_unstaged(persisted)
    if unstaged is not None:
        quarantine = quarantine.unionByName(unstaged)
    quarantine_out = staging.derived(plan.quarantine_rows(quarantine, run_id))  # written, then counted
    programs = plan.program_rows(staged, run_id)
    refined = plan.refined_rows(staged, run_id)

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
