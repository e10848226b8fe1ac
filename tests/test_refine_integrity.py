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

from prox_spark.udfs import refine_plan as plan
from prox_spark.jobs.refine import main as refine_main
from prox_spark.udfs.summary import run_problems, summarize_run
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


# ---------------------------------------------------------------------------------------- 4. one run to train on


REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "prox_spark" / "resources" / "sample_corpus.jsonl"


@pytest.mark.train
def test_pretraining_reads_exactly_the_latest_succeeded_run(spark, tmp_path, capsys):
    from prox_spark.jobs.pretrain import main as pretrain_main
    from prox_spark.pretrain import DeltaSource, open_table
    from prox_spark.pretrain.data import DataSettings
    from prox_spark.pretrain.delta import resolve_run_id

    pages = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = tmp_path / "out"
    _write(tmp_path / "day1" / "pages.jsonl", pages[:12])
    _write(tmp_path / "day2" / "pages.jsonl", pages[12:])
    _write(tmp_path / "day3" / "pages.jsonl", [])  # read nothing: a failed run, never the current corpus
    assert refine_main(_args(tmp_path / "day1", out, "run_id=day-1")) == 0
    assert refine_main(_args(tmp_path / "day2", out, "run_id=day-2")) == 0
    assert refine_main(_args(tmp_path / "day3", out, "run_id=day-3")) == 1
    kept = sorted(r.text for r in _table(spark, out, "refined", "day-2").filter("kept").collect())
    assert kept and spark.read.format("delta").load(str(out / "refined")).filter("kept").count() > len(kept)

    data = DataSettings(table=str(out / "refined"))
    assert resolve_run_id(data) == "day-2"
    snapshot = open_table(data.table, run_id="day-2")
    source = DeltaSource(snapshot)
    assert sorted(t for f in range(source.num_files()) for _, texts in source.rows(f, 0, 1, 0) for t in texts) == kept

    # the documented SQL names the same corpus
    sql = (REPO / "docs" / "current_corpus.sql").read_text(encoding="utf-8").replace("/data/prox", str(out))
    rows = spark.sql(sql).collect()
    assert sorted(r.text for r in rows) == kept and {r.run_id for r in rows} == {"day-2"}

    # the training job reads that run and records it with the table version
    code = pretrain_main([
        "--conf", str(REPO / "conf" / "pretrain_local.yaml"), f"out_dir={tmp_path / 'train'}", f"data.table={out / 'refined'}",
        f"data.tokenizer={tmp_path / 'train' / 'tokenizer.json'}", "data.tokenizer_train_vocab=300", "data.block_size=16",
        "data.shuffle_buffer=1", "train.max_steps=2", "train.batch_size=2", "eval.path=", "checkpoint.interval=0",
        "save_model=false",
    ])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["run_id"] == "day-2" and metrics["table_version"] == snapshot.version


