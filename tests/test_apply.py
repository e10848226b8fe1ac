"""``prox-spark apply``: a run's stored programs re-executed under new executor settings, with no model.

The core (``apply_stored_programs``) gives the stage columns a model rerun gives; the job, on real Spark and
real Delta, writes the ``refined`` and ``programs`` rows a full refine rerun with the same executor settings
writes, while its model paths point at nothing (so no model can have been loaded), and accounts for every
input record once.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from prox_spark.config import bundled_model_dir
from prox_spark.pipeline import RefineSettings, Serving, load_stage_model, refine_batch, run_stages
from prox_spark.pipeline.apply import NO_STORED_PROGRAM, apply_stored_programs
from prox_spark.programs import ExecutorConfig

SAMPLE = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "sample_corpus.jsonl"
STAGES = ("rules", "doc", "chunk")
#: the bundled generative chunk model as it is served: several 128-token chunks per page, clipped programs
SOURCE = RefineSettings(max_chunk_tokens=128, clip_chunk_programs=True)
STRICT = RefineSettings(dialect="strict", executor=ExecutorConfig(max_removed_fraction=0.3), max_chunk_tokens=128,
                        clip_chunk_programs=True)
#: what the programs table does not keep, and what differs run to run
UNSTORED = {"latency_ms", "truncated", "oversize"}
NEW_EXECUTOR = ["executor.dialect=strict", "executor.max_removed_fraction=0.5"]


def _sample() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _comparable(column) -> list:
    records = column.to_dict("records") if isinstance(column, pd.DataFrame) else column.tolist()
    return [_stored_part(record) for record in records]


def _stored_part(value):
    if isinstance(value, dict):
        return {k: _stored_part(v) for k, v in value.items() if k not in UNSTORED}
    if isinstance(value, list):
        return [_stored_part(v) for v in value]
    return value


def _stored_programs(programs: pd.DataFrame, doc_ids: list[str]) -> dict[str, list]:
    """The programs rows of each document as the apply pass receives them, by model stage: its doc row, its
    chunk rows (or None)."""
    stored: dict[str, dict[str, list]] = {"doc": {}, "chunk": {}}
    for r in reversed(programs.to_dict("records")):  # any order: apply sorts by chunk_index
        if r["stage"] in stored:
            stored[r["stage"]].setdefault(r["doc_id"], []).append(r)
    return {stage: [rows.get(i) for i in doc_ids] for stage, rows in stored.items()}


def test_stored_programs_give_the_columns_a_model_rerun_gives():
    docs = _sample()
    ids, texts = [d["id"] for d in docs], [d["text"] for d in docs]
    models = {stage: load_stage_model(str(bundled_model_dir(stage)), "generative", Serving(provider="cpu"))
              for stage in ("doc", "chunk")}
    source_rows, programs = refine_batch(ids, texts, models, SOURCE, stages=STAGES, rules_preset="c4")
    stored = _stored_programs(programs, ids)

    applied = apply_stored_programs(texts, STAGES, STRICT, rules_preset="c4", stored=stored)
    rerun = run_stages(texts, STAGES, STRICT, rules_preset="c4", models=models)

    assert applied.missing == [None] * len(texts)
    assert list(applied.columns) == list(rerun)
    for name, column in rerun.items():
        assert _comparable(applied.columns[name]) == _comparable(column), name
    assert max(len(c or []) for c in stored["chunk"]) > 1  # pages of several chunks: offsets matter
    changed = (source_rows["kept"].to_numpy() != applied.columns["chunk_exec"]["kept"].to_numpy()).sum()
    assert changed > 0  # the stricter threshold changed outcomes: the comparison is not vacuous


def test_a_document_reaching_a_stage_without_its_stored_program_is_reported():
    texts = ["one two three four five six seven eight nine ten eleven twelve\nline two of the page here"] * 3
    keep = {"program": "keep_doc()", "prompt_tokens": 5, "latency_ms": 1.0, "model_program": None}
    chunk = {"chunk_index": 0, "first_line": 0, "last_line": 1, "program": "remove_lines(line_start=1, line_end=1)",
             "prompt_tokens": 9, "latency_ms": 2.0, "clipped_ops": 0, "model_program": None}
    applied = apply_stored_programs(
        texts, ("doc", "chunk"), RefineSettings(), rules_preset="c4",
        stored={"doc": [[keep], None, [keep]], "chunk": [[chunk], [chunk], None]},
    )
    assert applied.missing == [None, "doc", "chunk"]
    assert applied.columns["chunk_exec"]["text"][0] == texts[0].split("\n")[0]


# --- the job, on real Spark and Delta --------------------------------------------------------------------


def _write_corpus(folder: Path, shared_data: Path) -> Path:
    """Two shards: real web pages (most of each page is boilerplate), and the sample corpus with a broken
    line and a repeated doc id (both quarantined)."""
    folder.mkdir()
    with gzip.open(shared_data / "cleaning" / "trafilatura_eval_segments.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for _, line in zip(range(16), f)]
    with open(folder / "pages.jsonl", "w", encoding="utf-8") as out:
        for page in pages:
            out.write(json.dumps({"id": page["id"], "text": page["noisy_text"]}) + "\n")
    sample = _sample()
    with open(folder / "sample.jsonl", "w", encoding="utf-8") as out:
        for doc in sample:
            out.write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")
        out.write('{"id": "broken", "text": \n')
        out.write(json.dumps({"id": sample[0]["id"], "text": "a second copy"}) + "\n")
    return folder


def _refined(spark, out: Path, run_id: str) -> dict[str, tuple]:
    rows = spark.read.format("delta").load(str(out / "refined")).where(f"run_id = '{run_id}'").collect()
    return {r.doc_id: tuple(v for k, v in r.asDict().items() if k != "run_id") for r in rows}


def _programs(spark, out: Path, run_id: str) -> set[str]:
    frame = spark.read.format("delta").load(str(out / "programs")).where(f"run_id = '{run_id}'")
    return {json.dumps(r.asDict(recursive=True), sort_keys=True, default=str)
            for r in frame.drop("run_id", "latency_ms").collect()}


def _quarantine(spark, out: Path, run_id: str) -> set[tuple]:
    rows = spark.read.format("delta").load(str(out / "quarantine")).where(f"run_id = '{run_id}'").collect()
    return {(r.shard, r.record_index, r.doc_id, r.reason) for r in rows}


@pytest.mark.spark
@pytest.mark.slow
def test_apply_equals_a_full_rerun_without_loading_a_model(spark, shared_data, tmp_path, capsys):
    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.cli import main as cli
    from prox_spark.config import load_config

    corpus, out = _write_corpus(tmp_path / "corpus", shared_data), tmp_path / "out"
    common = [f"input.path={corpus}", f"output.path={out}", "models.provider=cpu", "input.partitions=2"]
    source = load_config(None, [*common, "run_id=source"])
    run_refine(spark, source, preflight(source))
    rerun = load_config(None, [*common, "run_id=rerun", *NEW_EXECUTOR])
    run_refine(spark, rerun, preflight(rerun))

    # no model can load: both model paths name nothing, and apply still succeeds
    nowhere = [f"models.doc.path={tmp_path / 'no-model'}", f"models.chunk.path={tmp_path / 'no-model'}"]
    assert cli(["apply", f"output.path={out}", "--source-run", "source", "run_id=applied", *nowhere,
                *NEW_EXECUTOR]) == 0
    assert "prox-spark apply: run applied" in capsys.readouterr().out

    applied, full = _refined(spark, out, "applied"), _refined(spark, out, "rerun")
    assert applied == full
    assert applied != _refined(spark, out, "source")  # the new thresholds changed documents
    assert _programs(spark, out, "applied") == _programs(spark, out, "rerun")
    quarantined = _quarantine(spark, out, "applied")
    assert quarantined == _quarantine(spark, out, "source")
    assert {reason for *_, reason in quarantined} == {"invalid_json", "duplicate_doc_id"}

    runs = {r.run_id: r for r in spark.read.format("delta").load(str(out / "runs")).collect()}
    assert runs["applied"].source_run_id == "source" and runs["applied"].status == "succeeded"
    assert runs["source"].source_run_id is None and runs["rerun"].source_run_id is None
    row = runs["applied"]
    assert row.input_docs == row.kept_docs + row.dropped_docs + row.quarantined_docs == 16 + 24 + 2
    assert json.loads(row.config_json)["executor"]["max_removed_fraction"] == 0.5

    # a document whose stored program is gone is quarantined, not lost; the latest succeeded run is the default
    lost = next(doc_id for doc_id, r in applied.items() if r[3])  # a kept document
    spark.sql(f"DELETE FROM delta.`{out / 'programs'}` WHERE run_id = 'applied' AND doc_id = '{lost}'")
    assert cli(["apply", f"output.path={out}", "run_id=again", *nowhere, *NEW_EXECUTOR]) == 0
    assert spark.read.format("delta").load(str(out / "runs")).where("run_id = 'again'").first().source_run_id == "applied"
    again = _quarantine(spark, out, "again")
    assert {(doc_id, reason) for _, _, doc_id, reason in again - quarantined} == {(lost, NO_STORED_PROGRAM)}
    assert set(_refined(spark, out, "again")) == set(applied) - {lost}


@pytest.mark.spark
def test_apply_refuses_settings_that_change_what_the_source_read(spark, tmp_path, capsys):
    from prox_spark.jobs.apply import main as apply_main
    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.config import load_config

    out = tmp_path / "out"
    config = load_config(None, [f"input.path={SAMPLE}", f"output.path={out}", "run_id=rules", "pipeline.mode=rules"])
    run_refine(spark, config, preflight(config))
    assert apply_main([f"output.path={out}", "pipeline.mode=prox"]) == 2
    assert "pipeline.mode: 'prox' here, but run 'rules' ran with 'rules'" in capsys.readouterr().err
    assert apply_main([f"output.path={out}", "pipeline.mode=rules", "run_id=rules"]) == 2
    assert "run_id: 'rules' is already a run of other programs" in capsys.readouterr().err
    assert apply_main([f"output.path={tmp_path / 'empty'}"]) == 2
    assert "no runs table" in capsys.readouterr().err
