"""Model stages on Spark: their column types, and how a worker loads a stage's model for its task.

Each Python worker loads a model once (``StageModel.load`` caches the onnxruntime session per process);
``udfs.staged`` hands it whole Arrow batches through ``prox_spark.pipeline``, which batches prompts by
length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyspark import TaskContext
from pyspark.sql import types as T

from prox_spark.inference import cuda_device_id
from prox_spark.pipeline import ChunkModel, load_stage_model

DOC_PROGRAM_TYPE = T.StructType(
    [
        T.StructField("program", T.StringType()),
        T.StructField("prompt_tokens", T.LongType()),
        T.StructField("latency_ms", T.DoubleType()),
        T.StructField("truncated", T.BooleanType()),
        # main-text guard (models.doc_guard_words): the model's drop_doc() when the guard kept the page
        T.StructField("model_program", T.StringType()),
    ]
)

CHUNK_PROGRAMS_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("chunk_index", T.LongType()),
            T.StructField("first_line", T.LongType()),
            T.StructField("last_line", T.LongType()),
            T.StructField("program", T.StringType()),
            T.StructField("prompt_tokens", T.LongType()),
            T.StructField("latency_ms", T.DoubleType()),
            T.StructField("oversize", T.BooleanType()),
            T.StructField("truncated", T.BooleanType()),
            # where this chunk's program lines start in the document's merged program
            T.StructField("program_line_offset", T.LongType()),
            T.StructField("program_lines", T.LongType()),
            # chunk-range guard (models.clip_chunk_programs): ops it clipped, and the model's own text
            T.StructField("clipped_ops", T.LongType()),
            T.StructField("model_program", T.StringType()),
        ]
    )
)


@dataclass(frozen=True)
class ModelSettings:
    """What a worker needs to load one stage's model (picklable, shipped with the task); how the model
    runs (batch sizes, token limits) is ``prox_spark.pipeline.RefineSettings``."""

    model_dir: str
    provider: str = "auto"
    intra_op_threads: int = 0
    concurrent_tasks: int = 1
    prefill_tokens: int | None = None  # models.<stage>.prefill_tokens
    kind: str = "generative"  # models.<stage>.kind

    def load(self) -> ChunkModel:
        """This worker's model, on the GPU Spark assigned to the running task (when it runs on CUDA)."""
        return load_stage_model(
            self.model_dir,
            self.kind,  # type: ignore[arg-type]
            provider=self.provider,
            intra_op_threads=self.intra_op_threads,
            concurrent_tasks=self.concurrent_tasks,
            device_id=task_device_id() if self.provider != "cpu" else 0,
            prefill_tokens=self.prefill_tokens,
        )


def task_device_id() -> int:
    """CUDA device of the running Spark task: its ``gpu`` resource (``spark.task.resource.gpu.amount``),
    0 outside a task or when the cluster schedules no GPUs."""
    context = TaskContext.get()
    if context is None:
        return 0
    resources = {name: info.addresses for name, info in context.resources().items()}
    return cuda_device_id(resources, os.environ.get("CUDA_VISIBLE_DEVICES"))
