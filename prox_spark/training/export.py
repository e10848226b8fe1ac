"""Export a saved transformers LlamaForCausalLM into the model directory the inference layer loads.

Steps, each for a measured reason (architecture.md, "Decisions already measured"):

1. optimum-onnx ``main_export`` with task ``text-generation-with-past`` in fp32: one graph that
   prefills (zero-length past) and decodes (one token with past). Its greedy tokens matched torch.
2. Cut the graph to last-position logits: a ``Slice`` on the sequence axis in front of the ``lm_head``
   MatMul. The raw graph returns [batch, seq, vocab] logits, about 8 GB per prefill at batch
   32 x 2000 x 32k; decoding only ever reads the last position, so tokens stay identical.
3. Optionally int8 with ``quantize_dynamic(per_channel=True)`` on MatMuls with constant weights only
   (attention's activation x activation MatMuls stay fp32): 98% identical chunk programs, where a
   preset that also quantized attention kept 41%.
Steps 1-2 are the ``attention="unfused"`` path. The default, ``attention="gqa"``, writes the graph
from the weights instead (``gqa_graph``: onnxruntime's fused GroupQueryAttention, same interface,
last-position logits built in) and checks its logits against torch on a left-padded batch with a
decode step, as optimum checks its own export. onnxruntime-gpu has GroupQueryAttention kernels for
fp16/bf16 only: on the CUDA provider an fp32 fused graph runs its attention nodes on the CPU, so GPU
jobs export ``precision="fp16"`` (the fused graph in fp16, logits in fp32), checked against torch the same
way with an fp16 tolerance.

4. Copy the tokenizer, write ``prox_model.json`` last (sha256 of every file), and load the result back
   with ``verify_model_dir``, the check the job runs before its first Spark stage.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from optimum.exporters.onnx import main_export
import torch
from transformers import AutoConfig, LlamaForCausalLM

from prox_spark.inference.manifest import (
    MODEL_FILE,
    Attention,
    Kind,
    Manifest,
    ModelLoadError,
    Precision,
    load_manifest,
    sha256_file,
    write_manifest,
)
from prox_spark.inference.session import verify_model_dir
from prox_spark.training.gqa_graph import UnsupportedModel, build_gqa_graph

logger = logging.getLogger(__name__)

__all__ = [
    "ExportError",
    "Manifest",
    "ModelLoadError",
    "cut_to_last_position",
    "export_model",
    "external_data_files",
    "load_manifest",
    "quantize_int8",
    "verify_model_dir",
]

TASK = "text-generation-with-past"
VALIDATION_ATOL = 1e-4
#: fused graphs: logits may differ from torch by this much relative to the largest logit (fp32 summation order)
FUSED_VALIDATION_RTOL = 1e-4
#: the same for fp16 graphs (fp16 weights and activations: ~3 significant digits per op)
FP16_VALIDATION_RTOL = 2e-2
#: fused graphs with more weight bytes than this keep them in ``model.onnx_data`` (protobuf's 2 GB limit)
EXTERNAL_DATA_BYTES = 1 << 30
#: packages whose versions decide what the exported graph looks like
_VERSIONED = ("torch", "transformers", "tokenizers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "onnxruntime-gpu")
_LAST_POSITION_PREFIX = "/prox/last_position"


class ExportError(RuntimeError):
    """The export could not produce a usable model directory; the message says which step failed."""


def export_model(
    hf_dir: str | Path,
    out_dir: str | Path,
    *,
    model_id: str,
    kind: Kind,
    tokenizer_file: str,
    prompt_template: str,
    max_prompt_tokens: int,
    max_new_tokens: int,
    precision: Precision = "fp32",
    last_position_logits: bool = True,
    opset: int | None = None,
    attention: Attention = "gqa",
    doc_keep_threshold: float = 0.0,
) -> Manifest:
    """Export ``hf_dir`` (a ``save_pretrained`` LlamaForCausalLM with ``tokenizer_file`` beside it) to ``out_dir``.

    ``out_dir`` must be absent or empty: a model directory is written once, manifest last, so a
    crashed export never looks complete. ``last_position_logits=False`` keeps optimum's full-logits
    graph (for comparisons only) and needs ``attention="unfused"``, as does ``opset``. Returns the
    manifest that was written.
    """
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    tokenizer_path = hf_dir / tokenizer_file
    if not tokenizer_path.is_file():
        raise ExportError(f"{hf_dir}: tokenizer file {tokenizer_file!r} not found")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir}: output directory is not empty; refusing to overwrite a model")
    config = AutoConfig.from_pretrained(hf_dir)
    eos, pad = config.eos_token_id, config.pad_token_id
    if not isinstance(eos, int):
        raise ExportError(f"{hf_dir}: config eos_token_id must be one integer, got {eos!r}")
    if attention == "gqa" and (not last_position_logits or opset is not None):
        raise ExportError("the fused (gqa) graph always returns last-position logits at its own opset: "
                          "use attention='unfused' for full logits or another opset")
    if precision == "fp16" and attention != "gqa":
        raise ExportError("precision='fp16' is written for the fused graph only (attention='gqa')")
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as staging:
        raw_dir = Path(staging) / "raw"
        if attention == "gqa":
            raw_dir.mkdir()
            write_gqa_graph(hf_dir, raw_dir / MODEL_FILE, dtype="fp16" if precision == "fp16" else "fp32")
        else:
            export_unfused(hf_dir, raw_dir, opset=opset, last_position_logits=last_position_logits)
        raw_model = raw_dir / MODEL_FILE
        if precision == "int8":
            quantize_int8(raw_model, out_dir / MODEL_FILE)
        else:
            for name in [MODEL_FILE, *external_data_files(raw_model)]:
                shutil.move(raw_dir / name, out_dir / name)
    shutil.copyfile(tokenizer_path, out_dir / tokenizer_file)
    onnx.checker.check_model(str(out_dir / MODEL_FILE))
    logger.info("%s: exported to %s (%s) in %.1f s", hf_dir, out_dir, precision, time.perf_counter() - started)

    files = [MODEL_FILE, *external_data_files(out_dir / MODEL_FILE), tokenizer_file]
    manifest = Manifest(
        model_id=model_id,
        kind=kind,
        tokenizer_file=tokenizer_file,
        prompt_template=prompt_template,
        max_prompt_tokens=max_prompt_tokens,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos,
        # the pad id only fills masked positions; EOS is the usual stand-in for LLaMA tokenizers without one
        pad_token_id=pad if isinstance(pad, int) else eos,
        vocab_size=config.vocab_size,
        opset=_default_opset(out_dir / MODEL_FILE),
        precision=precision,
        last_position_logits=last_position_logits,
        attention=attention,
        doc_keep_threshold=float(doc_keep_threshold),
        max_positions=int(config.max_position_embeddings),
        files={name: sha256_file(out_dir / name) for name in files},
        versions=_versions(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    manifest_path = write_manifest(out_dir, manifest)
    try:
        verify_model_dir(out_dir)  # the same check the job runs before its first Spark stage
    except ModelLoadError as exc:
        manifest_path.unlink()
        raise ExportError(f"{out_dir}: exported model does not load: {exc}") from exc
    return manifest


def export_unfused(hf_dir: Path, raw_dir: Path, *, opset: int | None, last_position_logits: bool) -> None:
    """optimum's text-generation-with-past graph in ``raw_dir``, cut to last-position logits unless told not to."""
    try:
        main_export(
            str(hf_dir),
            raw_dir,
            task=TASK,
            dtype="fp32",
            opset=opset,
            device="cpu",
            library_name="transformers",
            # optimum's own check against torch; its 1e-5 default flags the 2-5e-5 fp32 noise of a 34M model
            atol=VALIDATION_ATOL,
        )
    except Exception as exc:  # optimum raises plain ValueError/RuntimeError/torch errors alike
        raise ExportError(f"{hf_dir}: optimum export failed: {exc}") from exc
    if last_position_logits:
        raw_model = raw_dir / MODEL_FILE
        graph = onnx.load(str(raw_model), load_external_data=False)
        cut_to_last_position(graph)
        onnx.save(graph, str(raw_model))


