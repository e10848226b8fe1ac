"""The generative kind: a decoder writes the programs (the released gair-prox models, the tiny bundled models).

Its model is ``prox_spark.pipeline.generative_model.StageModel`` (ONNX session, greedy decoder, tokenizer, prompt format,
``prox_model.json``); its writers are ``prox_spark.pipeline.model_stages``' (the doc stage: keep/drop per document;
the chunk stage: a program per line-numbered chunk), here given the stage's serving settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prox_spark.inference import MANIFEST_NAME, verify_model_dir
from prox_spark.pipeline.model_kinds.base import BundledModel, ModelKind, Serving
from prox_spark.pipeline.model_stages import ChunkProgram, DocProgram, write_chunk_programs, write_doc_programs
from prox_spark.pipeline.generative_model import StageModel

if TYPE_CHECKING:
    from prox_spark.pipeline.settings import RefineSettings


def doc_programs(model: StageModel, texts: list[str], settings: RefineSettings) -> list[DocProgram]:
    """The doc stage's programs: ``models.doc_mode`` and the doc section's batch and token limits."""
    return write_doc_programs(
        model, texts, mode=settings.doc_mode, batch_size=settings.doc_batch_size,
        max_new_tokens=settings.doc_max_new_tokens, max_batch_tokens=settings.doc_max_batch_tokens,
    )


def chunk_programs(model: StageModel, texts: list[str], settings: RefineSettings) -> list[list[ChunkProgram]]:
    """The chunk stage's programs: per chunk of ``models.max_chunk_tokens``, with the chunk section's batch and
    token limits and the chunk-range guard (``models.clip_chunk_programs``)."""
    return write_chunk_programs(
        model, texts, max_chunk_tokens=settings.max_chunk_tokens, batch_size=settings.chunk_batch_size,
        max_new_tokens=settings.chunk_max_new_tokens, clip=settings.clip_chunk_programs,
        max_batch_tokens=settings.chunk_max_batch_tokens,
    )


class GenerativeKind(ModelKind):
    name = "generative"
    label = "a generative model"
    manifest_name = MANIFEST_NAME
    model_type = StageModel
    writers = {"doc": doc_programs, "chunk": chunk_programs}
    #: the bundled models are tiny: one prefill pass is fastest; the chunk model was trained on 128-token chunks
    #: and needs the chunk-range guard
    bundled = {
        "doc": BundledModel("doc", {"doc": {"prefill_tokens": 0}}),
        "chunk": BundledModel(
            "chunk", {"chunk": {"prefill_tokens": 0}, "max_chunk_tokens": 128, "clip_chunk_programs": True}
        ),
    }

    def load(self, model_dir: str | Path, serving: Serving) -> StageModel:
        return StageModel.load(
            model_dir, provider=serving.provider, intra_op_threads=serving.intra_op_threads,
            concurrent_tasks=serving.concurrent_tasks, device_id=serving.device_id,
            prefill_tokens=serving.prefill_tokens,
        )

    def check(self, model_dir: str | Path) -> tuple[str, str, str]:
        manifest = verify_model_dir(model_dir)
        return manifest.kind, manifest.model_id, manifest.checksum
