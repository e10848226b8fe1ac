"""A line refiner ready to serve: a verified onnxruntime session over the exported ``LineScorer`` graph.

Workers load it once per process (the session is cached like the generative models' sessions: same
providers, thread sizing and CUDA device rules, ``prox_spark.inference.session``). Pages are scored in
batches of similar line counts, padded and masked, so a page's scores do not depend on its batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from prox_spark.inference.manifest import MODEL_FILE, ModelLoadError
from prox_spark.inference.session import SessionKey, create_session, key_for
from prox_spark.lines.cuts import NO_CUTS, PageCuts
from prox_spark.lines.features import FEATURE_VERSION, N_DENSE, PageFeatures, pad_pages, page_features
from prox_spark.lines.manifest import INPUTS, OUTPUT, LineManifest, load_line_manifest
from prox_spark.lines.render import line_decisions


#: padded lines per onnxruntime call: bounds a batch's memory whatever the pages' lengths, and small batches
#: keep the activations in CPU cache (2048 lines scored 1.8x faster per page than 16384 on dragnet pages)
DEFAULT_BATCH_LINES = 2048


@dataclass(frozen=True)
class LineRefiner:
    session: ort.InferenceSession
    manifest: LineManifest
    model_dir: str
    provider: str

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @classmethod
    def load(
        cls, model_dir: str | Path, *, provider: str = "auto", intra_op_threads: int = 0, concurrent_tasks: int = 1,
        device_id: int = 0,
    ) -> LineRefiner:
        """This process's refiner for ``model_dir`` (checked and opened on first use); ``ModelLoadError``
        names any problem."""
        resolved = str(Path(model_dir).resolve())
        manifest = load_line_manifest(resolved, check_files_too=False)  # the files are checked once, when opened
        return _cached(key_for(resolved, manifest.checksum, provider=provider, intra_op_threads=intra_op_threads,
                               concurrent_tasks=concurrent_tasks, device_id=device_id))

    def keep_scores(self, texts: Sequence[str], batch_lines: int = DEFAULT_BATCH_LINES) -> list[np.ndarray]:
        """Per text, the keep probability of each of its lines (``text.split("\\n")``)."""
        features = [page_features(text, self.manifest.buckets) for text in texts]
        return self.score_features(features, batch_lines)

    def decisions(self, text: str, scores: Sequence[float], *, cuts: PageCuts = NO_CUTS) -> list[bool]:
        """Keep (True) or remove for each line of ``text``, from its ``keep_scores`` and the manifest's
        thresholds, after ``cuts`` (``prox_spark.lines.cuts``)."""
        return line_decisions(
            text.split("\n"), scores, self.manifest.keep_threshold, self.manifest.relative_threshold, cuts=cuts
        )

    def score_features(self, features: Sequence[PageFeatures], batch_lines: int = DEFAULT_BATCH_LINES) -> list[np.ndarray]:
        order = sorted(range(len(features)), key=lambda i: features[i].lines)
        out: list[np.ndarray | None] = [None] * len(features)
        start = 0
        while start < len(order):
            end = start + 1
            # grow the batch while the padded size (rows x longest, the longest being the last) fits
            while end < len(order) and (end - start + 1) * features[order[end]].lines <= batch_lines:
                end += 1
            idx = order[start:end]
            for i, scores in zip(idx, self._run([features[i] for i in idx])):
                out[i] = scores
            start = end
        return out  # type: ignore[return-value]

    def _run(self, pages: Sequence[PageFeatures]) -> list[np.ndarray]:
        dense, tokens, mask = pad_pages(pages)
        (logits,) = self.session.run([OUTPUT], {"dense": dense, "tokens": tokens, "mask": mask})
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return [probs[row, : page.lines] for row, page in enumerate(pages)]


@functools.lru_cache(maxsize=8)
def _cached(key: SessionKey) -> LineRefiner:
    manifest = load_line_manifest(key.model_dir)
    if manifest.checksum != key.checksum:
        raise ModelLoadError(f"{key.model_dir}: manifest changed while loading; retry")
    return open_line_refiner(key.model_dir, manifest, provider=key.provider, intra_op_threads=key.threads,
                             share_cores=key.share_cores, device_id=key.device_id)


def open_line_refiner(
    model_dir: str, manifest: LineManifest, *, provider: str = "auto", intra_op_threads: int = 1,
    share_cores: bool = False, device_id: int = 0,
) -> LineRefiner:
    """Open the graph and check it is a line refiner for this code's features."""
    if manifest.feature_version != FEATURE_VERSION or manifest.n_dense != N_DENSE:
        raise ModelLoadError(
            f"{model_dir}: trained on line features v{manifest.feature_version} ({manifest.n_dense} dense), this "
            f"prox-spark computes v{FEATURE_VERSION} ({N_DENSE}): retrain or use a matching prox-spark"
        )
    path = Path(model_dir) / MODEL_FILE
    session, actual = create_session(
        path, provider=provider, intra_op_threads=intra_op_threads, share_cores=share_cores, device_id=device_id
    )
    names = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if sorted(names) != sorted(INPUTS) or outputs != (OUTPUT,):
        raise ModelLoadError(f"{path}: graph inputs {names} / outputs {outputs} are not a line refiner's {INPUTS} / ({OUTPUT},)")
    return LineRefiner(session, manifest, model_dir, actual)


def verify_line_model_dir(model_dir: str | Path) -> LineManifest:
    """Driver-side check before any Spark stage: manifest, checksums, and a CPU session of the graph."""
    manifest = load_line_manifest(model_dir)
    open_line_refiner(str(model_dir), manifest, provider="cpu", intra_op_threads=1, share_cores=True)
    return manifest