@pytest.mark.train
def test_a_table_that_is_not_the_jobs_has_no_run_to_choose(tmp_path):
    """A Delta table without a run_id column (the compare job's raw variant, a hand-made table) is read whole;
    one with the column but no runs table beside it needs data.run_id."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from prox_spark.pretrain import DataError, open_table
    from prox_spark.pretrain.data import DataSettings
    from prox_spark.pretrain.delta import resolve_run_id

    plain, tagged = str(tmp_path / "plain"), str(tmp_path / "tagged" / "refined")
    write_deltalake(plain, pa.table({"text": ["a b", "c d"], "kept": [True, True]}))
    write_deltalake(tagged, pa.table({"run_id": ["r1"], "text": ["a b"], "kept": [True]}))
    assert resolve_run_id(DataSettings(table=plain)) is None and len(open_table(plain).files) == 1
    with pytest.raises(DataError, match="set data.run_id"):
        resolve_run_id(DataSettings(table=tagged))
    assert resolve_run_id(DataSettings(table=tagged, run_id="r1")) == "r1"
    with pytest.raises(DataError, match="no rows of run 'r2'"):
        open_table(tagged, run_id="r2")


# ---------------------------------------------------------------------------------------- 5. bookkeeping, exits


def test_every_attempt_keeps_its_row_and_every_commit_names_its_run(spark, tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    a = _write(corpus / "a.jsonl", _docs("a", 6))
    args = _args(corpus, out, "run_id=again")
    assert refine_main(args) == 0
    first = spark.read.format("delta").load(str(out / "runs")).first()
    assert refine_main(args) == 0  # every shard committed already: a no-op attempt
    rows = spark.read.format("delta").load(str(out / "runs")).orderBy("attempt").collect()
    assert [(r.attempt, r.status) for r in rows] == [(1, "succeeded"), (2, "succeeded")]
    assert (rows[0].started_at, rows[0].stage_seconds_json) == (first.started_at, first.stage_seconds_json)
    assert rows[1].started_at > rows[0].started_at and json.loads(rows[1].stage_seconds_json)["read"] == 0.0
    assert rows[1].input_docs == rows[0].input_docs == 6 and _accounted(spark, out, "again") == _expected(a)
    for table in ("refined", "programs", "quarantine", "runs", "shards"):
        history = spark.sql(f"DESCRIBE HISTORY delta.`{out / table}`").collect()
        assert history and all(json.loads(h.userMetadata) == {"prox_spark_run_id": "again"} for h in history), table


def test_missing_input_and_mostly_quarantined_input_exit_non_zero(spark, tmp_path, capsys):
    out = tmp_path / "out"
    assert refine_main(_args(tmp_path / "nowhere", out)) == 2
    assert "input.path" in capsys.readouterr().err and not out.exists()
    bad = _write(tmp_path / "bad" / "x.jsonl", ["{not json", "[1, 2]", {"id": "no-text"}, *_docs("g", 1)])
    assert refine_main(_args(tmp_path / "bad", out, "run_id=garbage")) == 1
    assert "input.max_quarantined_fraction=0.5" in capsys.readouterr().err
    assert _accounted(spark, out, "garbage") == _expected(bad)
    run = _table(spark, out, "runs", "garbage").first()
    assert (run.status, run.input_docs, run.quarantined_docs) == ("failed", 4, 3)
    assert refine_main(_args(tmp_path / "bad", out, "run_id=garbage", "input.max_quarantined_fraction=0.8")) == 0
    assert [r.status for r in _table(spark, out, "runs", "garbage").orderBy("attempt").collect()] == ["failed", "succeeded"]


def test_clean_refuses_missing_files_and_directories_and_reads_warc_as_the_job(tmp_path, capsys, shared_data):
    from prox_spark.cli import main as cli_main
    from prox_spark.readers.dispatch import read_file

    out = str(tmp_path / "clean.jsonl")
    assert cli_main(["clean", "--input", str(tmp_path / "missing.jsonl"), "--output", out, "pipeline.mode=rules"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli_main(["clean", "--input", str(tmp_path), "--output", out, "pipeline.mode=rules"]) == 2
    assert "is a directory" in capsys.readouterr().err
    warc = shared_data / "warc" / "sample-0000.warc.gz"
    assert cli_main(["clean", "--input", str(warc), "--output", out, "pipeline.mode=rules"]) == 0
    cleaned = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    job_reader = list(read_file(warc, "warc"))
    assert len(cleaned) == len(job_reader) > 0 and not any(r["reason"] == "invalid_json" for r in cleaned)
    assert [r["record_index"] for r in cleaned] == [r.record_index for r in job_reader]
    assert cli_main(["clean", "--input", str(warc), "--output", out, "pipeline.mode=rules", "input.format=jsonl"]) == 2
    assert "holds WARC data" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- 6. safety


def test_secrets_are_redacted_and_database_names_are_quoted(spark, tmp_path):
    corpus = tmp_path / "corpus"
    a = _write(corpus / "a.jsonl", _docs("a", 4))
    conf = tmp_path / "job.yaml"
    conf.write_text(json.dumps({
        "input": {"path": str(corpus)}, "pipeline": {"mode": "rules"}, "run_id": "quoted",
        "output": {"database": "2026"},  # a name SQL reads as a number unless it is quoted
        "spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": "s3cr3t-value", "spark.hadoop.fs.s3a.access.key": "AKIA-VALUE",
                           "spark.hadoop.fs.azure.sas.token": "sas-VALUE", "spark.sql.shuffle.partitions": "2"}},
    }))
    assert refine_main(["--conf", str(conf)]) == 0
    run = spark.sql("SELECT config_json FROM `2026`.`runs` WHERE run_id = 'quoted'").first()
    for secret in ("s3cr3t-value", "AKIA-VALUE", "sas-VALUE"):
        assert secret not in run.config_json
    recorded = json.loads(run.config_json)["spark"]["conf"]
    assert recorded == {"spark.hadoop.fs.s3a.secret.key": "***redacted***", "spark.hadoop.fs.s3a.access.key": "***redacted***",
                        "spark.hadoop.fs.azure.sas.token": "***redacted***", "spark.sql.shuffle.partitions": "2"}
    rows = spark.sql("SELECT source_file, record_index FROM `2026`.`refined` WHERE run_id = 'quoted'").collect()
    quarantined = spark.sql("SELECT count(*) AS n FROM `2026`.`quarantine` WHERE run_id = 'quoted'").first().n
    assert sorted((r.source_file, r.record_index) for r in rows) == _expected(a) and quarantined == 0


def test_a_symlink_loop_lists_each_real_file_once(spark, tmp_path):
    from prox_spark.udfs.input_files import list_input_files

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    a = _write(corpus / "a.jsonl", _docs("a", 3))
    b = _write(corpus / "sub" / "b.jsonl", _docs("b", 3))
    os.symlink(corpus, corpus / "sub" / "loop")  # back to the top: an endless tree to a naive walk
    os.symlink(a, corpus / "sub" / "also-a.jsonl")  # a second name for a file already listed
    assert list_input_files(str(corpus)) == [str(a), str(b)]
    assert refine_main(_args(corpus, out, "run_id=links")) == 0
    assert _accounted(spark, out, "links") == _expected(a, b)


# ---------------------------------------------------------------------------------------- 7. concurrent writers


def _held_write(spark, output, run_id: str, gate: Path):
    """A ``shards`` commit whose Spark job, on its first try only, waits for ``gate/released``: its
    transaction has read the table by then, so a commit made meanwhile is a real Delta conflict."""
    from datetime import datetime, timezone

    import pandas as pd

    from prox_spark.udfs.tables import SHARDS, replace_rows

    gate_dir = str(gate)

    def hold(frames):
        import time as _time

        for frame in frames:
            if not os.path.exists(os.path.join(gate_dir, "released")):
                Path(gate_dir, "started").touch()
                deadline = _time.time() + 120
                while not os.path.exists(os.path.join(gate_dir, "released")) and _time.time() < deadline:
                    _time.sleep(0.05)
            yield pd.DataFrame({"run_id": [run_id], "shard": ["s@held"], "records_read": [1], "documents": [1],
                                "kept": [1], "quarantined": [0], "committed_at": [datetime.now(timezone.utc)],
                                "source_file": ["/held"]})

    df = spark.range(1).mapInPandas(hold, schema=SHARDS.schema)
    return lambda: replace_rows(df, output, SHARDS, run_id, ["s@held"])


def _race(spark, output, gate: Path, run_id: str) -> None:
    """Run a held commit of ``run_id`` in a thread, commit another run's row while it waits, release it."""
    import threading
    import time as _time

    from prox_spark.udfs.side_by_side import inheriting
    from prox_spark.udfs.tables import SHARDS, replace_rows

    gate.mkdir()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _held_write(spark, output, run_id, gate)()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=inheriting(spark, run))
    thread.start()
    deadline = _time.time() + 120
    while not (gate / "started").exists() and _time.time() < deadline:
        _time.sleep(0.05)
    other = spark.createDataFrame([("other", "s@other", 1, 1, 1, 0, None, "/other")], SHARDS.schema)
    replace_rows(other, output, SHARDS, "other", ["s@other"])
    (gate / "released").touch()
    thread.join(180)
    if errors:
        raise errors[0]


