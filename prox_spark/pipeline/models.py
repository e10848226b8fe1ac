"""A refining model ready to serve: verified ONNX session, greedy decoder, tokenizer and prompt format;
or, for the chunk stage, a line refiner (``prox_spark.lines``). ``load_stage_model`` picks by kind.

Workers build this once per process: ``StageModel.load`` keeps each model (session, decoder, tokenizer) under
the session's key (``prox_spark.inference.session.SessionKey``) plus the decoder's settings, so every batch and
task of a Python worker with the same settings gets the same object. Only onnxruntime, numpy and ``tokenizers``
are needed, no torch or transformers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union, get_args

from tokenizers import Tokenizer

from prox_spark.inference import GreedyDecoder, LoadedModel, Manifest, ModelLoadError, verify_model_dir
from prox_spark.inference.session import SessionKey, cached_model, session_key
from prox_spark.lines.manifest import LINE_MANIFEST_NAME, is_line_model_dir
from prox_spark.lines.refiner import LineRefiner, verify_line_model_dir
from prox_spark.prompts import Kind, encode_prompt, encode_text, prompt_format


@dataclass(frozen=True)
class StageModel:
    """Everything a stage needs to turn document text into program text."""

    loaded: LoadedModel
    decoder: GreedyDecoder
    tokenizer: Tokenizer

    @property
    def manifest(self) -> Manifest:
        return self.loaded.manifest

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        provider: str = "auto",
        intra_op_threads: int = 0,
        concurrent_tasks: int = 1,
        device_id: int = 0,
        prefill_tokens: int | None = None,
    ) -> StageModel:
        """This process's model for ``model_dir``: session, decoder and tokenizer are built on the first call and
        every later call with the same settings returns the same object (a Spark worker builds them once, not
        once per Arrow batch or task). Raises ``ModelLoadError`` on any problem.

        ``device_id``: the CUDA device when the session runs on CUDA (ignored on CPU);
        ``prefill_tokens``: the decoder's prefill pass size (``GreedyDecoder``; None: by device)."""
        key = session_key(
            model_dir, provider=provider, intra_op_threads=intra_op_threads, concurrent_tasks=concurrent_tasks,
            device_id=device_id,
        )
        model = _cached_stage_model(key, prefill_tokens)
        try:
            prompt_format(model.manifest.prompt_template, model.manifest.kind)
        except ValueError as exc:
            raise ModelLoadError(f"{model_dir}: {exc}") from None
        return model

    def encode_prompt(self, kind: Kind, text: str) -> list[int]:
        """Prompt ids as the model was trained on, cut to the manifest's prompt limit."""
        return encode_prompt(
            self.manifest.prompt_template, kind, text, self.tokenizer, max_tokens=self.manifest.max_prompt_tokens
        )

    def encode_continuation(self, text: str) -> list[int]:
        """Ids of ``text`` as it follows a prompt (no special tokens): for choice scoring."""
        return encode_text(self.tokenizer, text, add_special_tokens=False)

    def count_tokens(self, line: str) -> int:
        """Token cost of one numbered line for chunk packing (with BOS, the reference's way)."""
        return len(self.tokenizer.encode(line, add_special_tokens=True).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


#: one per session (``SessionKey``) and prefill size, as many as the session cache keeps
@functools.lru_cache(maxsize=16)
def _cached_stage_model(key: SessionKey, prefill_tokens: int | None) -> StageModel:
    loaded = cached_model(key)
    manifest = loaded.manifest
    tokenizer = _tokenizer(str(Path(loaded.model_dir) / manifest.tokenizer_file), manifest.checksum)
    return StageModel(loaded, GreedyDecoder.from_model(loaded, prefill_tokens), tokenizer)


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str, _checksum: str) -> Tokenizer:
    return Tokenizer.from_file(path)


#: how a stage's model writes programs: a decoder generating them, or the line refiner deciding lines
ModelKind = Literal["generative", "lines"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)
#: what the chunk stage can run
ChunkModel = Union[StageModel, LineRefiner]


def load_stage_model(
    model_dir: str | Path,
    kind: ModelKind = "generative",
    *,
    provider: str = "auto",
    intra_op_threads: int = 0,
    concurrent_tasks: int = 1,
    device_id: int = 0,
    prefill_tokens: int | None = None,
) -> ChunkModel:
    """This process's model for a stage, of the configured ``kind``; ``ModelLoadError`` on any problem
    (including a directory that holds the other kind)."""
    common = dict(provider=provider, intra_op_threads=intra_op_threads, concurrent_tasks=concurrent_tasks, device_id=device_id)
    if kind == "lines":
        return LineRefiner.load(model_dir, **common)
    if kind != "generative":
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    _refuse_line_refiner(model_dir, "<stage>")
    return StageModel.load(model_dir, prefill_tokens=prefill_tokens, **common)


def verify_stage_model(model_dir: str | Path, kind: ModelKind, stage: str) -> tuple[str, str]:
    """Driver-side check before any Spark stage: the directory holds a working ``kind`` model for ``stage``.
    Returns its (model id, checksum)."""
    if kind == "lines":
        line_manifest = verify_line_model_dir(model_dir)
        found_stage, model_id, checksum = line_manifest.stage, line_manifest.model_id, line_manifest.checksum
    else:
        _refuse_line_refiner(model_dir, stage)
        manifest = verify_model_dir(model_dir)
        found_stage, model_id, checksum = manifest.kind, manifest.model_id, manifest.checksum
    if found_stage != stage:
        raise ModelLoadError(f"{model_dir} holds a {found_stage}-stage model")
    return model_id, checksum


def _refuse_line_refiner(model_dir: str | Path, stage: str) -> None:
    """A generative stage pointed at a line refiner fails naming the key to change."""
    if is_line_model_dir(model_dir):
        raise ModelLoadError(f"{model_dir}: holds a line refiner ({LINE_MANIFEST_NAME}): set models.{stage}.kind: lines")
