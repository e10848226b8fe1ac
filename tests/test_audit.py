"""Audits (udfs/audit.py + udfs/sql/audit/*.sql) checked against the executor's own numbers.

Two runs land in one set of tables (``build_audit_tables``, shared with tests/test_notebooks.py):

- ``audit-models``: the refine job itself (``run_refine``) with the untrained fixture models on ten sample
  pages in two shards plus one broken record. Random models keep nearly everything and write programs the
  executor ignores, so this run checks the audits against the job's own summary and the raw tables.
- ``audit-scripted``: the job's read -> executor -> table-row plan (``udfs.refine_plan``) with the sample
  corpus' hand-written programs instead of model output, plus two crafted documents (an out-of-range
  removal, a two-chunk program). Its numbers are known: every audit is compared with a plain-pandas
  recomputation from ``execute_batch``, the executor the job runs.
"""

from __future__ import annotations

import difflib
import io
import json
import logging
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from prox_spark.udfs import audit
from prox_spark.udfs.logs import _RUN_ID, RunIdFilter, configure_logging
from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.udfs.summary import summarize_run
from prox_spark.udfs.tables import PROGRAMS, QUARANTINE, REFINED, RUNS, SHARDS, ensure_tables, replace_rows
from prox_spark.config import OutputConfig, as_dict, load_config
from prox_spark.programs import execute_batch

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl"
RUN_MODELS = "audit-models"
RUN_SCRIPTED = "audit-scripted"
#: latency the scripted run books per program: shard s-1 is the slow one
SCRIPTED_LATENCY_MS = {"s-0.jsonl": {"doc": 10.0, "chunk": 5.0}, "s-1.jsonl": {"doc": 20.0, "chunk": 50.0}}


@dataclass
class AuditTables:
    output: str
    models_corpus: str
    scripted_corpus: str
    #: JSON log lines the driver wrote during the model run
    log_lines: list


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def scripted_docs() -> list[dict]:
    """The sample corpus with its hand-written programs, plus two crafted documents."""
    rows = [{k: r[k] for k in ("id", "text", "doc_program", "chunk_program")} for r in sample_rows()]
    history = next(r for r in rows if r["id"] == "sample-18-history-old-mill")
    rows.append({"id": "extra-out-of-range", "text": history["text"], "doc_program": "keep_doc()",
                 "chunk_program": "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=9, line_end=400)"})
    rows.append({"id": "extra-normalize", "text": history["text"] + "\nShare this page | Print | Email", "doc_program": "keep_doc()",
                 "chunk_program": 'normalize(source_str="Share this page | ", target_str="")\nnormalize(source_str="no such text", target_str="x")'})
    return rows


def scripted_chunks(text: str, program: str) -> list[dict]:
    """Split a hand-written program over chunks the way the chunk UDF reports them: two chunks (first
    program line / the rest) when the program has several lines, else one."""
    n_lines = text.count("\n") + 1
    lines = program.split("\n")
    parts = [lines[:1], lines[1:]] if len(lines) > 1 else [lines]
    mid = n_lines // 2
    spans = [(0, mid - 1), (mid, n_lines - 1)] if len(parts) == 2 else [(0, n_lines - 1)]
    chunks, offset = [], 0
    for index, (part, (first, last)) in enumerate(zip(parts, spans)):
        chunks.append(dict(chunk_index=index, first_line=first, last_line=last, program="\n".join(part),
                           prompt_tokens=10 * (index + 1), oversize=False, truncated=False,
                           program_line_offset=offset, program_lines=len(part)))
        offset += len(part)
    return chunks


def _write_jsonl(path: Path, rows: list[dict], broken: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"id": row["id"], "text": row["text"]}) + "\n")
        if broken:
            f.write("{not json\n")


def _config(models, corpus, output, run_id):
    return load_config(None, [
        f"input.path={corpus}", f"output.path={output}", f"models.doc.path={models['doc']}",
        f"models.chunk.path={models['chunk']}", "models.provider=cpu", "models.max_chunk_tokens=128",
        "input.partitions=2", f"run_id={run_id}",
    ])


