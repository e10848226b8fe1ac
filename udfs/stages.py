"""Model-stage pandas UDFs: document text → doc program, document text → per-chunk programs.

Each Python worker loads a model once (``StageModel.load`` caches the onnxruntime session per process)
and hands whole Arrow batches to ``prox_spark.pipeline``, which batches prompts by length. Greedy
decoding is deterministic for a given batch, so a retried task recomputes the same programs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import pandas as pd
from pyspark import TaskContext
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from prox_spark.inference import cuda_device_id
from prox_spark.pipeline import StageModel, write_chunk_programs, write_doc_programs

DOC_PROGRAM_TYPE = T.StructType(
    [
        T.StructField("program", T.StringType()),
        T.StructField("prompt_tokens", T.LongType()),
        T.StructField("latency_ms", T.DoubleType()),
        T.StructField("truncated", T.BooleanType()),
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
    """What a worker needs to load and run one stage's model (picklable, shipped with the UDF)."""

    model_dir: str
    provider: str = "auto"
    intra_op_threads: int = 0
    concurrent_tasks: int = 1
    batch_size: int = 16
    max_new_tokens: int | None = None
    #: rows x padded tokens per model batch (None: batch_size alone limits the rows)
    max_batch_tokens: int | None = None

    def load(self) -> StageModel:
        """This worker's model, on the GPU Spark assigned to the running task (when it runs on CUDA)."""
        return StageModel.load(
            self.model_dir,
            provider=self.provider,
            intra_op_threads=self.intra_op_threads,
            concurrent_tasks=self.concurrent_tasks,
            device_id=task_device_id() if self.provider != "cpu" else 0,
        )


def task_device_id() -> int:
    """CUDA device of the running Spark task: its ``gpu`` resource (``spark.task.resource.gpu.amount``),
    0 outside a task or when the cluster schedules no GPUs."""
    context = TaskContext.get()
    if context is None:
        return 0
    resources = {name: info.addresses for name, info in context.resources().items()}
    return cuda_device_id(resources, os.environ.get("CUDA_VISIBLE_DEVICES"))


def make_doc_program_udf(settings: ModelSettings, mode: str = "score"):
    """``text -> DOC_PROGRAM_TYPE``; blank or null text gets an empty program without a model call."""

    def doc_programs(texts: pd.Series) -> pd.DataFrame:
        model = settings.load()
        values = [t if isinstance(t, str) else "" for t in texts.tolist()]
        programs = write_doc_programs(
            model, values, mode=mode, batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens,
            max_batch_tokens=settings.max_batch_tokens,
        )
        return pd.DataFrame.from_records([asdict(p) for p in programs], columns=DOC_PROGRAM_TYPE.fieldNames())

    return pandas_udf(DOC_PROGRAM_TYPE)(doc_programs)


def make_chunk_programs_udf(settings: ModelSettings, max_chunk_tokens: int = 1500, clip: bool = False):
    """``text -> CHUNK_PROGRAMS_TYPE`` in chunk order; blank or null text (a dropped doc) gets ``[]``;
    ``clip``: the chunk-range guard (``prox_spark.pipeline.guard``)."""

    def chunk_programs(texts: pd.Series) -> pd.Series:
        model = settings.load()
        values = [t if isinstance(t, str) else "" for t in texts.tolist()]
        per_doc = write_chunk_programs(
            model, values, max_chunk_tokens=max_chunk_tokens, batch_size=settings.batch_size,
            max_new_tokens=settings.max_new_tokens, clip=clip, max_batch_tokens=settings.max_batch_tokens,
        )
        return pd.Series([[asdict(chunk) for chunk in chunks] for chunks in per_doc], dtype=object)

    return pandas_udf(CHUNK_PROGRAMS_TYPE)(chunk_programs)