def test_a_commit_that_loses_a_real_race_is_retried_then_fails_with_one_line(spark, tmp_path, caplog):
    from prox_spark.udfs.tables import CommitConflictError, ensure_tables

    config = load_config(None, [f"output.path={tmp_path / 'out'}", "output.commit_backoff_seconds=0.1"])
    ensure_tables(spark, config.output)
    caplog.set_level("WARNING", logger="prox_spark.tables")
    _race(spark, config.output, tmp_path / "gate-1", "held")
    assert "ConcurrentAppendException on attempt 1 of 5" in caplog.text  # it did conflict, and was retried
    shards = spark.read.format("delta").load(str(tmp_path / "out" / "shards")).collect()
    assert sorted((r.run_id, r.shard) for r in shards) == [("held", "s@held"), ("other", "s@other")]

    once = load_config(None, [f"output.path={tmp_path / 'out'}", "output.commit_attempts=1"])
    with pytest.raises(CommitConflictError) as failed:
        _race(spark, once.output, tmp_path / "gate-2", "held-once")
    assert "write shards" in str(failed.value) and "\n" not in str(failed.value)


def test_two_jobs_write_one_output_at_once(spark, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.udfs.side_by_side import inheriting

    out = tmp_path / "out"
    files = {f"job-{i}": _write(tmp_path / f"corpus-{i}" / "part-0.jsonl", _docs(f"j{i}", 6)) for i in (1, 2)}
    configs = {
        run_id: load_config(None, _args(path.parent, out, f"run_id={run_id}", "input.shards_per_commit=1",
                                        "output.commit_backoff_seconds=0.5", "output.commit_attempts=10"))
        for run_id, path in files.items()
    }
    with ThreadPoolExecutor(2) as pool:
        futures = {
            run_id: pool.submit(inheriting(spark, lambda c=config: run_refine(spark, c, preflight(c))))
            for run_id, config in configs.items()
        }
        summaries = {run_id: future.result(timeout=600) for run_id, future in futures.items()}
    for run_id, path in files.items():
        assert summaries[run_id].balanced and summaries[run_id].records_read == 6
        assert _accounted(spark, out, run_id) == _expected(path)
        assert [r.status for r in _table(spark, out, "runs", run_id).collect()] == ["succeeded"]


# ---------------------------------------------------------------------------------------- 8. quarantined ids


def test_quarantined_records_keep_the_id_they_had(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prox_spark.readers import Quarantined
    from prox_spark.readers.dispatch import read_file

    lines = _write(tmp_path / "a.jsonl", [{"id": "no-text"}, {"id": 7, "text": None}, {"id": "blank", "text": "  "},
                                          {"id": "number", "text": 42}, {"text": None}, "[1]"])
    table = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["p-1", None], "text": [None, None]}), table)
    for path, expected in ((lines, ["no-text", "7", "blank", "number", None, None]), (table, ["p-1", None])):
        records = list(read_file(path))
        assert all(isinstance(r, Quarantined) for r in records)
        assert [r.doc_id for r in records] == expected


# ---------------------------------------------------------------------------------------- 9. huge documents


def test_a_document_of_100k_lines_is_quarantined_not_refined(spark, tmp_path):
    from prox_spark.clean import clean_file

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    huge = "\n".join(f"line {i:06d} of a page that is nothing but a very long list" for i in range(100_000))
    assert len(huge.encode()) > 5_000_000
    path = _write(corpus / "a.jsonl", [*_docs("a", 4), {"id": "huge", "text": huge}])
    assert refine_main(_args(corpus, out, "run_id=huge")) == 0
    assert _accounted(spark, out, "huge") == _expected(path)
    row = _table(spark, out, "quarantine", "huge").first()
    assert (row.doc_id, row.record_index, row.reason) == ("huge", 4, "too_many_lines")
    assert "100000 lines" in row.detail and "input.max_text_lines" in row.detail
    with open(tmp_path / "clean.jsonl", "w", encoding="utf-8") as sink:
        stats = clean_file(path, sink, load_config(None, ["pipeline.mode=rules"]))
    assert (stats.records, stats.quarantined) == (5, 1)