def _scripted_run(spark, models, corpus: Path, output: Path) -> None:
    """The refine plan with given programs in place of the models: the stage pass of ``apply`` with the
    scripted programs as the stored ones (same readers, executor, row builder, rows)."""
    from pyspark.sql import functions as F

    from prox_spark.udfs import refine_plan as plan
    from prox_spark.pipeline import settings_of
    from prox_spark.pipeline.rows import stage_model_ids
    from prox_spark.udfs.apply import apply_documents

    docs = scripted_docs()
    corpus.mkdir(parents=True)
    _write_jsonl(corpus / "s-0.jsonl", docs[:13], broken=True)
    _write_jsonl(corpus / "s-1.jsonl", docs[13:])
    config = _config(models, corpus, output, RUN_SCRIPTED)
    files = sorted(str(p) for p in corpus.iterdir())
    started = datetime.now(timezone.utc)
    records = plan.read_records(spark, files, config).cache()
    read_per_shard = {r.shard: r["count"] for r in records.groupBy("shard").count().collect()}
    documents, quarantine = plan.split_records(records)

    # the scripted programs as programs-table rows: a doc row and the chunk rows of each document
    shard_of = {d["id"]: ("s-0.jsonl" if i < 13 else "s-1.jsonl") for i, d in enumerate(docs)}
    shard_key = {Path(f).name: plan.shard_of(f) for f in files}
    programs = []
    for d in docs:
        latency, shard = SCRIPTED_LATENCY_MS[shard_of[d["id"]]], shard_key[shard_of[d["id"]]]
        programs.append((shard, d["id"], "doc", None, None, None, d["doc_program"], 7, latency["doc"], None, None))
        programs.extend(
            (shard, d["id"], "chunk", c["chunk_index"], c["first_line"], c["last_line"], c["program"],
             c["prompt_tokens"], latency["chunk"], None, None)
            for c in scripted_chunks(d["text"], d["chunk_program"])
        )
    programs_df = spark.createDataFrame(programs, (
        "shard string, doc_id string, stage string, chunk_index long, first_line long, last_line long, "
        "program string, prompt_tokens long, latency_ms double, clipped_ops long, model_program string"
    ))
    staged = apply_documents(
        documents, programs_df, ("doc", "chunk"), settings_of(config), rules_preset=config.rules.preset,
        source_run_id=RUN_SCRIPTED,
        model_ids=stage_model_ids(config.rules.preset, {"doc": "hand-doc", "chunk": "hand-chunk"}),
    ).cache()

    shards = sorted(read_per_shard)
    ensure_tables(spark, config.output)
    replace_rows(plan.quarantine_rows(quarantine, RUN_SCRIPTED), config.output, QUARANTINE, RUN_SCRIPTED, shards)
    replace_rows(plan.program_rows(staged, RUN_SCRIPTED), config.output, PROGRAMS, RUN_SCRIPTED, shards)
    replace_rows(plan.refined_rows(staged, RUN_SCRIPTED), config.output, REFINED, RUN_SCRIPTED, shards)
    refined = spark.read.format("delta").load(str(output / "refined")).filter(F.col("run_id") == RUN_SCRIPTED)
    per_shard = {r.shard: r for r in refined.groupBy("shard").agg(
        F.count("*").alias("documents"), F.sum(F.col("kept").cast("long")).alias("kept")).collect()}
    quarantined = {r.shard: r["count"] for r in quarantine.groupBy("shard").count().collect()}
    now = datetime.now(timezone.utc)
    listing = {plan.shard_of(f): f for f in files}
    commits = [(RUN_SCRIPTED, s, int(read_per_shard[s]), int(per_shard[s].documents), int(per_shard[s].kept),
                int(quarantined.get(s, 0)), now, listing[s]) for s in shards]
    replace_rows(spark.createDataFrame(commits, SHARDS.schema), config.output, SHARDS, RUN_SCRIPTED, shards)
    summary = summarize_run(spark, config.output, RUN_SCRIPTED, listing)
    assert summary.balanced
    run_row = (RUN_SCRIPTED, started, now, "succeeded", json.dumps(as_dict(config), sort_keys=True), "{}",
               config.input.path, summary.shards, summary.records_read, summary.kept, summary.dropped,
               summary.quarantined, summary.words_before, summary.words_after, "{}", config.pipeline.mode, 1, None)
    replace_rows(spark.createDataFrame([run_row], RUNS.schema), config.output, RUNS, RUN_SCRIPTED, None)
    staged.unpersist()
    records.unpersist()


def build_audit_tables(spark, models, base: Path) -> AuditTables:
    """Both runs in ``base/out`` (built once per test session; tests/test_notebooks.py reuses them)."""
    marker = base / "audit-tables.json"
    if marker.exists():
        return AuditTables(**json.loads(marker.read_text()))
    base.mkdir(parents=True, exist_ok=True)
    output = base / "out"
    models_corpus = base / "models-corpus"
    models_corpus.mkdir()
    rows = sample_rows()[:10]
    _write_jsonl(models_corpus / "m-0.jsonl", rows[:5], broken=True)
    _write_jsonl(models_corpus / "m-1.jsonl", rows[5:])
    config = _config(models, models_corpus, output, RUN_MODELS)
    root, level = logging.getLogger(), logging.getLogger().level
    handler = configure_logging("json")
    captured = io.StringIO()
    handler.stream = captured  # not setStream: it flushes the old stream, maybe an earlier test's closed capture
    try:
        run_refine(spark, config, preflight(config))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    _scripted_run(spark, models, base / "scripted-corpus", output)
    tables = AuditTables(str(output), str(models_corpus), str(base / "scripted-corpus"),
                         [line for line in captured.getvalue().splitlines() if line.startswith("{")])
    marker.write_text(json.dumps(asdict(tables)))
    return tables


