"""Reliability of the refine job: a SIGKILL mid-write and a failed task attempt leave tables identical
to a clean run (no duplicates, same row set)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.config import load_config

pytestmark = [pytest.mark.spark, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
RUN_ID = "reliability"


def _overrides(models, corpus, output):
    return [
        f"input.path={corpus}",
        f"output.path={output}",
        f"models.doc.path={models['doc']}",
        f"models.chunk.path={models['chunk']}",
        "models.provider=cpu",
        "models.max_chunk_tokens=128",
        "input.partitions=2",
        f"run_id={RUN_ID}",
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability-corpus")
    sample = REPO / "prox_spark" / "resources" / "sample_corpus.jsonl"
    records = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    for shard in range(3):
        with open(root / f"part-{shard}.jsonl", "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps({"id": f"{shard}-{record['id']}", "text": record["text"]}) + "\n")
    return root


@pytest.fixture(scope="module")
def clean_run(spark, untrained_models, corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("clean") / "out"
    config = load_config(None, _overrides(untrained_models, corpus, output))
    run_refine(spark, config, preflight(config))
    return output


def _job(args, log_path: Path) -> subprocess.Popen:
    """The refine job in its own process group, output to a file (a full pipe would stall the job)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "jobs.refine", *args], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _rows(spark, output: Path, table: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    df = spark.read.format("delta").load(str(output / table))
    return sorted(tuple(row) for row in df.drop(*drop).collect())


def _assert_same_table(spark, expected: Path, actual: Path, table: str, drop: tuple[str, ...] = ()) -> None:
    """Same row set; on a difference, name the first differing row's differing columns (rows are long)."""
    got, want = _rows(spark, actual, table, drop), _rows(spark, expected, table, drop)
    if got != want:
        columns = spark.read.format("delta").load(str(expected / table)).drop(*drop).columns
        first = next((g, w) for g, w in zip(got, want) if g != w) if len(got) == len(want) else None
        differing = [c for c, a, b in zip(columns, *first) if a != b] if first else "row counts"
        raise AssertionError(f"{table}: {len(got)} vs {len(want)} rows; first difference in {differing}: {first}")


def _assert_same_tables(spark, expected: Path, actual: Path) -> None:
    _assert_same_table(spark, expected, actual, "refined")
    _assert_same_table(spark, expected, actual, "programs", ("latency_ms",))
    _assert_same_table(spark, expected, actual, "quarantine")
    _assert_same_table(spark, expected, actual, "shards", ("committed_at",))


def _delta_commits(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


def test_sigkill_during_write_then_rerun_matches_clean_run(spark, untrained_models, corpus, clean_run, tmp_path):
    output = tmp_path / "out"
    log_path = tmp_path / "job.log"
    job = _job(_overrides(untrained_models, corpus, output) + ["input.shards_per_commit=1"], log_path)
    deadline = time.monotonic() + 300
    # kill once the first shard's refined rows are committed, i.e. in the middle of the run's writes
    while _delta_commits(output / "refined") < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    finished_early = job.poll() is not None
    if not finished_early:
        os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not finished_early, log_path.read_text()[-3000:]
    partial = spark.read.format("delta").load(str(output / "refined")).count()
    assert partial < 3 * 24  # the kill really interrupted the run
    config = load_config(None, _overrides(untrained_models, corpus, output) + ["input.shards_per_commit=1"])
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced
    _assert_same_tables(spark, clean_run, output)


def test_failed_first_task_attempt_gives_identical_output(spark, untrained_models, corpus, clean_run, tmp_path):
    output = tmp_path / "out"
    log_path = tmp_path / "job.log"
    job = _job(_overrides(untrained_models, corpus, output)
               + ["spark.master=local[2,2]", "faults.fail_first_attempt_of_partition=0"], log_path)
    try:
        job.wait(timeout=600)
    finally:  # never leave a JVM or its Python workers behind
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    log = log_path.read_text()
    assert job.returncode == 0, log[-3000:]
    assert "injected failure" in log
    _assert_same_tables(spark, clean_run, output)