def write_gqa_graph(hf_dir: Path, target: Path, dtype: str = "fp32") -> None:
    """The fused GroupQueryAttention graph of ``hf_dir`` at ``target``, checked against torch before it is kept."""
    try:
        model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
        graph = build_gqa_graph(model, dtype)
    except UnsupportedModel as exc:
        # fp16 exists for the fused graph only, so the way out of an fp16 failure is the fp32 fused graph first
        fallback = "attention='unfused'" if dtype == "fp32" else "precision='fp32'"
        raise ExportError(f"{hf_dir}: {exc}; export it with {fallback}") from exc
    weight_bytes = sum(t.ByteSize() for t in graph.graph.initializer)
    if weight_bytes > EXTERNAL_DATA_BYTES:
        onnx.save_model(graph, str(target), save_as_external_data=True, location=f"{MODEL_FILE}_data")
    else:
        onnx.save_model(graph, str(target))
    check_against_torch(model, target, FUSED_VALIDATION_RTOL if dtype == "fp32" else FP16_VALIDATION_RTOL)


def check_against_torch(model: LlamaForCausalLM, graph_path: Path, rtol: float = FUSED_VALIDATION_RTOL) -> None:
    """Last-position logits of a left-padded prefill and one decode step agree with torch (else ExportError).

    The fused graph is written by hand rather than traced, so this is the proof that it computes the
    model: mixed lengths exercise the pad mask, the decode step the KV cache and rotary positions.
    """
    import onnxruntime as ort

    from prox_spark.inference.decode import GreedyDecoder

    session = ort.InferenceSession(str(graph_path), providers=["CPUExecutionProvider"])
    pad = model.config.pad_token_id if isinstance(model.config.pad_token_id, int) else 0
    decoder = GreedyDecoder(session, eos_token_id=-1, pad_token_id=pad)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, model.config.vocab_size, n).tolist() for n in (7, 3, 5)]
    ids, mask, positions = decoder._left_pad(prompts)
    logits, past = decoder._run(ids, mask, positions, decoder._empty_past(len(prompts)))
    step = logits[:, -1].argmax(-1)[:, None]
    step_mask = np.concatenate([mask, np.ones_like(step)], axis=1)
    step_position = mask.sum(1, keepdims=True)
    step_logits, _ = decoder._run(step, step_mask, step_position, past)
    with torch.no_grad():
        full = model(
            input_ids=torch.from_numpy(np.concatenate([ids, step], 1)),
            attention_mask=torch.from_numpy(step_mask),
            position_ids=torch.from_numpy(np.concatenate([positions, step_position], 1)),
        )
    expected = full.logits[:, -2:].numpy()
    got = np.stack([logits[:, -1], step_logits[:, -1]], axis=1)
    error = float(np.abs(got - expected).max())
    if error > rtol * max(1.0, float(np.abs(expected).max())):
        raise ExportError(f"{graph_path}: fused graph logits differ from torch by up to {error:.3g}")