@pytest.fixture(scope="module")
def tables(spark, untrained_models, tmp_path_factory) -> AuditTables:
    return build_audit_tables(spark, untrained_models, tmp_path_factory.getbasetemp() / "audit-tables")


def path_tables(output: str) -> dict[str, str]:
    """The SQL parameters a user passes for path-based tables: ``IDENTIFIER`` needs the session catalog's
    three-part name on open-source Spark (udfs.audit.PATH_PREFIXES)."""
    return {key: f"spark_catalog.delta.`{output}/{key}`" for key in ("refined", "programs", "quarantine", "runs", "shards")}


@pytest.fixture(scope="module")
def plain_sql(spark):
    """A session that shares the test session's Spark but none of its temp views, with another shuffle width:
    the audit files run here exactly as a SQL user runs them."""
    session = spark.newSession()
    session.conf.set("spark.sql.shuffle.partitions", "7")
    assert [t.name for t in session.catalog.listTables() if t.isTemporary] == []
    return session


@pytest.fixture(scope="module")
def views(plain_sql, tables) -> dict[str, pd.DataFrame]:
    """Every audit of both runs as pandas: each ``udfs/sql/audit/<name>.sql`` file's text through ``spark.sql``
    with the tables as named parameters, nothing registered in the session (each query runs once)."""
    frames = {name: plain_sql.sql((audit.SQL_DIR / f"{name}.sql").read_text(encoding="utf-8"),
                                  args=path_tables(tables.output)).toPandas()
              for name in audit.AUDITS}
    assert [t.name for t in plain_sql.catalog.listTables() if t.isTemporary] == []
    return frames


@pytest.fixture(scope="module")
def raw(spark, tables) -> dict[str, pd.DataFrame]:
    return {spec.key: spark.read.format("delta").load(f"{tables.output}/{spec.key}").toPandas()
            for spec in (REFINED, PROGRAMS, QUARANTINE, RUNS, SHARDS)}


def of_run(df: pd.DataFrame, run_id: str) -> pd.DataFrame:
    return df[df.run_id == run_id].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# expected numbers of the scripted run, recomputed with the executor in plain pandas
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    return expected_results()


def expected_results() -> pd.DataFrame:
    """One row per scripted document: doc and chunk execution results (as the job decides them)."""
    docs = pd.DataFrame(scripted_docs())
    doc = execute_batch(docs.text, docs.doc_program, stage="doc")
    survivor = [t if k else "" for t, k in zip(docs.text, doc.kept)]
    chunk = execute_batch(survivor, docs.chunk_program, stage="chunk")
    out = docs.rename(columns={"id": "doc_id"})
    out["shard"] = ["s-0.jsonl" if i < 13 else "s-1.jsonl" for i in range(len(out))]
    out["doc_kept"], out["doc_reason"], out["doc_ops"] = doc.kept, doc.reason, doc.ops
    for column in ("kept", "outcome", "reason", "ops", "words_before", "words_after", "lines_before", "text"):
        out[f"chunk_{column}"] = chunk[column]
    final_kept = out.doc_kept & out.chunk_kept
    out["kept"] = final_kept
    out["reason"] = [None if k else (cr if dk else dr) for k, dk, dr, cr in
                     zip(final_kept, out.doc_kept, out.doc_reason, out.chunk_reason)]
    out["stage"] = [None if k else ("chunk" if dk else "doc") for k, dk in zip(final_kept, out.doc_kept)]
    out["words_before"] = doc.words_before
    out["words_after"] = [wa if k else 0 for wa, k in zip(chunk.words_after, final_kept)]
    out["final_text"] = [t if k else "" for t, k in zip(chunk.text, final_kept)]
    return out


def expected_removed_lines(expected: pd.DataFrame) -> dict[str, set[int]]:
    """Document lines the chunk stage removed in documents whose chunk program took effect."""
    removed = {}
    for row in expected.itertuples():
        if not row.doc_kept or row.chunk_outcome != "kept":
            continue
        n = row.chunk_lines_before
        lines = set()
        for op in row.chunk_ops:
            if op["status"] not in ("applied", "out_of_range"):
                continue
            if op["op"] == "remove_all_lines":
                lines |= set(range(n))
            elif op["op"] == "remove_lines":
                lines |= set(range(max(op["start"], 0), min(op["end"], n - 1) + 1))
        removed[row.doc_id] = lines
    return removed


