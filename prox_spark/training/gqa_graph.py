"""Build a LLaMA decoder-with-past ONNX graph whose attention is onnxruntime's fused ``GroupQueryAttention``.

Why a graph built from the weights instead of optimum's export plus onnxruntime's optimizer: on
optimum's graph ``onnxruntime.transformers.optimizer.optimize_model`` (model type ``gpt2``, the one its
LLaMA recipe uses) fuses the RMS norms and ``RotaryEmbedding`` but finds no attention to fuse, so the
graph keeps repeat_kv (KV heads expanded every step) and materialises [batch, heads, seq, total] fp32
score tensors. Here every op is an onnxruntime kernel for exactly one LLaMA block part:

- ``SkipSimplifiedLayerNormalization`` (RMS norm fused with the residual add), ``MatMul`` projections
  with constant weights (what int8 dynamic quantization rewrites), SiLU MLP;
- ``RotaryEmbedding`` on q and k from ``position_ids``, with cos/sin tables computed by transformers'
  own rotary module (so every ``rope_scaling`` type it knows is honoured);
- ``GroupQueryAttention`` (CPU, and CUDA for fp16/bf16 graphs) reading the KV heads as they are.

The interface is optimum's, so the decoder and the manifest checks need no second code path: inputs
``input_ids``, ``attention_mask`` (past + new), ``position_ids``, ``past_key_values.{i}.key|value``
[batch, kv_heads, past, head_dim]; outputs ``logits`` [batch, 1, vocab] (last position only) and
``present.{i}.key|value``. Rows are left-padded: GroupQueryAttention's own lengths (``seqlens_k``) say
every row is full width, which keeps its causal mask right in padded coordinates, and an additive
``attention_bias`` built from ``attention_mask`` hides the pad keys. Rotary runs outside the attention
op because the op's built-in rotary derives positions from those lengths, not from ``position_ids``.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from transformers import LlamaForCausalLM

__all__ = ["GRAPH_OPSET", "MASK_VALUE", "build_gqa_graph"]

GRAPH_OPSET = 18
#: additive bias on pad keys: large enough to zero their softmax weight, small enough to stay finite
MASK_VALUE = -1e9
#: the same in an fp16 graph: exp(-1e4) is 0 all the same, and score + bias stays far from fp16's -65504
MASK_VALUE_FP16 = -1e4
#: graph dtypes: weights, activations and the KV cache; logits are fp32 in both (what the decoder compares)
FLOAT_TYPES = {"fp32": (TensorProto.FLOAT, np.float32), "fp16": (TensorProto.FLOAT16, np.float16)}
_MS = "com.microsoft"


class UnsupportedModel(ValueError):
    """The checkpoint uses a LLaMA variant this builder does not write (the message says which part)."""


def build_gqa_graph(model: LlamaForCausalLM, dtype: str = "fp32") -> onnx.ModelProto:
    """The fused graph of ``model`` (weights embedded; the caller decides about external data).

    ``dtype="fp16"`` is the graph for onnxruntime-gpu, whose GroupQueryAttention kernel takes fp16/bf16
    only: weights, activations and the KV cache in fp16, the first RMS norm's sum of squares and the
    logits in fp32. It also runs on the CPU provider (slowly: onnxruntime casts where a CPU kernel is
    fp32-only), which is how it is checked against torch here."""
    config = model.config
    _check_supported(model)
    if dtype not in FLOAT_TYPES:
        raise ValueError(f"dtype must be one of {sorted(FLOAT_TYPES)}, got {dtype!r}")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    builder = _Builder(dtype)
    state = {name: tensor.detach().float().numpy() for name, tensor in model.state_dict().items()}

    cos, sin = _rotary_tables(model, config.max_position_embeddings, head_dim)
    cos_name, sin_name = builder.constant("rotary/cos", cos), builder.constant("rotary/sin", sin)
    total, seqlens, bias = _attention_lengths_and_bias(builder)

    hidden = builder.node("Gather", [builder.constant("embed_tokens", state["model.embed_tokens.weight"]), "input_ids"])
    residual = None  # running sum of the residual stream, None before the first block
    pending = hidden  # the branch output not yet added to the residual
    for i in range(config.num_hidden_layers):
        prefix = f"model.layers.{i}."
        normed, residual = _rms_norm(builder, pending, residual, state[prefix + "input_layernorm.weight"], config, f"l{i}/in")
        q, k, v = (
            builder.matmul(normed, state[f"{prefix}self_attn.{p}_proj.weight"], f"l{i}/{p}") for p in ("q", "k", "v")
        )
        q = builder.node("RotaryEmbedding", [q, "position_ids", cos_name, sin_name], domain=_MS, num_heads=heads)
        k = builder.node("RotaryEmbedding", [k, "position_ids", cos_name, sin_name], domain=_MS, num_heads=kv_heads)
        attended = builder.node(
            "GroupQueryAttention",
            [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens, total, "", "", "", bias],
            outputs=[f"l{i}/attn", f"present.{i}.key", f"present.{i}.value"],
            domain=_MS,
            num_heads=heads,
            kv_num_heads=kv_heads,
            do_rotary=0,
        )[0]
        pending = builder.matmul(attended, state[f"{prefix}self_attn.o_proj.weight"], f"l{i}/o")
        normed, residual = _rms_norm(
            builder, pending, residual, state[prefix + "post_attention_layernorm.weight"], config, f"l{i}/post"
        )
        gate = builder.matmul(normed, state[f"{prefix}mlp.gate_proj.weight"], f"l{i}/gate")
        up = builder.matmul(normed, state[f"{prefix}mlp.up_proj.weight"], f"l{i}/up")
        silu = builder.node("Mul", [gate, builder.node("Sigmoid", [gate])])
        pending = builder.matmul(builder.node("Mul", [silu, up]), state[f"{prefix}mlp.down_proj.weight"], f"l{i}/down")
    normed, _ = _rms_norm(builder, pending, residual, state["model.norm.weight"], config, "final")
    # last position only, before the lm_head: the vocab projection runs once per row, not per prompt token
    last = builder.node(
        "Slice",
        [normed, builder.ints("last/starts", [-1]), builder.ints("last/ends", [np.iinfo(np.int64).max]),
         builder.ints("last/axes", [1])],
    )
    lm_head = state.get("lm_head.weight", state["model.embed_tokens.weight"])
    if dtype == "fp32":
        builder.matmul(last, lm_head, "lm_head", output="logits")
    else:
        builder.node("Cast", [builder.matmul(last, lm_head, "lm_head")], outputs=["logits"], to=TensorProto.FLOAT)
    return builder.model(config.num_hidden_layers, kv_heads, head_dim, config.vocab_size)


def _check_supported(model: LlamaForCausalLM) -> None:
    config = model.config
    if config.model_type != "llama":
        raise UnsupportedModel(f"model_type {config.model_type!r}: the fused graph is written for 'llama' only")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise UnsupportedModel("attention or MLP biases are not supported by the fused graph")
    if config.hidden_act != "silu":
        raise UnsupportedModel(f"hidden_act {config.hidden_act!r}: the fused graph writes SiLU only")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim % 2:
        raise UnsupportedModel(f"head_dim {head_dim} is odd: rotary embeddings need an even head_dim")


def _rotary_tables(model: LlamaForCausalLM, positions: int, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [positions, head_dim / 2] from the model's own rotary module (rope scaling and attention factor included)."""
    rotary = model.model.rotary_emb
    probe = torch.zeros(1, dtype=torch.float32)
    with torch.no_grad():
        cos, sin = rotary(probe, torch.arange(positions)[None, :])
    half = head_dim // 2
    # transformers' tables repeat each frequency twice (rotate_half layout); RotaryEmbedding takes one half
    return cos[0, :, :half].float().numpy(), sin[0, :, :half].float().numpy()


