"""Smoke test of the inference benchmark: ``python -m benchmarks.inference --quick --json`` runs and reports numbers.

It builds and exports a tiny random model, so it needs the training extras (torch, optimum); it reads the
shared real pages when present and the bundled sample corpus otherwise. About 30-60 s on an idle 2-core
machine; the timeout leaves room for a machine that other jobs are loading.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

REPO_ROOT = Path(__file__).resolve().parents[1]
BACKENDS = {"torch", "ort_fp32", "ort_int8", "ort_fp32_unfused"}


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_inference_benchmark_quick_writes_json(tmp_path):
    out = tmp_path / "inference.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.inference", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "summary (tiny model)" in completed.stdout
    results = json.loads(out.read_text())

    assert results["quick"] is True and results["headline_model"] == "tiny"
    model = results["models"]["tiny"]
    assert _positive(model["roofline"]["ort_matmul_flops"])
    assert _positive(model["info"]["export"]["fp32"]["bytes"]) and _positive(model["info"]["export"]["int8"]["bytes"])

    rows = model["generation"]
    assert {(r["backend"], r["batch"]) for r in rows} == {(b, n) for b in BACKENDS for n in (1, 8, 32)}
    for row in rows:
        for key in ("prefill_s", "total_s", "prefill_tok_s", "prefill_flop_s", "e2e_tok_s"):
            assert _positive(row[key]), (row["backend"], row["batch"], key, row[key])
        # decode is None only when noise swamps a tiny model's few decode steps
        assert row["decode_tok_s"] is None or _positive(row["decode_tok_s"])
    # the exported fp32 graph decodes greedily as transformers generate does (a near-tie may flip a row)
    agreement = [a["ort_fp32_rows_equal_torch"] for a in model["token_agreement"].values()]
    assert sum(agreement) / len(agreement) >= 0.9

    doc = model["doc_stage"]
    assert doc["pages"] > 0 and all(_positive(v) for v in doc["docs_per_s"].values())
    assert doc["generated_decided"] == doc["pages"]  # the steered random model always writes a decision
    assert doc["decisions_identical"] is True
    assert _positive(model["bucketing"]["all_pages"]["ratio"])
    documents = model["bucketing"]["documents"]  # extracted web documents, when the shared set is here
    if documents is not None:
        assert documents["pages"] == 32 and documents["decisions_agree"] == 32 and _positive(documents["ratio"])
        assert documents["padded_tokens"]["unsorted"] >= documents["padded_tokens"]["bucketed"]
    # one decode step's projections alone, per batch: a floor no decoder with these weights beats
    assert set(model["roofline"]["decode_matmul_floor_s"]) == {"1", "8", "32"}
    assert all(_positive(s) for s in model["roofline"]["decode_matmul_floor_s"].values())

    for key in ("int8_vs_fp32_e2e_b8", "int8_vs_fp32_e2e_b32", "bucketed_vs_unsorted", "score_vs_generate",
                "fp32_prefill_roofline_pct_b32"):
        assert _positive(results["ratios"][key]), key
    # a decode ratio exists exactly when its decode speed was measurable (see decode_tok_s above)
    torch_b32 = next(r for r in rows if (r["backend"], r["batch"]) == ("torch", 32))
    assert ("floor_vs_torch_decode_b32" in results["ratios"]) == (torch_b32["decode_tok_s"] is not None)
    if torch_b32["decode_tok_s"] is not None:
        assert _positive(results["ratios"]["floor_vs_torch_decode_b32"])
    assert {t["key"] for t in results["targets"]} >= {"int8_vs_fp32_e2e_b8", "score_vs_generate"}
    assert all(isinstance(t["met"], bool) for t in results["targets"])


FUZZ_DATA = REPO_ROOT.parent / "shared" / "data" / "cleaning" / "trafilatura_eval_segments.jsonl.gz"


@pytest.mark.skipif(not FUZZ_DATA.exists(), reason="the shared cleaning pages are not here")
def test_fuzz_programs_benchmark_runs_clean(tmp_path):
    """``benchmarks/fuzz_programs.py`` with a few hundred mutated programs: no exception, figures written."""
    out = tmp_path / "fuzz.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.fuzz_programs", "--programs", "400", "--docs", "20", "--memory-every", "50",
         "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["programs"] == 400 and results["exceptions"] == []
    assert results["memory_samples"] >= 8
    assert _positive(results["slowest_ms"]) and _positive(results["peak_memory_ratio"])
    assert results["too_large"] > 0  # the growth chains and giant programs do reach the bounds


def test_cleaning_speed_benchmark_prints_every_row():
    """``benchmarks/cleaning_speed.py`` on a few pages: the rule baseline, the default pipeline and its parts."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cleaning_speed", "--pages", "12"], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    if "nothing to measure" in completed.stdout:
        pytest.skip("no shared gold pages")
    for row in ("rules (baseline)", "default: doc model + line refiner", "doc stage", "line features", "line model"):
        assert f"| {row}" in completed.stdout, completed.stdout
