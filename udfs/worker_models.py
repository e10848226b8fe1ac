"""How a Spark worker loads a stage's model for its task.

Each Python worker builds a stage's model once: ``StageModelSettings.load`` runs for every Arrow batch, and returns
the model (of its ``models.<stage>.kind``: onnxruntime session, decoder and tokenizer, or the line refiner) the
worker built for the first batch with the same settings, from the per-process caches of
``prox_spark.pipeline.load_stage_model``. ``udfs.stage_pass``
hands it whole Arrow batches through ``prox_spark.pipeline``, which batches prompts by length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from pyspark import TaskContext

from prox_spark.config import ModelConfig
from prox_spark.inference import cuda_device_id
from prox_spark.pipeline import ServedModel, Serving, load_stage_model


@dataclass(frozen=True)
class StageModelSettings:
    """What a worker needs to load one stage's model (picklable, shipped with the task): its folder, its kind
    (``models.<stage>.kind``) and how it is served (``prox_spark.pipeline.serving_of``; the task's CUDA device is
    the worker's to add); how the model runs (batch sizes, token limits) is ``prox_spark.pipeline.RefineSettings``."""

    model_dir: str
    kind: str = ModelConfig.kind
    serving: Serving = Serving()

    def load(self) -> ServedModel:
        """This worker's model, on the GPU Spark assigned to the running task (when it runs on CUDA): built on the
        worker's first call with these settings (and device), the same object on every later call."""
        device_id = task_device_id() if self.serving.provider != "cpu" else 0
        return load_stage_model(self.model_dir, self.kind, replace(self.serving, device_id=device_id))


def task_device_id() -> int:
    """CUDA device of the running Spark task: its ``gpu`` resource (``spark.task.resource.gpu.amount``),
    0 outside a task or when the cluster schedules no GPUs."""
    context = TaskContext.get()
    if context is None:
        return 0
    resources = {name: info.addresses for name, info in context.resources().items()}
    return cuda_device_id(resources, os.environ.get("CUDA_VISIBLE_DEVICES"))
