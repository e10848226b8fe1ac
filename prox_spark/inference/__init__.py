"""Model runtime: verified onnxruntime sessions, batched greedy decoding, doc-level choice scoring.

Imports onnxruntime and numpy only (no torch, no pyspark), so it runs inside a pandas UDF worker.

- ``verify_model_dir(path) -> Manifest``: driver-side check before any Spark stage
- ``load_model(path, *, provider, intra_op_threads, concurrent_tasks, device_id) -> LoadedModel``: per-process cache
- ``cuda_device_id(resources, visible_devices) -> int``: the CUDA device of a Spark task's assigned GPU
- ``GreedyDecoder.from_model(model, prefill_tokens)``: ``.generate(prompts, max_new_tokens)``,
  ``.score_choices(prompts, choices)``; fused graphs decode with an in-place KV cache on the session's device
- ``map_in_length_buckets(items, batch_size, fn)``: length-sorted batches, results in input order
"""

from prox_spark.inference.decode import Generation, GreedyDecoder, length_batches, map_in_length_buckets
from prox_spark.inference.manifest import (
    MANIFEST_NAME,
    MODEL_FILE,
    Manifest,
    ModelLoadError,
    check_files,
    load_manifest,
    sha256_file,
    write_manifest,
)
from prox_spark.inference.session import (
    LoadedModel,
    cuda_device_id,
    load_model,
    open_session,
    resolve_intra_op_threads,
    verify_model_dir,
)

__all__ = [
    "MANIFEST_NAME",
    "MODEL_FILE",
    "Generation",
    "GreedyDecoder",
    "LoadedModel",
    "Manifest",
    "ModelLoadError",
    "check_files",
    "cuda_device_id",
    "length_batches",
    "load_manifest",
    "load_model",
    "map_in_length_buckets",
    "open_session",
    "resolve_intra_op_threads",
    "sha256_file",
    "verify_model_dir",
    "write_manifest",
]
