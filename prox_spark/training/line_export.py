"""Export a trained ``LineScorer`` or ``LineEnsemble`` into a line-refiner directory the job loads.

torch's ONNX exporter writes the graph with the page count, line count and tokens-per-line dynamic; the
result is run by onnxruntime against torch on a padded batch of real pages before the manifest is
written (written last, so a directory without it is an unfinished export), and the directory is then
loaded back with ``verify_line_model_dir``, the check the job runs before its first Spark stage.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from prox_spark.inference.manifest import MODEL_FILE, ModelLoadError, sha256_file
from prox_spark.lines.features import FEATURE_VERSION, N_DENSE, PageFeatures, pad_pages
from prox_spark.lines.manifest import INPUTS, OUTPUT, LineManifest, write_line_manifest
from prox_spark.lines.refiner import verify_line_model_dir
from prox_spark.training.line_model import LineEnsemble, LineScorer

OPSET = 17
#: largest |torch - onnxruntime| keep-logit difference accepted at export
LOGIT_TOLERANCE = 1e-3


def export_line_model(
    model: LineScorer | LineEnsemble, out_dir: str | Path, *, model_id: str, keep_threshold: float, check_pages: Sequence[PageFeatures],
    relative_threshold: float = 0.0,
) -> LineManifest:
    """Write ``model.onnx`` and ``prox_line_model.json`` into ``out_dir`` (replaced) and verify them."""
    if not check_pages:
        raise ValueError("export needs at least one page to check the graph against torch")
    model = model.eval()
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / MODEL_FILE
        dense, tokens, mask = (torch.from_numpy(a) for a in pad_pages(check_pages[:8]))
        with torch.no_grad():
            torch.onnx.export(
                model, (dense, tokens, mask), str(graph), input_names=list(INPUTS), output_names=[OUTPUT],
                dynamic_axes={"dense": {0: "pages", 1: "lines"}, "tokens": {0: "pages", 1: "lines", 2: "tokens"},
                              "mask": {0: "pages", 1: "lines"}, OUTPUT: {0: "pages", 1: "lines"}},
                opset_version=OPSET, dynamo=False,
            )
            expected = model(dense, tokens, mask).numpy()
        onnx.checker.check_model(str(graph))
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        (actual,) = session.run([OUTPUT], {"dense": dense.numpy(), "tokens": tokens.numpy(), "mask": mask.numpy()})
        valid = mask.numpy() > 0
        worst = float(np.abs(actual - expected)[valid].max())
        if worst > LOGIT_TOLERANCE:
            raise ModelLoadError(f"exported graph differs from torch by {worst:.2e} in keep logits (tolerance {LOGIT_TOLERANCE})")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        shutil.copy(graph, out_dir / MODEL_FILE)
    manifest = LineManifest(
        model_id=model_id, stage="chunk", feature_version=FEATURE_VERSION, buckets=model.shape.buckets,
        n_dense=N_DENSE, keep_threshold=float(keep_threshold), relative_threshold=float(relative_threshold), opset=OPSET,
        files={MODEL_FILE: sha256_file(out_dir / MODEL_FILE)}, versions=_versions(),
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    )
    write_line_manifest(out_dir, manifest)
    return verify_line_model_dir(out_dir)


def _versions() -> dict[str, str]:
    out = {}
    for package in ("prox-spark", "torch", "onnx", "onnxruntime"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out
