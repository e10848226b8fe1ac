"""The machine's limits for ``benchmarks/inference.py``: the best fp32 onnxruntime ``MatMul`` rate at a model's
own matrix shapes (the prefill roofline), the decode-step matmul floor, and the prefill FLOPs they are
compared with. See that script's docstring (point 2) for what the figures mean.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def ort_matmul_flops(rows: int, inner: int, cols: int, threads: int, repeat: int = 5) -> float:
    """FLOP/s of one fp32 onnxruntime MatMul [rows, inner] x [inner, cols] (constant weight), best of ``repeat``."""
    from prox_spark.inference.session import session_options

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((inner, cols), dtype=np.float32) * 0.02, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, inner])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, cols])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=session_options(threads, share_cores=False), providers=["CPUExecutionProvider"]
    )
    x = rng.standard_normal((rows, inner), dtype=np.float32)
    session.run(None, {"x": x})
    seconds = best_time(lambda: session.run(None, {"x": x}), repeat)
    return 2.0 * rows * inner * cols / seconds


def numpy_matmul_flops(rows: int, inner: int, cols: int, repeat: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    b = rng.standard_normal((inner, cols), dtype=np.float32)
    a @ b
    return 2.0 * rows * inner * cols / best_time(lambda: a @ b, repeat)


def roofline(config, rows: int, repeat: int, batches: Sequence[int], threads: int) -> dict:
    """Best fp32 MatMul rate at the model's projection shapes (q/o, MLP up and down), onnxruntime and numpy.

    The ``small`` model's MLP shape is always included, so a tiny model's inefficient little matrices do
    not lower the machine's roofline.
    """
    hidden, inter = config.hidden_size, config.intermediate_size
    shapes = sorted({(rows, hidden, hidden), (rows, hidden, inter), (rows, inter, hidden), (rows, 512, 1408)})
    per_shape = {f"{m}x{k}x{n}": ort_matmul_flops(m, k, n, threads, repeat) for m, k, n in shapes}
    return {
        "ort_matmul_flops": max(per_shape.values()),
        "ort_matmul_flops_by_shape": per_shape,
        "numpy_matmul_flops": max(numpy_matmul_flops(m, k, n, repeat) for m, k, n in shapes),
        "decode_matmul_floor_s": decode_matmul_floor(config, batches, repeat, threads),
        "threads": threads,
    }


def decode_matmul_floor(config, batches: Sequence[int], repeat: int, threads: int) -> dict[int, float]:
    """Seconds per decode step of the step's projections alone: batch -> best time of one graph holding
    every layer's q/k/v/o, gate/up/down and the lm_head as fp32 MatMuls on ``batch`` rows (each fed its
    own input, so all weights stream from memory as a real step's do)."""
    from prox_spark.inference.session import session_options

    hidden, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    per_layer = [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden), (hidden, inter), (hidden, inter), (inter, hidden)]
    shapes = per_layer * config.num_hidden_layers + [(hidden, config.vocab_size)]
    rng = np.random.default_rng(0)
    nodes, weights = [], []
    for i, (inner, cols) in enumerate(shapes):
        weights.append(numpy_helper.from_array(rng.standard_normal((inner, cols), dtype=np.float32) * 0.02, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [f"x{inner}", f"w{i}"], [f"y{i}"]))
    graph = helper.make_graph(
        nodes,
        "decode_floor",
        [helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, ["rows", k]) for k in sorted({hidden, inter})],
        [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["rows", cols]) for i, (_, cols) in enumerate(shapes)],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(
        model.SerializeToString(), sess_options=session_options(threads, share_cores=False), providers=["CPUExecutionProvider"]
    )
    floors = {}
    for batch in batches:
        feeds = {f"x{k}": rng.standard_normal((batch, k), dtype=np.float32) for k in sorted({hidden, inter})}
        session.run(None, feeds)
        floors[batch] = best_time(lambda: session.run(None, feeds), 4 * repeat)
    return floors


def prefill_flops(config, batch: int, prompt_tokens: int) -> float:
    """2 x (weights applied per prompt token) x tokens, plus the lm_head once per row (last-position graph).

    Attention's activation x activation products (QK^T, AV) are not counted: about 5% more at 256 tokens.
    """
    from prox_spark.models import parameter_count

    lm_head = config.vocab_size * config.hidden_size
    per_token = parameter_count(config, embeddings=False) - lm_head
    return 2.0 * per_token * batch * prompt_tokens + 2.0 * lm_head * batch
