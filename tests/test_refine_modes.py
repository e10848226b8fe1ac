"""``pipeline.mode``: the rule baseline as a refine stage (alone or before ProX) and ProX without the chunk stage.

Core (no Spark): the rules stage's rows describe its edits as programs the executor reproduces. Job (real
Spark + Delta, a handful of real shared documents): each mode writes the same tables, counts balance,
every stage that ran has its program rows, and ``runs.mode`` records the mode.
"""

from __future__ import annotations

import gzip
import io
import json
import typing

import pytest

from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.clean import clean_file, load_models
from prox_spark.config import PIPELINE_STAGES, ConfigError, PipelineConfig, RulesConfig, load_config
from prox_spark.pipeline import refine_batch, settings_of
from prox_spark.programs import execute
from prox_spark.rules import PRESETS, removed_line_ranges, rules_stage_batch

PROSE = [
    "The committee reviewed the proposal in detail and agreed to fund the project for two more years.",
    "Researchers at the station have measured the river's temperature every morning since the spring of 1998.",
    "Their data show that the water warms a little earlier each year, which affects when the fish arrive.",
    "Local farmers say the change is visible in their fields as well, where the first frost now comes later.",
    "A public meeting about the findings will be held in the town library on the first Monday of next month.",
]
# C4 (gopher_c4_fineweb preset) removes the blank line and the short lines, keeps the prose verbatim
EDITED_DOC = "\n".join(["Home", PROSE[0], PROSE[1], "", "Share this", PROSE[2], PROSE[3], PROSE[4], "Menu Login"])


def test_rules_stage_rows_are_programs_the_executor_reproduces():
    frame = rules_stage_batch([EDITED_DOC, "short text", None, 5])
    edited, short, missing, invalid = frame.to_dict("records")
    assert edited["kept"] and edited["outcome"] == "kept"
    assert [(op["op"], op["start"], op["end"]) for op in edited["ops"]] == [
        ("remove_lines", 0, 0), ("remove_lines", 3, 4), ("remove_lines", 8, 8)]
    assert all(op["detail"].startswith("c4: ") for op in edited["ops"])
    assert execute(EDITED_DOC, edited["program"], stage="chunk").text == edited["text"]
    assert (edited["lines_before"], edited["lines_after"]) == (9, 5)
    assert edited["words_after"] == len(edited["text"].split())
    assert (short["kept"], short["program"], short["rule"]) == (False, "drop_doc()", "gopher_quality")
    assert short["reason"] == "gopher_short_doc" and short["text"] == ""
    assert (missing["reason"], invalid["reason"]) == ("empty_text", "invalid_text")


def test_removed_line_ranges():
    assert removed_line_ranges("a\nb\nc\nd", "a\nd") == [(1, 2)]
    assert removed_line_ranges("a\nb", "a\nb") == []
    assert removed_line_ranges("a\nb", "b\na") is None  # not a subsequence: not expressible as removals


def test_modes_and_presets_are_validated_by_name():
    assert set(typing.get_args(typing.get_type_hints(PipelineConfig)["mode"])) == set(PIPELINE_STAGES)
    assert set(typing.get_args(typing.get_type_hints(RulesConfig)["preset"])) == set(PRESETS)
    with pytest.raises(ConfigError, match="pipeline.mode: expected one of"):
        load_config(None, ["pipeline.mode=chunk-only"])
    with pytest.raises(ConfigError, match="rules.preset: expected one of"):
        load_config(None, ["rules.preset=dolma"])
    assert load_config(None, []).pipeline.stages == ("doc", "chunk")  # ProX stays the default


