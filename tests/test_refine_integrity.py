"""Issue #15, job correctness: nothing lost, nothing duplicated, no input that can sink a run.

Every test runs the real job (``pipeline.mode=rules``: no model, the cheapest mode) on real Spark and
Delta over a few tiny JSONL files, and checks the tables against the input it wrote: each input record
is in ``refined`` or ``quarantine`` exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jobs import refine_plan as plan
from jobs.refine import main as refine_main
from jobs.refine import run_problems
from jobs.summary import summarize_run
from prox_spark.config import load_config

pytestmark = [pytest.mark.spark]

#: words enough for the rule chain to look at; the tests only count rows, kept or dropped
BODY = (
    "The river valley was settled by farmers who grew wheat and barley along the banks. "
    "Every spring the water rose and left fresh soil on the fields, and the villages held a market. "
)


def _docs(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": f"{prefix} document {i}. " + BODY * (1 + i % 3)} for i in range(n)]


def _write(path: Path, records: list) -> Path:
    """One JSONL file; a str record is written as the raw line (bad input)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [f"input.path={corpus}", f"output.path={out}", "pipeline.mode=rules", *extra]


def _table(spark, out: Path, name: str, run_id: str):
    return spark.read.format("delta").load(str(out / name)).filter(f"run_id = '{run_id}'")


def _accounted(spark, out: Path, run_id: str) -> list[tuple[str, int]]:
    """(source_file, record_index) of every row the run wrote to refined and quarantine, sorted."""
    rows = [
        (r.source_file, r.record_index)
        for name in ("refined", "quarantine")
        for r in _table(spark, out, name, run_id).select("source_file", "record_index").collect()
    ]
    return sorted(rows)


def _expected(*files: Path) -> list[tuple[str, int]]:
    """(path, line) of every non-blank line of ``files``: what the run must account for."""
    return sorted(
        (str(f), i) for f in files for i, line in enumerate(f.read_text(encoding="utf-8").splitlines()) if line.strip()
    )


# ---------------------------------------------------------------------------------------- 1. shard identity


def test_same_file_name_in_two_folders_and_a_refresh_with_a_fixed_run_id(spark, tmp_path):
    corpus, out = tmp_path / "collide", tmp_path / "out"
    a = _write(corpus / "a" / "part-0.jsonl", _docs("a", 20))
    b = _write(corpus / "b" / "part-0.jsonl", _docs("b", 20))
    args = _args(corpus, out, "input.shards_per_commit=1", "run_id=daily")
    assert refine_main(args) == 0
    assert _accounted(spark, out, "daily") == _expected(a, b)  # 40 records, none replaced by its namesake
    shards = _table(spark, out, "shards", "daily").collect()
    assert sorted(r.source_file for r in shards) == [str(a), str(b)]
    assert len({r.shard for r in shards}) == 2 and all(r.shard.startswith("part-0.jsonl@") for r in shards)

    # the documented refresh: the same run id, a new day's file with a name the run has seen before
    c = _write(corpus / "day=02" / "part-0.jsonl", _docs("c", 20))
    assert refine_main(args) == 0
    assert _accounted(spark, out, "daily") == _expected(a, b, c)
    run = spark.read.format("delta").load(str(out / "runs")).filter("run_id = 'daily'").orderBy("attempt").collect()
    assert [(r.attempt, r.status, r.input_docs, r.shards) for r in run] == [(1, "succeeded", 40, 2), (2, "succeeded", 60, 3)]