def cut_to_last_position(model: onnx.ModelProto) -> None:
    """Make ``logits`` [batch, 1, vocab] (in place) by slicing the lm_head input to its last position.

    Slicing before the lm_head MatMul rather than after also skips the vocab projection of every
    prompt position. Correct for left-padded batches only, where the last position is a real token.
    """
    graph = model.graph
    producers = [i for i, node in enumerate(graph.node) if "logits" in node.output]
    if len(producers) != 1 or graph.node[producers[0]].op_type != "MatMul":
        found = [graph.node[i].op_type for i in producers]
        raise ExportError(f"expected 'logits' to come from one lm_head MatMul, found {found}")
    index = producers[0]
    lm_head = graph.node[index]
    constants = {
        f"{_LAST_POSITION_PREFIX}/starts": [-1],
        f"{_LAST_POSITION_PREFIX}/ends": [np.iinfo(np.int64).max],
        f"{_LAST_POSITION_PREFIX}/axes": [1],
    }
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), name) for name, v in constants.items())
    sliced = f"{_LAST_POSITION_PREFIX}/Slice_output_0"
    slice_node = helper.make_node(
        "Slice", [lm_head.input[0], *constants], [sliced], name=f"{_LAST_POSITION_PREFIX}/Slice"
    )
    lm_head.input[0] = sliced
    # nodes must stay topologically sorted: the Slice goes right before the MatMul that reads it
    nodes = list(graph.node)
    nodes.insert(index, slice_node)
    del graph.node[:]
    graph.node.extend(nodes)
    logits = next(o for o in graph.output if o.name == "logits")
    sequence_dim = logits.type.tensor_type.shape.dim[1]
    sequence_dim.Clear()
    sequence_dim.dim_value = 1


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8, per-channel, weights of constant-weight MatMuls only (not attention, not embeddings)."""
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            # onnx shape inference cannot type the outputs of com.microsoft ops (fused graph): all are fp32
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
            use_external_data_format=bool(external_data_files(source)),
        )
    except Exception as exc:  # onnxruntime.quantization raises assorted errors
        raise ExportError(f"{source}: int8 quantization failed: {exc}") from exc


def external_data_files(model_path: Path) -> list[str]:
    """File names (relative to the model) holding external tensors: optimum writes ``model.onnx_data`` above 2 GB."""
    model = onnx.load(str(model_path), load_external_data=False)
    tensors = list(model.graph.initializer) + [
        attribute.t for node in model.graph.node for attribute in node.attribute if attribute.HasField("t")
    ]
    locations = {
        entry.value
        for tensor in tensors
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return sorted(locations)


def _default_opset(model_path: Path) -> int:
    model = onnx.load(str(model_path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # onnxruntime and onnxruntime-gpu: one of the two is installed
            continue
    return found