def chunk_programs(expected: pd.DataFrame) -> list[tuple[str, list[dict]]]:
    """(doc_id, ops of one chunk program) for every chunk row the job writes (doc-stage survivors)."""
    out = []
    for row in expected.itertuples():
        if not row.doc_kept:
            continue
        for chunk in scripted_chunks(row.text, row.chunk_program):
            start, stop = chunk["program_line_offset"], chunk["program_line_offset"] + chunk["program_lines"]
            out.append((row.doc_id, [op for op in row.chunk_ops if start <= op["line"] < stop]))
    return out


def failed(ops: list[dict]) -> bool:
    return any(op["status"] in ("parse_error", "out_of_range") for op in ops)


# --------------------------------------------------------------------------------------------------
# the model run: audits agree with the job's own summary and the raw tables
# --------------------------------------------------------------------------------------------------


def test_model_run_drop_reasons_and_retention_match_the_job(views, raw):
    runs = of_run(raw["runs"], RUN_MODELS).iloc[0]
    reasons = of_run(views["drop_reasons"], RUN_MODELS)
    by_outcome = reasons.groupby("outcome").docs.sum().to_dict()
    assert by_outcome.get("kept", 0) == runs.kept_docs
    assert by_outcome.get("dropped", 0) == runs.dropped_docs
    assert by_outcome.get("quarantined", 0) == runs.quarantined_docs == 1
    assert reasons.docs.sum() == runs.input_docs == 11
    assert math.isclose(reasons.share_of_input.sum(), 1.0)
    retention = of_run(views["retention"], RUN_MODELS).iloc[0]
    assert (retention.documents, retention.kept_docs, retention.dropped_docs) == (
        runs.kept_docs + runs.dropped_docs, runs.kept_docs, runs.dropped_docs)
    assert (retention.words_before, retention.words_after) == (runs.words_before, runs.words_after)
    assert math.isclose(retention.word_retention, runs.words_after / runs.words_before)
    refined = of_run(raw["refined"], RUN_MODELS)
    assert math.isclose(retention.mean_words_before, refined.words_before.mean())


def test_model_run_failure_ratio_and_ops_match_the_programs_table(views, raw):
    programs = of_run(raw["programs"], RUN_MODELS)
    ratios = of_run(views["failure_ratio"], RUN_MODELS).set_index("stage")
    per_ops = of_run(views["ops_per_program"], RUN_MODELS).set_index("stage")
    for stage, group in programs.groupby("stage"):
        fails = sum(failed(list(ops)) for ops in group.ops)
        assert ratios.loc[stage, "programs"] == len(group)
        assert ratios.loc[stage, "failed_programs"] == fails
        assert math.isclose(ratios.loc[stage, "failure_ratio"], fails / len(group))
        assert ratios.loc[stage, "prox_reported_ratio"] == {"doc": 0.0004, "chunk": 0.0036}[stage]
        calls = [sum(op["op"] is not None for op in ops) for ops in group.ops]
        assert per_ops.loc[stage, "ops"] == sum(calls)
        assert math.isclose(per_ops.loc[stage, "ops_per_program"], sum(calls) / len(calls))
    assert ratios.loc["doc", "programs"] == of_run(raw["refined"], RUN_MODELS).shape[0]
    op_counts = of_run(views["op_counts"], RUN_MODELS)
    lines = programs.ops.map(len).sum()
    assert op_counts.ops.sum() == lines


def test_model_run_slowest_shards_sum_the_latencies(views, raw):
    programs = of_run(raw["programs"], RUN_MODELS)
    shards = of_run(views["slowest_shards"], RUN_MODELS).set_index("shard")
    names = {shard.split("@")[0]: shard for shard in shards.index}  # shard = <file name>@<hash of its full path>
    assert set(names) == {"m-0.jsonl", "m-1.jsonl"}
    for shard, group in programs.groupby("shard"):
        assert math.isclose(shards.loc[shard, "model_seconds"], group.latency_ms.sum() / 1000)
        assert shards.loc[shard, "documents"] == group.doc_id.nunique()
    assert shards.loc[names["m-0.jsonl"], "records_read"] == 6  # five pages + the broken record


