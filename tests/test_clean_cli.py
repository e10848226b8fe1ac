"""``prox-spark clean`` as a user runs it: JSONL in, one JSONL record out per input line, bad lines reported.

Run in a fresh interpreter with the committed default models (ProX mode) and with the rule baseline
(``pipeline.mode=rules``, which must not need a model at all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl"
BAD_LINES = [
    "{not json",
    json.dumps({"id": "blank", "text": "   "}),
    json.dumps({"id": "no-text"}),
    json.dumps({"id": "number", "text": 42}),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """Six bundled sample pages with the bad lines between them; returns (path, good ids)."""
    pages = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:6]]
    lines = []
    for page, bad in zip(pages, BAD_LINES + [None, None]):
        lines.append(json.dumps({"id": page["id"], "text": page["text"]}))
        if bad:
            lines.append(bad)
    path = tmp_path_factory.mktemp("clean-cli") / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [page["id"] for page in pages]


def _clean(*args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "prox_spark.cli", "clean", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    return done, [json.loads(line) for line in done.stdout.splitlines()]


def _assert_every_line_accounted_for(records: list[dict], good_ids: list[str]) -> None:
    assert len(records) == len(good_ids) + len(BAD_LINES)
    assert [r["id"] for r in records if r["id"] is not None] == good_ids  # input order kept
    quarantined = [r for r in records if r["id"] is None]
    assert len(quarantined) == len(BAD_LINES) and all(r["reason"] and not r["kept"] for r in quarantined)
    for record in records:
        assert record["kept"] == (record["reason"] is None)
        assert record["kept"] or record["text"] == ""


@pytest.mark.slow
def test_clean_with_the_default_models(corpus):
    path, good_ids = corpus
    done, records = _clean("--input", str(path), "--output", "-", "--conf", "conf/local.yaml")
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_every_line_accounted_for(records, good_ids)
    documents = [r for r in records if r["id"] is not None]
    assert all(r["doc_program"] in ("keep_doc()", "drop_doc()") and r["rules_program"] is None for r in documents)
    for r in documents:  # only documents the doc stage kept reach the chunk model
        assert (r["chunk_program"] is not None) == (r["doc_program"] == "keep_doc()")
        assert r["drop_stage"] in (None, "doc", "chunk")
    kept = sum(r["kept"] for r in records)
    assert f"{len(records)} records: {kept} kept" in done.stderr


def test_clean_rules_mode_needs_no_model(corpus, tmp_path):
    path, good_ids = corpus
    out = tmp_path / "out.jsonl"
    done, _ = _clean("--input", str(path), "--output", str(out), "pipeline.mode=rules",
                     "models.doc.path=/nonexistent", "models.chunk.path=/nonexistent")
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    _assert_every_line_accounted_for(records, good_ids)
    documents = [r for r in records if r["id"] is not None]
    assert all(r["rules_program"] and r["doc_program"] is None and r["chunk_program"] is None for r in documents)
    assert all(r["drop_stage"] in (None, "rules") for r in documents)
    for r in documents:  # a rule's verdict names the rule; a kept page's rule program is not a drop
        if r["kept"]:
            assert r["rules_program"] != "drop_doc()"
        else:
            assert r["rules_program"] == "drop_doc()" and r["reason"].split("_")[0] in ("gopher", "c4", "fineweb")


def test_clean_names_a_missing_model(corpus, tmp_path):
    path, _ = corpus
    out = str(tmp_path / "o.jsonl")
    done, _ = _clean("--input", str(path), "--output", out, "--conf", "conf/local.yaml", "models.doc.path=/nonexistent/doc")
    assert done.returncode == 2 and "/nonexistent/doc" in done.stderr
    done, _ = _clean("--input", str(path), "--output", out, "models.doc.path=no/such/doc")  # relative: tried twice
    assert done.returncode == 2 and "models.doc.path: 'no/such/doc' not found (tried " in done.stderr
