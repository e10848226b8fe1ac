"""The refine job end to end on a real SparkSession with real Delta: real documents in, tables out."""

from __future__ import annotations

import gzip
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prox_spark.jobs.refine import main as refine_main
from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.config import ConfigError, load_config
from prox_spark.inference import ModelLoadError

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _config(models, input_path, output, *extra):
    return load_config(
        None,
        [
            f"input.path={input_path}",
            f"output.path={output}",
            f"models.doc.path={models['doc']}",
            f"models.chunk.path={models['chunk']}",
            "models.provider=cpu",
            "models.max_chunk_tokens=128",
            "input.partitions=2",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory, shared_data):
    """Three shards of real web text: trafilatura pages (jsonl.gz), DCLM docs (parquet), a WARC file."""
    corpus = tmp_path_factory.mktemp("corpus")
    with gzip.open(shared_data / "cleaning" / "trafilatura_eval_segments.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for _, line in zip(range(25), f)]
    with gzip.open(corpus / "pages.jsonl.gz", "wt", encoding="utf-8") as out:
        for page in pages:
            out.write(json.dumps({"id": page["id"], "text": page["noisy_text"], "url": page["url"]}) + "\n")
    with open(shared_data / "quality" / "dclm_human_labels.jsonl", encoding="utf-8") as f:
        labelled = [json.loads(line) for _, line in zip(range(15), f)]
    pq.write_table(pa.table({"id": [str(r["id"]) for r in labelled], "text": [r["text"] for r in labelled]}),
                   corpus / "dclm.parquet")
    shutil.copy(shared_data / "warc" / "sample-0000.warc.gz", corpus / "crawl.warc.gz")
    return corpus


def test_end_to_end_tables_and_counts(spark, untrained_models, real_corpus, tmp_path):
    config = _config(untrained_models, real_corpus, tmp_path / "out", "run_id=e2e")
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced
    assert summary.shards == 3
    out = tmp_path / "out"
    counts = {
        name: spark.sql(f"SELECT count(*) AS n FROM delta.`{out / name}` WHERE run_id = 'e2e'").first().n
        for name in ("refined", "programs", "quarantine", "runs", "shards")
    }
    read = spark.sql(f"SELECT sum(records_read) AS n FROM delta.`{out / 'shards'}`").first().n
    assert read == counts["refined"] + counts["quarantine"]
    assert counts["refined"] >= 25 + 15  # the WARC adds its HTML pages
    assert counts["runs"] == 1
    assert counts["shards"] == 3
    doc_programs = spark.sql(
        f"SELECT count(*) AS n FROM delta.`{out / 'programs'}` WHERE stage = 'doc'").first().n
    assert doc_programs == counts["refined"]
    run = spark.sql(f"SELECT * FROM delta.`{out / 'runs'}`").first()
    assert run.status == "succeeded"
    assert run.input_docs == run.kept_docs + run.dropped_docs + run.quarantined_docs
    kept_rows = spark.sql(f"SELECT text, kept, drop_reason FROM delta.`{out / 'refined'}`").collect()
    assert all((r.text == "") == (not r.kept) or r.kept for r in kept_rows)
    assert all(r.drop_reason for r in kept_rows if not r.kept)
    comments = spark.sql(f"DESCRIBE TABLE delta.`{out / 'refined'}`").collect()
    assert any(r.col_name == "doc_id" and "Stable document id" in (r.comment or "") for r in comments)
    # a chunk row's ops are exactly the merged program's lines that came from that chunk
    chunk_ops = spark.sql(
        f"SELECT doc_id, sum(size(ops)) AS n FROM delta.`{out / 'programs'}` WHERE stage = 'chunk' GROUP BY doc_id"
    ).collect()
    assert chunk_ops


def test_rerun_replaces_instead_of_duplicating(spark, untrained_models, real_corpus, tmp_path):
    config = _config(untrained_models, real_corpus / "dclm.parquet", tmp_path / "out", "run_id=again")
    first = run_refine(spark, config, preflight(config))
    rows_before = sorted(map(tuple, spark.read.format("delta").load(str(tmp_path / "out" / "refined")).collect()))
    second = run_refine(spark, config, preflight(config))  # everything committed: nothing re-read
    assert (first.kept, first.dropped) == (second.kept, second.dropped)
    spark.sql(f"DELETE FROM delta.`{tmp_path / 'out' / 'shards'}`")  # forget the commits: full redo
    run_refine(spark, config, preflight(config))
    rows_after = sorted(map(tuple, spark.read.format("delta").load(str(tmp_path / "out" / "refined")).collect()))
    assert rows_after == rows_before


def test_corrupt_input_is_quarantined_with_reasons(spark, untrained_models, shared_data, tmp_path):
    corpus = tmp_path / "bad"
    corpus.mkdir()
    words = " ".join(["content"] * 40)
    lines = [
        json.dumps({"id": "ok-1", "text": words}).encode(),
        b"{not json",
        json.dumps({"id": "null", "text": None}).encode(),
        json.dumps({"id": "empty", "text": ""}).encode(),
        json.dumps({"id": "blank", "text": "   \n\t"}).encode(),
        json.dumps({"id": "number", "text": 12345}).encode(),
        json.dumps({"id": "list", "text": ["a", "b"]}).encode(),
        b'{"id": "latin1", "text": "caf\xe9 au lait"}',
        json.dumps({"id": "huge", "text": "big line of text\n" * (5 * 1024 * 1024 // 17)}).encode(),
        json.dumps({"id": "ok-2", "text": words + " more"}).encode(),
        b"[1, 2, 3]",
    ]
    (corpus / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    whole = gzip.compress(b"\n".join(json.dumps({"id": f"g{i}", "text": words}).encode() for i in range(50)))
    (corpus / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    shutil.copy(shared_data / "warc" / "clipped-truncated.warc.gz", corpus / "clipped.warc.gz")
    config = _config(untrained_models, corpus, tmp_path / "out", "run_id=bad", "input.max_text_bytes=4194304")
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced
    reasons = dict(summary.quarantine_reasons)
    for reason in ("invalid_json", "missing_text", "empty_text", "text_not_string", "invalid_utf8",
                   "document_too_large", "not_an_object", "truncated_gzip"):
        assert reasons.get(reason), (reason, reasons)
    assert any(r.startswith("truncated_warc") or r == "unreadable_file" for r in reasons), reasons
    refined_ids = {r.doc_id for r in spark.read.format("delta").load(str(tmp_path / "out" / "refined")).collect()}
    assert {"ok-1", "ok-2"} <= refined_ids


def test_bad_config_and_missing_model_fail_before_spark(untrained_models, tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "hello"}\n')
    with pytest.raises(ConfigError, match="models.doc.batchsize: unknown key"):
        load_config(None, ["models.doc.batchsize=3"])
    missing = _config({"doc": tmp_path / "nope", "chunk": untrained_models["chunk"]}, corpus, tmp_path / "o")
    with pytest.raises(ModelLoadError, match="models.doc.path"):
        preflight(missing)
    swapped = _config({"doc": untrained_models["chunk"], "chunk": untrained_models["chunk"]}, corpus, tmp_path / "o")
    with pytest.raises(ModelLoadError, match="chunk-stage model"):
        preflight(swapped)
    code = refine_main([f"input.path={tmp_path / 'absent'}", f"output.path={tmp_path / 'o'}",
                        f"models.doc.path={untrained_models['doc']}", f"models.chunk.path={untrained_models['chunk']}"])
    assert code == 2
    assert "input.path" in capsys.readouterr().err


def test_delta_table_input(spark, untrained_models, tmp_path):
    words = " ".join(["plain", "body", "text"] * 20)
    rows = [("a", words), ("b", None), ("c", "   "), ("d", words + " extra"), ("e", words + " more words")]
    source = tmp_path / "source"
    spark.createDataFrame(rows, "id string, text string").repartition(2).write.format("delta").save(str(source))
    config = _config(untrained_models, source, tmp_path / "out", "run_id=from-delta", "input.format=delta")
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced
    assert summary.records_read == 5
    assert dict(summary.quarantine_reasons) == {"missing_text": 1, "empty_text": 1}
    refined = spark.read.format("delta").load(str(tmp_path / "out" / "refined"))
    assert sorted(r.doc_id for r in refined.collect()) == ["a", "d", "e"]
    assert refined.select("shard").distinct().count() >= 1


def test_progress_lines_name_the_time_left_from_the_pace_so_far():
    from prox_spark.udfs.progress import commit_progress

    assert commit_progress(1, 4, 90.0) == "committed 1/4 shards (25%), 1m30s elapsed, about 4m30s left"
    assert commit_progress(4, 4, 7300.0) == "committed 4/4 shards (100%), 2h01m elapsed"