def test_run_id_is_on_every_driver_log_record(tables):
    records = [json.loads(line) for line in tables.log_lines]
    refine = [r for r in records if r["logger"] == "prox_spark.refine"]
    assert refine, tables.log_lines[:5]
    assert all(r["run_id"] == RUN_MODELS for r in refine)
    assert any("committed" in r["message"] for r in refine)
    # no per-connection py4j chatter from the driver threads that write the tables side by side
    assert not [r for r in records if r["logger"].startswith("py4j")]
    assert _RUN_ID.get() == "-"  # reset once the run is over
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert RunIdFilter().filter(record) and record.run_id == "-"


# --------------------------------------------------------------------------------------------------
# the scripted run: every audit against the executor in pandas
# --------------------------------------------------------------------------------------------------


def test_scripted_drop_reasons(views, expected):
    got = of_run(views["drop_reasons"], RUN_SCRIPTED)
    want = expected.assign(outcome=expected.kept.map({True: "kept", False: "dropped"}))
    want["reason"] = want.reason.fillna("refined")
    want.loc[want.kept & (want.chunk_outcome == "kept_original"), "reason"] = "program_ignored"
    counts = want.groupby(["outcome", "reason"]).size().to_dict()
    counts[("quarantined", "invalid_json")] = 1
    assert {(r.outcome, r.reason): r.docs for r in got.itertuples()} == counts
    # the sample's four spam / empty pages are dropped by their doc programs
    assert counts[("dropped", "doc_program_drop")] == 4
    stages = {(r.outcome, r.reason): r.stage for r in got.itertuples()}
    assert stages[("dropped", "doc_program_drop")] == "doc"
    assert stages[("quarantined", "invalid_json")] == "read"


def test_scripted_retention(views, expected):
    got = of_run(views["retention"], RUN_SCRIPTED).iloc[0]
    assert got.documents == len(expected) == 26
    assert got.kept_docs == expected.kept.sum()
    assert got.kept_after_doc_stage == expected.doc_kept.sum()
    assert got.words_before == expected.words_before.sum()
    assert got.words_after == expected.words_after.sum()
    assert got.words_after_doc_stage == expected.words_before[expected.doc_kept].sum()
    assert math.isclose(got.word_retention, expected.words_after.sum() / expected.words_before.sum())
    per_doc = of_run(views["doc_retention"], RUN_SCRIPTED).set_index("doc_id")
    for row in expected.itertuples():
        assert per_doc.loc[row.doc_id, "words_after"] == row.words_after
        assert math.isclose(per_doc.loc[row.doc_id, "word_retention"], row.words_after / row.words_before)


def test_scripted_failure_ratio(views, expected):
    got = of_run(views["failure_ratio"], RUN_SCRIPTED).set_index("stage")
    chunks = chunk_programs(expected)
    fails = sum(failed(ops) for _, ops in chunks)
    assert got.loc["chunk", "programs"] == len(chunks)
    # two out-of-range removals (sample-19, extra-out-of-range), sample-23's two malformed lines
    assert got.loc["chunk", "failed_programs"] == fails == 4
    assert got.loc["chunk", "programs_with_out_of_range"] == 2
    assert got.loc["chunk", "programs_with_parse_error"] == 2
    assert math.isclose(got.loc["chunk", "failure_ratio"], fails / len(chunks))
    assert math.isclose(got.loc["chunk", "times_prox_reported"], fails / len(chunks) / 0.0036)
    assert got.loc["doc", "programs"] == 26 and got.loc["doc", "failed_programs"] == 0
    assert got.loc["doc", "started_at"] is not None


def test_scripted_ops_per_program_and_op_counts(views, expected):
    chunks = chunk_programs(expected)
    got = of_run(views["ops_per_program"], RUN_SCRIPTED).set_index("stage")
    calls = [sum(op["op"] is not None for op in ops) for _, ops in chunks]
    assert got.loc["chunk", "programs"] == len(chunks)
    assert got.loc["chunk", "ops"] == sum(calls)
    assert math.isclose(got.loc["chunk", "ops_per_program"], sum(calls) / len(chunks))
    assert got.loc["chunk", "max_ops"] == max(calls)
    assert got.loc["chunk", "prox_reported_ops_per_program"] == 3.7
    counts = of_run(views["op_counts"], RUN_SCRIPTED)
    want: dict = {}
    for _, ops in chunks:
        for op in ops:
            key = ("chunk", op["op"] or "(none)", op["status"])
            want[key] = want.get(key, 0) + 1
    for ops in expected.doc_ops:
        for op in ops:
            key = ("doc", op["op"] or "(none)", op["status"])
            want[key] = want.get(key, 0) + 1
    assert {(r.stage, r.op, r.status): r.ops for r in counts.itertuples()} == want
    assert want[("doc", "drop_doc", "applied")] == 4