def _attention_lengths_and_bias(builder: _Builder) -> tuple[str, str, str]:
    """``total_sequence_length`` (scalar int32), ``seqlens_k`` ([batch] int32) and the pad-key ``attention_bias``.

    Every row counts as full width (``seqlens_k`` = total - 1); the bias [batch, 1, new, total] is
    MASK_VALUE on pad keys and 0 elsewhere, so left padding never reaches a real token's softmax.
    """
    mask_shape = builder.node("Shape", ["attention_mask"])
    ids_shape = builder.node("Shape", ["input_ids"])
    total64 = builder.node("Gather", [mask_shape, builder.ints("scalar_1", 1)], axis=0)
    total = builder.node("Cast", [total64], to=TensorProto.INT32)
    last_index = builder.node("Sub", [total, builder.constant("int32_one", np.array(1, np.int32))])
    batch = builder.node("Slice", [ids_shape, builder.ints("zero_1d", [0]), builder.ints("one_1d", [1])])
    seqlens = builder.node("Expand", [last_index, batch])
    is_pad = builder.node("Sub", [builder.constant("float_one", np.array(1.0)),
                                  builder.node("Cast", ["attention_mask"], to=builder.float_type)])
    mask_value = MASK_VALUE if builder.float_type == TensorProto.FLOAT else MASK_VALUE_FP16
    pad_bias = builder.node("Mul", [is_pad, builder.constant("mask_value", np.array(mask_value))])
    per_row = builder.node("Unsqueeze", [pad_bias, builder.ints("axes_1_2", [1, 2])])  # [batch, 1, 1, total]
    new_tokens = builder.node("Slice", [ids_shape, builder.ints("one_1d_b", [1]), builder.ints("two_1d", [2])])
    bias_shape = builder.node("Concat", [batch, builder.ints("one_1d_c", [1]), new_tokens,
                                         builder.node("Unsqueeze", [total64, builder.ints("zero_1d_b", [0])])], axis=0)
    bias = builder.node("Expand", [per_row, bias_shape])
    return total, seqlens, bias