def test_a_listed_file_without_a_commit_fails_the_balance_naming_it(spark, tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    a = _write(corpus / "a.jsonl", _docs("a", 5))
    assert refine_main(_args(corpus, out, "run_id=r")) == 0
    config = load_config(None, _args(corpus, out))
    never = str(corpus / "late" / "a.jsonl")  # listed, never read: its shard has no commit
    listing = {plan.shard_of(p): p for p in (str(a), never)}
    summary = summarize_run(spark, config.output, "r", listing)
    assert summary.records_read == summary.kept + summary.dropped + summary.quarantined == 5
    assert summary.uncommitted_files == [never] and not summary.balanced
    assert any(never in problem for problem in run_problems(summary, config))


# ---------------------------------------------------------------------------------------- 2. config values


@pytest.mark.parametrize("override, key", [
    ("input.shards_per_commit=-1", "input.shards_per_commit"),
    ("input.partitions=-2", "input.partitions"),
    ("input.max_text_bytes=0", "input.max_text_bytes"),
    ("input.max_quarantined_fraction=1.5", "input.max_quarantined_fraction"),
    ("output.commit_attempts=0", "output.commit_attempts"),
    ("output.refined_table=", "output.refined_table"),
    ("spark.shuffle_partitions=0", "spark.shuffle_partitions"),
])
def test_impossible_values_exit_2_naming_the_key_before_spark(tmp_path, capsys, override, key):
    corpus = tmp_path / "corpus"
    _write(corpus / "a.jsonl", _docs("a", 8))
    assert refine_main(_args(corpus, tmp_path / "out", override)) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was written: the job stopped before Spark


# ---------------------------------------------------------------------------------------- 3. duplicates


def test_repeated_doc_ids_across_commits_keep_the_first_copy_only(spark, tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    a = _write(corpus / "a.jsonl", _docs("a", 4) + [{"id": "dup", "text": "first copy. " + BODY}])
    b = _write(corpus / "b.jsonl", [{"id": "dup", "text": "second copy. " + BODY}, *_docs("b", 3),
                                     {"id": "dup", "text": "third copy. " + BODY}, {"id": "a-1", "text": BODY}])
    assert refine_main(_args(corpus, out, "input.shards_per_commit=1", "run_id=dups")) == 0
    assert _accounted(spark, out, "dups") == _expected(a, b)
    refined = _table(spark, out, "refined", "dups").filter("doc_id IN ('dup', 'a-1')").collect()
    assert sorted((r.doc_id, r.source_file, r.record_index) for r in refined) == [("a-1", str(a), 1), ("dup", str(a), 4)]
    quarantined = _table(spark, out, "quarantine", "dups").collect()
    assert sorted((r.doc_id, r.source_file, r.record_index, r.reason) for r in quarantined) == [
        ("a-1", str(b), 5, "duplicate_doc_id"),
        ("dup", str(b), 0, "duplicate_doc_id"),
        ("dup", str(b), 4, "duplicate_doc_id"),
    ]
    # in one commit the same copies win
    assert refine_main(_args(corpus, out, "run_id=dups-one-commit")) == 0
    one = _table(spark, out, "quarantine", "dups-one-commit").collect()
    assert sorted((r.source_file, r.record_index) for r in one) == sorted((r.source_file, r.record_index) for r in quarantined)


def test_clean_quarantines_the_records_the_job_quarantines(spark, tmp_path, capsys):
    from prox_spark.cli import main as cli_main

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    path = _write(corpus / "one.jsonl", [
        *_docs("a", 6), {"id": "a-0", "text": "again. " + BODY}, "{not json", {"id": "no-text"},
        {"id": "a-2", "text": "and again. " + BODY},
    ])
    assert refine_main(_args(corpus, out, "run_id=clean-vs-job")) == 0
    job = sorted((r.record_index, r.reason, r.doc_id) for r in _table(spark, out, "quarantine", "clean-vs-job").collect())
    assert cli_main(["clean", "--input", str(path), "--output", str(tmp_path / "clean.jsonl"), "pipeline.mode=rules"]) == 0
    cleaned = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert len(cleaned) == len(_expected(path))
    assert sorted((r["record_index"], r["reason"]) for r in cleaned if r["id"] is None) == [q[:2] for q in job]
    assert [q for q in job if q[1] == "duplicate_doc_id"] == [(6, "duplicate_doc_id", "a-0"), (9, "duplicate_doc_id", "a-2")]
    # 8. a record without text keeps the id it had
    assert (8, "missing_text", "no-text") in job
