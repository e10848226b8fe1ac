"""The doc stage's calibrated keep threshold: calibration by hand, the manifest field (old manifests read
as 0.0), and score mode honouring it on a real exported model."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from prox_spark.inference import load_manifest
from prox_spark.inference.manifest import MANIFEST_NAME, write_manifest
from prox_spark.pipeline import StageModel, write_doc_programs
from prox_spark.pipeline.model_stages import doc_keep_margins
from prox_spark.training.refiner_metrics import calibrate_keep_threshold


def test_calibration_by_hand():
    margins = [-3.0, -2.0, -1.0, 0.5, 1.0, 2.0]
    gold = [False, False, True, True, True, True]
    result = calibrate_keep_threshold(margins, gold)
    assert result["threshold"] == pytest.approx(-1.5)  # midway between -2 and -1: every doc right
    assert result["validation_f1"] == pytest.approx(1.0)
    assert result["validation_f1_at_zero"] == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert result["validation_keep_rate"] == pytest.approx(4 / 6)


def test_calibration_prefers_the_threshold_nearest_zero_on_ties():
    # keeping all (threshold -4) and keeping only the 3.0 (threshold 2.5) both give F1 2/3
    result = calibrate_keep_threshold([-3.0, -2.0, 2.0, 3.0], [True, False, False, True])
    assert result["threshold"] == pytest.approx(2.5)
    assert result["validation_f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        calibrate_keep_threshold([], [])


def _with_threshold(source, target, threshold: float):
    shutil.copytree(source, target)
    write_manifest(target, dataclasses.replace(load_manifest(target), doc_keep_threshold=threshold))
    return target


def test_manifest_without_threshold_reads_zero(untrained_models, tmp_path):
    model_dir = shutil.copytree(untrained_models["doc"], tmp_path / "old")
    raw = json.loads((model_dir / MANIFEST_NAME).read_text())
    raw.pop("doc_keep_threshold", None)
    (model_dir / MANIFEST_NAME).write_text(json.dumps(raw))
    assert load_manifest(model_dir).doc_keep_threshold == 0.0
    raw["doc_keep_threshold"] = "high"
    (model_dir / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(Exception, match="doc_keep_threshold"):
        load_manifest(model_dir)


def test_score_mode_keeps_at_or_above_the_manifest_threshold(untrained_models, tmp_path):
    texts = ["A page about cooking rice with some words.", "Buy now!!! cheap cheap", "Another short note on trains."]
    base = StageModel.load(untrained_models["doc"], provider="cpu")
    margins = doc_keep_margins(base, texts)
    middle = sorted(margins)[1]
    for threshold, expected in [
        (min(margins) - 1.0, ["keep_doc()"] * 3),
        (max(margins) + 1.0, ["drop_doc()"] * 3),
        (middle, ["keep_doc()" if m >= middle else "drop_doc()" for m in margins]),
    ]:
        model_dir = _with_threshold(untrained_models["doc"], tmp_path / f"t{threshold:+.4f}", threshold)
        model = StageModel.load(model_dir, provider="cpu")
        assert [p.program for p in write_doc_programs(model, texts, mode="score")] == expected
    # threshold 0.0 is the plain argmax of the two choices
    assert [p.program for p in write_doc_programs(base, texts, mode="score")] == base.decoder.score_choices(
        [base.encode_prompt("doc", t) for t in texts],
        {c: base.encode_continuation(c) for c in ("keep_doc()", "drop_doc()")},
    )