def _rms_norm(
    builder: _Builder, branch: str, residual: str | None, weight: np.ndarray, config, name: str
) -> tuple[str, str]:
    """RMS-normalise ``residual + branch`` (or ``branch`` alone first); returns (normalised, new residual sum)."""
    epsilon = float(config.rms_norm_eps)
    weight_name = builder.constant(f"{name}/norm_weight", weight)
    if residual is None:
        # written out in standard ops (SimplifiedLayerNormalization is not in the ONNX domain the checker
        # knows); onnxruntime's level-2 optimizer fuses this pattern back into one kernel at load. In fp32
        # even in an fp16 graph: a sum of squares overflows fp16 long before the activations do
        wide = branch if builder.float_type == TensorProto.FLOAT else builder.node("Cast", [branch], to=TensorProto.FLOAT)
        square = builder.node("Pow", [wide, builder.constant(f"{name}/two", np.array(2.0), np.float32)])
        mean = builder.node("ReduceMean", [square, builder.ints(f"{name}/axes", [-1])], keepdims=1)
        shifted = builder.node("Add", [mean, builder.constant(f"{name}/epsilon", np.array(epsilon), np.float32)])
        scaled = builder.node("Div", [wide, builder.node("Sqrt", [shifted])])
        if builder.float_type != TensorProto.FLOAT:
            scaled = builder.node("Cast", [scaled], to=builder.float_type)
        return builder.node("Mul", [scaled, weight_name]), branch
    outputs = [f"{name}/normed", "", "", f"{name}/sum"]
    builder.node("SkipSimplifiedLayerNormalization", [branch, residual, weight_name], outputs=outputs, domain=_MS,
                 epsilon=epsilon)
    return outputs[0], outputs[3]


class _Builder:
    """Collects nodes and initializers with unique names; the graph stays in topological order by construction."""

    def __init__(self, dtype: str = "fp32") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self.float_type, self._float_numpy = FLOAT_TYPES[dtype]

    def _name(self, op: str) -> str:
        self._count += 1
        return f"/prox/{op}_{self._count}"

    def constant(self, name: str, value: np.ndarray, float_dtype: type | None = None) -> str:
        """An initializer; floating values take the graph's dtype unless ``float_dtype`` says otherwise."""
        value = np.array(value, order="C")
        if np.issubdtype(value.dtype, np.floating):
            narrowed = value.astype(float_dtype or self._float_numpy)
            if not np.isfinite(narrowed).all() and np.isfinite(value).all():
                raise UnsupportedModel(f"{name}: values beyond the {narrowed.dtype} range")
            value = narrowed
        self.initializers.append(numpy_helper.from_array(value, f"/prox/{name}"))
        return f"/prox/{name}"

    def ints(self, name: str, value) -> str:
        return self.constant(name, np.array(value, np.int64))

    def matmul(self, x: str, torch_weight: np.ndarray, name: str, output: str | None = None) -> str:
        """``x @ W.T`` for a torch Linear weight [out, in]: the weight is stored transposed, as optimum does."""
        weight = self.constant(f"{name}/weight", torch_weight.T)
        return self.node("MatMul", [x, weight], outputs=[output] if output else None)

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, domain: str = "", **attributes):
        name = self._name(op)
        outputs = outputs or [f"{name}/out"]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attributes))
        return outputs[0] if len(outputs) == 1 else outputs

    def model(self, layers: int, kv_heads: int, head_dim: int, vocab: int) -> onnx.ModelProto:
        past = "past_sequence_length"
        inputs = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch_size", f"{past} + sequence_length"]
            ),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        ]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 1, vocab])]
        for i in range(layers):
            for part in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(
                    f"past_key_values.{i}.{part}", self.float_type, ["batch_size", kv_heads, past, head_dim]
                ))
                outputs.append(helper.make_tensor_value_info(
                    f"present.{i}.{part}", self.float_type,
                    ["batch_size", kv_heads, f"{past} + sequence_length", head_dim],
                ))
        graph = helper.make_graph(self.nodes, "prox_llama_gqa", inputs, outputs, initializer=self.initializers)
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", GRAPH_OPSET), helper.make_opsetid(_MS, 1)],
            producer_name="prox-spark",
        )