def test_rules_mode_needs_no_model(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "hello"}\n')
    base = [f"input.path={corpus}", f"output.path={tmp_path / 'o'}", "models.doc.path=", "models.chunk.path="]
    checked = preflight(load_config(None, [*base, "pipeline.mode=rules"]))
    assert checked.model_ids == {}
    assert checked.versions["rules"] == "rules:gopher_c4_fineweb"
    with pytest.raises(ConfigError, match="models.doc.path"):
        preflight(load_config(None, [*base, "pipeline.mode=prox-doc", "models.doc.path=no/such/doc"]))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, shared_data):
    """Six noisy real pages, four DCLM documents and one hand-made page the rules keep after removing lines."""
    with gzip.open(shared_data / "cleaning" / "trafilatura_eval_segments.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for _, line in zip(range(6), f)]
    with open(shared_data / "quality" / "dclm_human_labels.jsonl", encoding="utf-8") as f:
        labelled = [json.loads(line) for _, line in zip(range(4), f)]
    rows = [{"id": p["id"], "text": p["noisy_text"]} for p in pages]
    rows += [{"id": f"dclm-{r['id']}", "text": r["text"]} for r in labelled]
    rows.append({"id": "edited", "text": EDITED_DOC})
    path = tmp_path_factory.mktemp("modes") / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(spark, untrained_models, corpus, out, mode):
    config = load_config(None, [
        f"input.path={corpus}", f"output.path={out}", f"run_id=mode-{mode}", f"pipeline.mode={mode}",
        f"models.doc.path={untrained_models['doc']}", f"models.chunk.path={untrained_models['chunk']}",
        "models.provider=cpu", "models.max_chunk_tokens=128",
        # the untrained fixtures have room for 24 new tokens after a full prompt (the default 256 overflows)
        "models.chunk.max_new_tokens=16", "models.doc.max_new_tokens=16",
    ])
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced and summary.records_read == 11
    refined = {r.doc_id: r for r in spark.read.format("delta").load(str(out / "refined")).collect()}
    programs = spark.read.format("delta").load(str(out / "programs")).collect()
    run = spark.read.format("delta").load(str(out / "runs")).first()
    assert run.mode == mode and run.status == "succeeded"
    assert len(refined) == 11
    return config, refined, programs


def _assert_plain_path_agrees(config, corpus, refined, programs):
    """``prox-spark clean`` (``refine_batch`` over ``run_stages``) writes what the job wrote, in every mode."""
    out = io.StringIO()
    stats = clean_file(corpus, out, config)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert stats.records == len(records) == len(refined) and stats.quarantined == 0
    for record in records:
        row = refined[record["id"]]
        assert (record["text"], record["kept"], record["drop_stage"], record["reason"]) == (
            row.text, row.kept, row.drop_stage, row.drop_reason), record["id"]
        assert (record["rules_program"] is not None) == ("rules" in config.pipeline.stages)
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()}
    _, plain = refine_batch(list(texts), list(texts.values()), load_models(config), settings_of(config),
                            stages=config.pipeline.stages, rules_preset=config.rules.preset)

    def key(doc_id, stage, chunk_index, model_id, program, outcome, words_after):
        return (doc_id, stage, None if chunk_index is None or chunk_index != chunk_index else int(chunk_index),
                model_id, program, outcome, int(words_after))

    spark_rows = sorted(
        (key(r.doc_id, r.stage, r.chunk_index, r.model_id, r.program, r.outcome, r.words_after) for r in programs),
        key=repr)
    plain_rows = sorted((key(*r) for r in plain[
        ["doc_id", "stage", "chunk_index", "model_id", "program", "outcome", "words_after"]].itertuples(index=False)),
        key=repr)
    assert plain_rows == spark_rows


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["prox", "rules", "prox-doc", "rules+prox"])
def test_mode_end_to_end(spark, untrained_models, small_corpus, tmp_path, mode):
    config, refined, programs = _run(spark, untrained_models, small_corpus, tmp_path / "out", mode)
    _assert_plain_path_agrees(config, small_corpus, refined, programs)
    by_stage: dict[str, list] = {}
    for row in programs:
        by_stage.setdefault(row.stage, []).append(row)
    assert set(by_stage) <= set(PIPELINE_STAGES[mode])
    for row in refined.values():
        assert row.kept == (row.drop_stage is None) and (row.kept or (row.text == "" and row.drop_reason))
    if "rules" in PIPELINE_STAGES[mode]:
        rules_rows = {r.doc_id: r for r in by_stage["rules"]}
        assert set(rules_rows) == set(refined) and {r.model_id for r in rules_rows.values()} == {"rules:gopher_c4_fineweb"}
        edited = rules_rows["edited"]
        assert edited.outcome == "kept" and [op.start for op in edited.ops] == [0, 3, 8]
        for doc_id, row in rules_rows.items():
            if row.outcome == "dropped":  # dropped by a rule: the reason names it, no later stage ran
                assert refined[doc_id].drop_stage == "rules" and refined[doc_id].drop_reason == row.reason
        reached_doc = {d for d, r in rules_rows.items() if r.outcome == "kept"}
    else:
        reached_doc = set(refined)
    if mode == "rules":
        assert refined["edited"].kept and refined["edited"].lines_after == 5
    else:
        assert {r.doc_id for r in by_stage["doc"]} == reached_doc
        assert "chunk" not in by_stage or "chunk" in PIPELINE_STAGES[mode]
        assert all(r.drop_stage in ("rules", "doc", "chunk") for r in refined.values() if not r.kept)