def test_scripted_normalize_sources(views, expected):
    got = of_run(views["normalize_sources"], RUN_SCRIPTED).set_index("source")
    want = {}
    for row in expected[expected.doc_kept].itertuples():
        for op in row.chunk_ops:
            if op["op"] == "normalize":
                want.setdefault(op["source"], []).append(op["status"])
    assert set(got.index) == set(want)
    for source, statuses in want.items():
        assert got.loc[source, "ops"] == len(statuses)
        assert got.loc[source, "applied"] == statuses.count("applied")
        assert got.loc[source, "not_found"] == statuses.count("not_found")
    assert got.loc["no such text", "not_found"] == 1
    assert got.loc["Share this page | ", "applied"] == 1


def test_scripted_removed_lines_by_position_and_offset(views, expected):
    removed = expected_removed_lines(expected)
    n_lines = dict(zip(expected.doc_id, expected.chunk_lines_before))
    lines = of_run(views["removed_lines"], RUN_SCRIPTED)
    got = {}
    for row in lines.itertuples():
        got.setdefault(row.doc_id, set()).add(row.line)
    assert got == {d: s for d, s in removed.items() if s}
    # the out-of-range op still removes the lines that exist, as the executor clips it
    assert removed["extra-out-of-range"] == {0} | set(range(9, n_lines["extra-out-of-range"]))

    by_bucket = of_run(views["removed_by_position"], RUN_SCRIPTED).set_index("bucket").sort_index()
    want_removed, want_total = [0] * 10, [0] * 10
    for doc_id, lines_removed in removed.items():
        n = n_lines[doc_id]
        for i in range(n):
            want_total[10 * i // n] += 1
        for i in lines_removed:
            want_removed[10 * i // n] += 1
    assert list(by_bucket.lines_removed) == want_removed
    assert list(by_bucket.lines_total) == want_total
    assert by_bucket.loc[0, "position"] == "0-10%" and by_bucket.loc[9, "position"] == "90-100%"
    assert math.isclose(by_bucket.share_of_removed.sum(), 1.0)
    # headers go: the first tenth of the lines is removed more often than the middle
    assert by_bucket.loc[0, "removal_rate"] > by_bucket.loc[5, "removal_rate"]

    offsets = of_run(views["removed_line_offsets"], RUN_SCRIPTED).set_index(["anchor", "offset"])
    first = sum(0 in s for s in removed.values())
    assert offsets.loc[("start", 0), "lines_removed"] == first
    assert offsets.loc[("start", 0), "documents"] == len(removed)
    last = sum((n_lines[d] - 1) in s for d, s in removed.items())
    assert offsets.loc[("end", 0), "lines_removed"] == last


def test_scripted_slowest_shards(views, expected):
    got = of_run(views["slowest_shards"], RUN_SCRIPTED)
    got = got.assign(shard=got.shard.str.split("@").str[0])  # shard = <file name>@<hash of its full path>
    assert list(got.sort_values("model_seconds", ascending=False).shard) == ["s-1.jsonl", "s-0.jsonl"]
    chunks = chunk_programs(expected)
    for shard, latency in SCRIPTED_LATENCY_MS.items():
        docs = expected[expected.shard == shard]
        n_chunks = sum(1 for doc_id, _ in chunks if doc_id in set(docs.doc_id))
        want = (len(docs) * latency["doc"] + n_chunks * latency["chunk"]) / 1000
        assert math.isclose(got.set_index("shard").loc[shard, "model_seconds"], want)


def test_scripted_doc_results_side_by_side(views, expected):
    got = of_run(views["doc_results"], RUN_SCRIPTED).set_index("doc_id")
    assert len(got) == len(expected)
    for row in expected.itertuples():
        result = got.loc[row.doc_id]
        assert result.doc_program == row.doc_program
        assert result.final_text == row.final_text
        assert bool(result.kept) == bool(row.kept)
        if row.doc_kept:  # chunk programs come back joined in chunk order, as the executor ran them
            assert result.chunk_program == row.chunk_program
            assert [op["line"] for op in result.chunk_ops] == [op["line"] for op in row.chunk_ops]
        else:
            assert result.chunk_program is None and result.chunks == 0


# --------------------------------------------------------------------------------------------------
# the functions: same queries, one run; reports with the re-read input
# --------------------------------------------------------------------------------------------------


def test_functions_return_one_run_of_the_views(spark, tables, views):
    for name, function in [
        ("drop_reasons", audit.audit_drop_reasons), ("retention", audit.audit_retention),
        ("failure_ratio", audit.audit_failure_ratio), ("ops_per_program", audit.audit_ops_per_program),
        ("removed_by_position", audit.audit_removed_by_position),
    ]:
        got = function(spark, tables.output, RUN_SCRIPTED).toPandas()
        want = of_run(views[name], RUN_SCRIPTED)
        assert len(got) == len(want) and set(got.run_id) == {RUN_SCRIPTED}, name
    both = audit.audit_failure_ratio(spark, tables.output).toPandas()
    assert set(both.run_id) == {RUN_MODELS, RUN_SCRIPTED}
    top = audit.audit_normalize_sources(spark, tables.output, RUN_SCRIPTED, limit=1).toPandas()
    assert len(top) == 1
    assert audit.latest_run_id(spark, tables.output) == RUN_SCRIPTED


def test_functions_equal_the_files_row_for_row(spark, tables, views):
    """The functions run the same files (other session, other shuffle width): same rows in the same order,
    so every query's order is deterministic."""
    for name in audit.AUDITS:
        got = audit.audit(spark, tables.output, name, RUN_SCRIPTED).toPandas()
        want = of_run(views[name], RUN_SCRIPTED)
        pd.testing.assert_frame_equal(got, want, obj=name)
    assert list(of_run(views["removed_by_position"], RUN_SCRIPTED).bucket) == list(range(10))


def test_metastore_names_as_parameters(spark, plain_sql, tables, views):
    """Tables registered in a metastore (as on Databricks) are passed by name: same rows as by path."""
    plain_sql.sql("CREATE DATABASE IF NOT EXISTS audit_metastore")
    for key in ("refined", "programs", "quarantine", "runs", "shards"):
        plain_sql.sql(f"CREATE TABLE IF NOT EXISTS audit_metastore.{key} USING delta LOCATION '{tables.output}/{key}'")
    names = {key: f"audit_metastore.{key}" for key in ("refined", "programs", "quarantine", "runs", "shards")}
    for name in ("drop_reasons", "failure_ratio", "removed_by_position"):
        got = plain_sql.sql(audit.load_sql(name), args=names).toPandas()
        pd.testing.assert_frame_equal(got, views[name], obj=name)
    got = audit.audit_retention(spark, OutputConfig(path="", database="audit_metastore")).toPandas()
    pd.testing.assert_frame_equal(got, views["retention"])


def test_every_sql_file_is_a_self_contained_audit():
    """Each file reads only its parameters and its own CTEs (pasteable as it is), ends in an ORDER BY, and the
    files that need removed_lines carry the removed_lines.sql block unchanged."""
    files = {p.stem: p.read_text(encoding="utf-8") for p in audit.SQL_DIR.glob("*.sql")}
    assert set(files) == set(audit.AUDITS) | {"removed_line_patterns"}
    for name in files:
        query = audit.load_sql(name)
        assert not query.endswith(";"), name
        code = re.sub(r"--[^\n]*", "", query)
        ctes = set(re.findall(r"(\w+) AS \(", code))
        for source in re.findall(r"\b(?:FROM|JOIN)\s+([^\s,)]+)", code):
            assert source.startswith(("IDENTIFIER(:", "(")) or source in ctes, (name, source)
        assert re.search(r"\nORDER BY [^\n]+$", code.rstrip()), name
        assert "prox_" not in re.sub(r"prox_reported", "", code), name  # no temp view of the Python side
    block = re.compile(r"-- begin removed_lines\n.*?-- end removed_lines\n", re.S)
    [canonical] = block.findall(files["removed_lines"])
    for name in ("removed_by_position", "removed_line_offsets", "removed_line_patterns"):
        assert block.findall(files[name]) == [canonical], name


def test_removed_line_patterns_file_over_an_input_table(spark, plain_sql, tables, tmp_path):
    """In plain SQL the input is a table of (doc_id, text): the same patterns as the function's re-read input."""
    table = str(tmp_path / "input-text")
    docs = [(d["id"], d["text"]) for d in scripted_docs()]
    spark.createDataFrame(docs, "doc_id string, text string").write.format("delta").save(table)
    args = {**path_tables(tables.output), "run_id": RUN_SCRIPTED, "input_text": f"spark_catalog.delta.`{table}`"}
    got = plain_sql.sql(audit.load_sql("removed_line_patterns"), args=args).toPandas()
    want = audit.audit_removed_line_patterns(spark, tables.output, RUN_SCRIPTED, limit=None).toPandas()
    pd.testing.assert_frame_equal(got, want)
    assert len(got) > 0 and set(got.run_id) == {RUN_SCRIPTED}


def test_removed_line_patterns_from_the_reread_input(spark, tables, expected):
    got = audit.audit_removed_line_patterns(spark, tables.output, RUN_SCRIPTED, limit=None).toPandas()
    removed = expected_removed_lines(expected)
    texts = dict(zip(expected.doc_id, expected.text))
    want: dict = {}
    for doc_id, lines in removed.items():
        doc_lines = texts[doc_id].split("\n")
        for i in lines:
            pattern = re.sub(r"[0-9]+", "0", doc_lines[i].strip().lower())[:120]
            want[pattern] = want.get(pattern, 0) + 1
    assert dict(zip(got.pattern, got.lines_removed)) == want
    top = got.sort_values(["lines_removed", "pattern"], ascending=[False, True]).iloc[0]
    assert top.lines_removed == max(want.values())


def test_document_report_diffs_input_against_final_text(spark, tables, expected):
    row = expected.set_index("doc_id").loc["sample-01-recipe-lentil-soup"]
    report = audit.document_report(spark, tables.output, RUN_SCRIPTED, "sample-01-recipe-lentil-soup")
    assert report.input_matches is True
    assert report.input_text == row.text and report.final_text == row.final_text
    want = "".join(difflib.unified_diff(
        [line + "\n" for line in row.text.split("\n")], [line + "\n" for line in row.final_text.split("\n")],
        fromfile="sample-01-recipe-lentil-soup (input)", tofile="sample-01-recipe-lentil-soup (final)", n=1))
    assert report.diff() == want
    assert "-Home | Recipes | Meal Plans | About | Contact" in report.diff()
    text = report.render()
    assert "remove_lines(line_start=0, line_end=2)" in text and "-- diff input -> final:" in text
    dropped = audit.document_report(spark, tables.output, RUN_SCRIPTED, "sample-06-spam-watches", read_input=False)
    assert dropped.input_text is None and "dropped at the doc stage: doc_program_drop" in dropped.render()
    with pytest.raises(audit.AuditError, match="not in run"):
        audit.document_report(spark, tables.output, RUN_SCRIPTED, "no-such-doc", read_input=False)


def test_sample_reports_kinds_and_moved_input(spark, tables, tmp_path):
    edited = audit.sample_reports(spark, tables.output, RUN_SCRIPTED, n=2, kind="edited")
    assert len(edited) == 2
    assert all(r.kept and r.words_after < r.words_before and r.input_matches for r in edited)
    dropped = audit.sample_reports(spark, tables.output, RUN_SCRIPTED, n=10, kind="dropped", read_input=False)
    assert dropped and all(not r.kept for r in dropped)
    # the input moved: pass its new place; an input that changed is detected, not diffed
    moved = tmp_path / "moved"
    moved.mkdir()
    for path in Path(tables.scripted_corpus).iterdir():
        lines = path.read_text(encoding="utf-8").splitlines()
        changed = [json.dumps({**json.loads(l), "text": json.loads(l)["text"] + "\nadded"}) if l.startswith('{"id"') else l
                   for l in lines]
        (moved / path.name).write_text("\n".join(changed) + "\n", encoding="utf-8")
    report = audit.sample_reports(spark, tables.output, RUN_SCRIPTED, n=1, kind="edited", input_path=str(moved))[0]
    assert report.input_text is not None and report.input_matches is False
    assert "no longer has the recorded" in report.render()


def test_errors_name_the_problem(spark, tmp_path):
    with pytest.raises(audit.AuditError, match="run the refine job first"):
        audit.audit_drop_reasons(spark, str(tmp_path / "nothing"))
    with pytest.raises(audit.AuditError, match="unknown audit"):
        audit.audit(spark, str(tmp_path), "nope")


def test_input_of_a_delta_input_run_is_reread_with_spark(spark, tables, tmp_path, monkeypatch):
    """A run that read a Delta table (input.format: delta) gets its input back through the job's Delta reader."""
    import dataclasses

    docs = scripted_docs()[:3]
    table = str(tmp_path / "input-table")
    spark.createDataFrame([(d["id"], d["text"]) for d in docs], "id string, text string").write.format("delta").save(table)
    recorded = audit.run_config(spark, tables.output, RUN_SCRIPTED)
    as_delta = dataclasses.replace(recorded, input=dataclasses.replace(recorded.input, format="delta", path=table))
    from prox_spark.udfs import audit_documents

    monkeypatch.setattr(audit_documents, "run_config", lambda *args: as_delta)
    rows = audit.read_input_texts(spark, tables.output, RUN_SCRIPTED).collect()
    assert {(r.doc_id, r.text) for r in rows} == {(d["id"], d["text"]) for d in docs}
    assert {r.run_id for r in rows} == {RUN_SCRIPTED}
    with pytest.raises(audit.AuditError, match="cannot re-read the input"):
        audit.read_input_texts(spark, tables.output, RUN_SCRIPTED, input_path=str(tmp_path / "no-table"))
