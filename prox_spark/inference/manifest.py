"""``prox_model.json``: what an exported model directory holds, and the checks that it still holds it.

The manifest is written last by the export, so a directory without one is an unfinished export. Every
file the runtime needs (graph, external weights, tokenizer) is listed with its sha256: a half-copied
model on a worker or a tokenizer from another model is caught before any Spark stage, not after a
night of garbage programs. This module needs only the standard library, so the driver and the
workers can read a manifest without torch, optimum or onnx installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MANIFEST_NAME = "prox_model.json"
MODEL_FILE = "model.onnx"
FORMAT_VERSION = 1

Kind = Literal["doc", "chunk"]
Precision = Literal["fp32", "int8", "fp16"]
#: how the graph computes attention: optimum's unfused ops, or onnxruntime's fused GroupQueryAttention
Attention = Literal["unfused", "gqa"]


class ModelLoadError(RuntimeError):
    """A model directory that cannot be used; the message names the directory, the file and the fault."""


@dataclass(frozen=True)
class Manifest:
    """Everything the runtime needs to know about an exported model besides the graph itself."""

    model_id: str
    kind: Kind
    #: file name (inside the model directory) of the tokenizer the model was trained with
    tokenizer_file: str
    #: name of the prompt template in ``prox_spark.prompts`` the model expects
    prompt_template: str
    max_prompt_tokens: int
    max_new_tokens: int
    eos_token_id: int
    pad_token_id: int
    vocab_size: int
    #: default-domain ONNX opset of the graph
    opset: int
    precision: Precision
    #: True when the graph returns logits for the last position only ([batch, 1, vocab])
    last_position_logits: bool
    #: file name -> sha256 hex digest, for every file the runtime reads
    files: dict[str, str]
    #: package name -> version used for the export
    versions: dict[str, str]
    #: ISO 8601 UTC time of the export
    created_at: str
    format_version: int = FORMAT_VERSION
    #: the attention the graph computes; absent in manifests written before fused exports (= "unfused")
    attention: Attention = "unfused"
    #: doc models, score mode: keep when logit(keep_doc) - logit(drop_doc) >= this margin. Calibrated on the
    #: validation split at training time (F1 of keep); absent in older manifests (= 0.0: the argmax)
    doc_keep_threshold: float = 0.0
    #: the graph's position limit (prompt + generated tokens); absent in older manifests (= 0: not recorded,
    #: no cap). Fused graphs fail past it, so the decoder stops generating there.
    max_positions: int = 0

    @property
    def checksum(self) -> str:
        """One digest over all listed files: the identity of this model for caches."""
        return files_checksum(self.files)


def files_checksum(files: dict[str, str]) -> str:
    """One digest over a model directory's file digests (name=sha256, sorted): the model's identity."""
    joined = "\n".join(f"{name}={digest}" for name, digest in sorted(files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()


_SCALAR_TYPES: dict[str, type] = {
    "model_id": str,
    "kind": str,
    "tokenizer_file": str,
    "prompt_template": str,
    "max_prompt_tokens": int,
    "max_new_tokens": int,
    "eos_token_id": int,
    "pad_token_id": int,
    "vocab_size": int,
    "opset": int,
    "precision": str,
    "last_position_logits": bool,
    "created_at": str,
    "format_version": int,
    "attention": str,
    "doc_keep_threshold": float,
    "max_positions": int,
}
_MAPPING_FIELDS = ("files", "versions")
#: fields that older manifests lack, with the value that describes those models
_OPTIONAL_DEFAULTS: dict[str, Any] = {"attention": "unfused", "doc_keep_threshold": 0.0, "max_positions": 0}
_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": ("doc", "chunk"),
    "precision": ("fp32", "int8", "fp16"),
    "attention": ("unfused", "gqa"),
}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks so a 1.4 GB model never sits in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(model_dir: str | Path, manifest: Manifest) -> Path:
    """Write ``prox_model.json`` into ``model_dir`` and return its path."""
    path = Path(model_dir) / MANIFEST_NAME
    path.write_text(json.dumps(dataclasses.asdict(manifest), indent=2, sort_keys=True) + "\n")
    return path


def load_manifest(model_dir: str | Path) -> Manifest:
    """Read and type-check ``prox_model.json``; ``model_dir`` may also be the manifest file itself."""
    path = Path(model_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise ModelLoadError(f"{path}: manifest not found (is this an exported model directory?)")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: manifest is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: manifest must be a JSON object, got {type(raw).__name__}")
    raw = {**_OPTIONAL_DEFAULTS, **raw}
    _check_fields(path, raw)
    return Manifest(**raw)


def _check_fields(path: Path, raw: dict[str, Any]) -> None:
    """Name the first missing, unknown or mistyped field, so a hand-edited manifest fails clearly."""
    known = set(_SCALAR_TYPES) | set(_MAPPING_FIELDS)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ModelLoadError(f"{path}: unknown manifest field(s): {', '.join(unknown)}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: manifest format_version {raw.get('format_version')!r} is not supported "
            f"(this prox-spark reads {FORMAT_VERSION})"
        )
    for name, expected in _SCALAR_TYPES.items():
        if name not in raw:
            raise ModelLoadError(f"{path}: manifest field {name!r} is missing")
        value = raw[name]
        # bool is an int subclass: a `true` where a count belongs is a mistake, not 1.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ModelLoadError(
                f"{path}: manifest field {name!r}: expected {expected.__name__}, got {value!r}"
            )
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ModelLoadError(f"{path}: manifest field {name!r}: expected one of {_CHOICES[name]}, got {value!r}")
    for name in _MAPPING_FIELDS:
        value = raw.get(name)
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ModelLoadError(f"{path}: manifest field {name!r}: expected a mapping of strings, got {value!r}")
    if MODEL_FILE not in raw["files"]:
        raise ModelLoadError(f"{path}: manifest 'files' does not list {MODEL_FILE}")
    if raw["tokenizer_file"] not in raw["files"]:
        raise ModelLoadError(f"{path}: manifest 'files' does not list the tokenizer {raw['tokenizer_file']!r}")


def check_files(model_dir: str | Path, manifest: Manifest) -> None:
    """Every listed file exists and has the recorded sha256."""
    model_dir = Path(model_dir)
    for name, expected in sorted(manifest.files.items()):
        path = model_dir / name
        if not path.is_file():
            raise ModelLoadError(f"{model_dir}: {name} is listed in {MANIFEST_NAME} but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelLoadError(
                f"{model_dir}: checksum mismatch for {name}: manifest says sha256 {expected}, "
                f"file has {actual} (incomplete copy or a different model?)"
            )
