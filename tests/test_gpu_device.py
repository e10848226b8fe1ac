"""Which GPU a Spark task's onnxruntime session runs on (no GPU needed: the choice is a pure function)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prox_spark.inference import cuda_device_id, load_model

MODELS = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "models"


@pytest.mark.parametrize(
    "resources, visible, expected",
    [
        ({}, None, 0),  # no resource scheduling: GPU 0 (single-GPU nodes)
        ({"gpu": []}, None, 0),
        ({"gpu": ["3"]}, None, 3),  # the task's assigned GPU, as the discovery script numbered it
        ({"gpu": ["2", "3"]}, None, 2),  # a task holding two GPUs runs its session on the first
        ({"gpu": ["3"]}, "2,3", 1),  # CUDA renumbers the visible devices from 0
        ({"gpu": ["GPU-8f2c"]}, "GPU-11aa,GPU-8f2c", 1),  # UUID addresses listed in CUDA_VISIBLE_DEVICES
        ({"gpu": ["1"]}, "", 1),
        ({"fpga": ["0"], "gpu": [" 5 "]}, None, 5),
    ],
)
def test_cuda_device_id(resources, visible, expected):
    assert cuda_device_id(resources, visible) == expected


def test_cuda_device_id_rejects_an_address_cuda_cannot_use():
    with pytest.raises(ValueError, match="GPU-8f2c"):
        cuda_device_id({"gpu": ["GPU-8f2c"]}, "0,1")


def test_cpu_sessions_are_shared_across_assigned_devices():
    """The session cache is keyed by (path, checksum, options, device); a CPU session ignores the device,
    so tasks assigned different GPUs on a CPU run share one session per model."""
    first = load_model(MODELS / "doc", provider="cpu", intra_op_threads=1, device_id=0)
    assert load_model(MODELS / "doc", provider="cpu", intra_op_threads=1, device_id=3) is first
    assert first.provider == "CPUExecutionProvider"


@pytest.mark.spark
def test_task_device_id_in_a_spark_task_without_gpu_scheduling(spark):
    """Inside a real task ``TaskContext.resources()`` has no ``gpu`` here, so sessions use device 0."""
    from prox_spark.udfs.worker_models import task_device_id

    assert task_device_id() == 0  # on the driver: no task
    devices = spark.range(2, numPartitions=2).rdd.map(lambda _: task_device_id()).collect()
    assert devices == [0, 0]
