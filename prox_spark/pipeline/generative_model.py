"""A generative refining model ready to serve: verified ONNX session, greedy decoder, tokenizer and prompt format
(what the ``generative`` model kind loads, ``prox_spark.pipeline.model_kinds.generative``).

Workers build this once per process: ``StageModel.load`` keeps each model (session, decoder, tokenizer) under
the session's key (``prox_spark.inference.session.SessionKey``) plus the decoder's settings, so every batch and
task of a Python worker with the same settings gets the same object. Only onnxruntime, numpy and ``tokenizers``
are needed, no torch or transformers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from prox_spark.inference import GreedyDecoder, LoadedModel, Manifest, ModelLoadError
from prox_spark.inference.session import SessionKey, cached_model, session_key
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
