"""All stages in one Python pass per partition: the core (``run_stages``) against ``refine_batch``, and the
Spark glue (``udfs.staged``) against the core on the same documents, with the committed default models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from prox_spark.pipeline import RefineSettings, StageModel, refine_batch, run_stages, staged_columns

MODELS = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "models"
SAMPLE = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "sample_corpus.jsonl"
SETTINGS = RefineSettings(max_chunk_tokens=128, clip_chunk_programs=True)


@pytest.fixture(scope="module")
def models() -> tuple[StageModel, StageModel]:
    return StageModel.load(MODELS / "doc", provider="cpu"), StageModel.load(MODELS / "chunk", provider="cpu")


@pytest.fixture(scope="module")
def texts() -> list:
    """The bundled pages, plus a blank and a missing text (neither may reach a model)."""
    pages = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:12]]
    return pages + ["   ", None]


def test_staged_columns_follow_stage_order():
    assert staged_columns(("chunk", "doc", "rules")) == (
        "rules_exec", "doc", "doc_exec", "chunks", "chunk_program", "chunk_exec"
    )
    assert staged_columns(("doc",)) == ("doc", "doc_exec")
    with pytest.raises(ValueError, match="paragraph"):
        staged_columns(("doc", "paragraph"))


def test_run_stages_agrees_with_refine_batch(models, texts):
    """Each document's last stage result is what ``refine_batch`` (``prox-spark clean``) decides."""
    doc_model, chunk_model = models
    columns = run_stages(texts, ("doc", "chunk"), SETTINGS, doc_model=doc_model, chunk_model=chunk_model)
    documents, _ = refine_batch(list(range(len(texts))), texts, doc_model, chunk_model, SETTINGS)
    doc_exec, chunk_exec = columns["doc_exec"], columns["chunk_exec"]
    assert doc_exec["kept"].any() and (~doc_exec["kept"]).any()  # both paths are exercised
    for i, row in documents.iterrows():
        final = chunk_exec.iloc[i] if doc_exec["kept"].iloc[i] else doc_exec.iloc[i]
        assert (final["text"], bool(final["kept"])) == (row["text"], bool(row["kept"]))
        assert columns["doc"]["program"].iloc[i] == row["doc_program"]
        if doc_exec["kept"].iloc[i]:
            assert columns["chunk_program"].iloc[i] == row["chunk_program"]
        else:  # a dropped document reaches the chunk stage as "": no chunk, no model call
            assert columns["chunks"].iloc[i] == [] and columns["chunk_program"].iloc[i] == ""
    assert columns["doc"]["prompt_tokens"].iloc[-2:].tolist() == [0, 0]  # blank and missing: no model call


def test_rules_stage_feeds_the_doc_stage_what_it_kept(models, texts):
    doc_model, _ = models
    columns = run_stages(texts, ("rules", "doc"), SETTINGS, rules_preset="gopher", doc_model=doc_model)
    rules, doc = columns["rules_exec"], columns["doc"]
    assert (~rules["kept"]).any()
    assert (doc["prompt_tokens"][~rules["kept"]] == 0).all()
    assert (doc["prompt_tokens"][rules["kept"]] > 0).all()


@pytest.mark.spark
def test_spark_pass_equals_the_core_in_one_python_node(spark, models, texts):
    """Three Arrow batches in one task give the rows the core gives on the same three batches (greedy
    decoding is deterministic per batch), and the plan has a single Python node: the stages no longer
    cross the JVM/Python boundary once each."""
    from udfs.staged import stage_documents
    from udfs.stages import ModelSettings

    rows = [(f"d{i}", text, i) for i, text in enumerate(texts)]
    docs = spark.createDataFrame(rows, "doc_id string, text string, record_index long").coalesce(1)
    stages = ("rules", "doc", "chunk")
    staged = stage_documents(
        docs, stages, SETTINGS, rules_preset="c4",
        doc_model=ModelSettings(str(MODELS / "doc"), provider="cpu"),
        chunk_model=ModelSettings(str(MODELS / "chunk"), provider="cpu"),
    )
    plan = staged._jdf.queryExecution().executedPlan().toString()
    assert plan.count("MapInArrow") == 1 and "ArrowEvalPython" not in plan, plan
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "5")
    try:
        got = sorted(staged.collect(), key=lambda row: row.record_index)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert got[0].__fields__ == ["doc_id", "text", "record_index", *staged_columns(stages)]
    assert [row.text for row in got] == texts  # the document's own columns pass through untouched
    doc_model, chunk_model = models
    for first in range(0, len(texts), 5):
        want = run_stages(texts[first : first + 5], stages, SETTINGS, rules_preset="c4", doc_model=doc_model,
                          chunk_model=chunk_model)
        batch = got[first : first + 5]
        for name, column in want.items():
            values = column.to_dict("records") if isinstance(column, pd.DataFrame) else column.tolist()
            spark_values = [row[name].asDict(recursive=True) if hasattr(row[name], "asDict") else row[name]
                            for row in batch]
            if name == "chunks":
                spark_values = [[chunk.asDict() for chunk in chunks] for chunks in spark_values]
            assert _comparable(spark_values) == _comparable(values), name


def _comparable(value):
    """Timings left out (they differ run to run), NaN as None (pandas' missing number)."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k != "latency_ms"}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def test_spark_types_name_every_field_of_the_stage_records():
    from dataclasses import fields

    from prox_spark.pipeline.stages import ChunkProgram, DocProgram
    from udfs.stages import CHUNK_PROGRAMS_TYPE, DOC_PROGRAM_TYPE

    assert DOC_PROGRAM_TYPE.fieldNames() == [f.name for f in fields(DocProgram)]
    assert CHUNK_PROGRAMS_TYPE.elementType.fieldNames() == [f.name for f in fields(ChunkProgram)]
