"""``prox_line_model.json``: what an exported line-refiner directory holds, checked before use.

A line refiner is not a decoder (no tokenizer, no prompt, no KV cache), so it has its own manifest, in
its own file: a directory is a generative model (``prox_model.json``) or a line model, never both, and
pointing ``models.chunk.kind`` at the wrong one fails with a message naming both. Like the generative
manifest it is written last by the export and lists every file with its sha256.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prox_spark.inference.manifest import MANIFEST_NAME, MODEL_FILE, ModelLoadError, check_files, files_checksum

LINE_MANIFEST_NAME = "prox_line_model.json"
LINE_FORMAT_VERSION = 1
#: graph inputs and output of every line refiner
INPUTS = ("dense", "tokens", "mask")
OUTPUT = "keep_logits"


@dataclass(frozen=True)
class LineManifest:
    model_id: str
    #: the stage whose programs it writes (line refiners write chunk programs)
    stage: str
    #: ``prox_spark.lines.features.FEATURE_VERSION`` the graph was trained on
    feature_version: int
    #: token hash buckets (the embedding's rows)
    buckets: int
    n_dense: int
    #: a non-blank line is kept when its keep probability reaches this (chosen on validation pages)
    keep_threshold: float
    opset: int
    files: dict[str, str]
    versions: dict[str, str]
    created_at: str
    format_version: int = LINE_FORMAT_VERSION
    #: ... and this share of the page's best line's probability (``line_decisions``; chosen on validation
    #: pages with the threshold; 0 in manifests written before it existed)
    relative_threshold: float = 0.0

    @property
    def checksum(self) -> str:
        return files_checksum(self.files)


_TYPES: dict[str, type] = {
    "model_id": str, "stage": str, "feature_version": int, "buckets": int, "n_dense": int,
    "keep_threshold": float, "opset": int, "files": dict, "versions": dict, "created_at": str, "format_version": int,
    "relative_threshold": float,
}
#: fields a manifest may leave out (written before they existed), with the value that means "as before"
_OPTIONAL_DEFAULTS: dict[str, Any] = {"relative_threshold": 0.0}


def write_line_manifest(model_dir: str | Path, manifest: LineManifest) -> Path:
    path = Path(model_dir) / LINE_MANIFEST_NAME
    path.write_text(json.dumps(dataclasses.asdict(manifest), indent=2, sort_keys=True) + "\n")
    return path


def is_line_model_dir(model_dir: str | Path) -> bool:
    return (Path(model_dir) / LINE_MANIFEST_NAME).is_file()


def load_line_manifest(model_dir: str | Path, *, check_files_too: bool = True) -> LineManifest:
    """Read and type-check the manifest, and (``check_files_too``) the sha256 of every listed file; a
    generative model directory is named as such."""
    model_dir = Path(model_dir)
    path = model_dir / LINE_MANIFEST_NAME
    if not path.is_file():
        other = " (it holds a generative model: set models.<stage>.kind: generative)" if (model_dir / MANIFEST_NAME).is_file() else ""
        raise ModelLoadError(f"{path}: line-model manifest not found{other}")
    try:
        raw: Any = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: manifest is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: manifest must be a JSON object")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise ModelLoadError(f"{path}: unknown manifest field(s): {', '.join(unknown)}")
    for name, default in _OPTIONAL_DEFAULTS.items():
        raw.setdefault(name, default)
    for name, expected in _TYPES.items():
        value = raw.get(name)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            raw[name] = value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ModelLoadError(f"{path}: manifest field {name!r}: expected {expected.__name__}, got {value!r}")
    if raw["format_version"] != LINE_FORMAT_VERSION:
        raise ModelLoadError(f"{path}: format_version {raw['format_version']} is not supported (this prox-spark reads {LINE_FORMAT_VERSION})")
    if MODEL_FILE not in raw["files"]:
        raise ModelLoadError(f"{path}: manifest 'files' does not list {MODEL_FILE}")
    manifest = LineManifest(**raw)
    if check_files_too:
        check_files(model_dir, manifest)  # type: ignore[arg-type]
    return manifest
