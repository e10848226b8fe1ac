"""The chunk-range guard (``models.clip_chunk_programs``): hand-made programs, then the pipeline paths
that use it (``refine_batch`` as ``prox-spark clean`` runs it, and the Spark refine job) with the
committed default models on real pages."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.inference import load_manifest
from prox_spark.inference.manifest import write_manifest
from prox_spark.pipeline import RefineSettings, StageModel, clip_to_chunk, refine_batch, settings_of
from prox_spark.programs import execute

MODELS = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "models"
TEXT = "\n".join(f"line {i} of the page with some words" for i in range(30))


@pytest.mark.parametrize(
    ("program", "clipped", "ops"),
    [
        ("remove_lines(line_start=12, line_end=14)", "remove_lines(line_start=12, line_end=14)", 0),
        ("remove_lines(line_start=5, line_end=12)", "remove_lines(line_start=10, line_end=12)", 1),
        ("remove_lines(line_start=18, line_end=40)", "remove_lines(line_start=18, line_end=19)", 1),
        ("remove_lines(line_start=0, line_end=3)", "", 1),
        ("remove_lines(line_start=25, line_end=29)", "", 1),
        ("remove_lines(all=True)", "remove_lines(line_start=10, line_end=19)", 1),
        ("keep_chunk()", "keep_chunk()", 0),
        ('normalize(source_str="line 3", target_str="")', 'normalize(source_str="line 3", target_str="")', 0),
        # unreadable lines stay as they are, so the executor still counts them
        ("remove_lines(3, 4)\nfoo(", "remove_lines(3, 4)\nfoo(", 0),
        # a reversed range removes nothing in the reference; left alone
        ("remove_lines(line_start=15, line_end=12)", "remove_lines(line_start=15, line_end=12)", 0),
        (
            "remove_lines(line_start=2, line_end=11)\nkeep_chunk()\nremove_lines(line_start=19, line_end=21)",
            "remove_lines(line_start=10, line_end=11)\nkeep_chunk()\nremove_lines(line_start=19, line_end=19)",
            2,
        ),
    ],
)
def test_clip_to_chunk_by_hand(program, clipped, ops):
    result = clip_to_chunk(program, 10, 19)
    assert (result.program, result.clipped_ops) == (clipped, ops)


def test_clipped_program_removes_only_chunk_lines():
    """Executed, the clipped program of chunk 10..19 leaves every line outside the chunk in place."""
    program = "remove_lines(line_start=0, line_end=12)\nremove_lines(line_start=17, line_end=99)"
    raw = execute(TEXT, program, stage="chunk", dialect="reference")
    guarded = execute(TEXT, clip_to_chunk(program, 10, 19).program, stage="chunk", dialect="reference")
    lines = TEXT.split("\n")
    assert raw.errors == 1  # line_end 99 is past the document's end
    assert guarded.errors == 0
    assert guarded.text.split("\n") == lines[:10] + lines[13:17] + lines[20:]


def test_clip_never_evaluates_model_output(monkeypatch):
    import builtins

    def refuse(*_args, **_kwargs):
        raise AssertionError("model output was evaluated")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    hostile = "remove_lines(line_start=__import__('os').getpid(), line_end=3)\nremove_lines(line_start=1, line_end=50)"
    result = clip_to_chunk(hostile, 10, 19)
    assert result.program.splitlines()[0].startswith("remove_lines(line_start=__import__")
    assert result.program.splitlines()[1] == "remove_lines(line_start=10, line_end=19)"


#: conf/local.yaml serving the bundled tiny generative chunk model as it was trained (128-token chunks, guarded)
GENERATIVE_CHUNK = ["models.chunk.kind=generative", f"models.chunk.path={MODELS / 'chunk'}",
                    "models.max_chunk_tokens=128", "models.clip_chunk_programs=true"]


def test_config_key_and_local_default():
    # the reference behaviour for any chunk model a config names (no path and kind generative: the bundled
    # tiny one, served guarded)
    assert load_config(None, ["models.chunk.path=/models/chunk"]).models.clip_chunk_programs is False
    assert load_config(None, ["models.chunk.kind=generative"]).models.clip_chunk_programs is True
    local = Path(__file__).resolve().parents[1] / "conf" / "local.yaml"
    assert load_config(local, []).models.chunk.kind == "lines"  # the line refiner reads whole pages: no chunks to guard
    assert settings_of(load_config(local, GENERATIVE_CHUNK)).clip_chunk_programs is True
    assert load_config(None, ["models.clip_chunk_programs=true"]).models.clip_chunk_programs is True


@pytest.fixture(scope="module")
def keep_all_doc_model(tmp_path_factory):
    """The default doc model with its keep threshold lowered so far that it keeps every page: these tests
    are about the chunk programs, which must not depend on what the doc model decides."""
    target = shutil.copytree(MODELS / "doc", tmp_path_factory.mktemp("doc") / "keep_all")
    write_manifest(target, dataclasses.replace(load_manifest(target), doc_keep_threshold=-1e9))
    return target


@pytest.fixture(scope="module")
def pages(shared_data):
    with gzip.open(shared_data / "cleaning" / "trafilatura_eval_segments.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(12), f)]


def _removed_by_chunk(programs):
    """(chunk row, document line numbers its applied remove_lines ops removed)."""
    for row in programs[programs.stage == "chunk"].itertuples(index=False):
        removed = set()
        for op in row.ops:
            if op["op"] == "remove_lines" and op["status"] == "applied":
                removed.update(range(int(op["start"]), int(op["end"]) + 1))
        yield row, removed


def test_refine_batch_clips_to_the_chunk_and_records_it(pages, keep_all_doc_model):
    """The path ``prox-spark clean`` and the notebooks use, with the default chunk model on real pages."""
    doc = StageModel.load(keep_all_doc_model, provider="cpu")
    chunk = StageModel.load(MODELS / "chunk", provider="cpu")
    ids, texts = [p["id"] for p in pages], [p["noisy_text"] for p in pages]
    _, plain = refine_batch(ids, texts, {"doc": doc, "chunk": chunk}, RefineSettings(max_chunk_tokens=128))
    _, guarded = refine_batch(ids, texts, {"doc": doc, "chunk": chunk}, RefineSettings(max_chunk_tokens=128, clip_chunk_programs=True))
    plain_chunks = plain[plain.stage == "chunk"].reset_index(drop=True)
    guarded_chunks = guarded[guarded.stage == "chunk"].reset_index(drop=True)
    assert len(plain_chunks) == len(guarded_chunks) > 0
    assert plain["clipped_ops"].sum() == 0 and plain["model_program"].isna().all()
    assert guarded_chunks["clipped_ops"].sum() > 0  # the tiny model does stray outside its chunk
    for before, after in zip(plain_chunks.itertuples(index=False), guarded_chunks.itertuples(index=False)):
        if after.clipped_ops:
            assert after.model_program == before.program
            first, last = int(after.first_line), int(after.last_line)
            assert after.program == clip_to_chunk(before.program, first, last).program
        else:
            assert after.model_program is None and after.program == before.program
    for row, removed in _removed_by_chunk(guarded):
        assert all(row.first_line <= n <= row.last_line for n in removed), (row.program, removed)


@pytest.mark.spark
def test_refine_job_clips_and_writes_the_programs_table(spark, pages, keep_all_doc_model, tmp_path):
    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.udfs.tables import PROGRAMS, read_table

    corpus = tmp_path / "pages.jsonl"
    corpus.write_text("".join(json.dumps({"id": p["id"], "text": p["noisy_text"]}) + "\n" for p in pages[:4]))
    config = load_config(
        Path(__file__).resolve().parents[1] / "conf" / "local.yaml",
        [f"input.path={corpus}", f"output.path={tmp_path / 'out'}", "run_id=guard", "input.partitions=1",
         f"models.doc.path={keep_all_doc_model}", *GENERATIVE_CHUNK],
    )
    assert config.models.clip_chunk_programs
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced
    programs = read_table(spark, config.output, PROGRAMS).toPandas()
    chunks = programs[programs.stage == "chunk"]
    assert len(chunks) > 0
    for row, removed in _removed_by_chunk(programs):
        assert all(row.first_line <= n <= row.last_line for n in removed), (row.program, removed)
    clipped = chunks[chunks.clipped_ops > 0]
    for row in clipped.itertuples(index=False):
        assert row.program == clip_to_chunk(row.model_program, int(row.first_line), int(row.last_line)).program
    assert (programs[programs.stage == "doc"].clipped_ops == 0).all()
