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
from transformers import AutoConfig

from prox_spark.inference.manifest import (
    MODEL_FILE,
    Kind,
    Manifest,
    ModelLoadError,
    Precision,
    load_manifest,
    sha256_file,
    write_manifest,
)
from prox_spark.inference.session import verify_model_dir

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
) -> Manifest:
    """Export ``hf_dir`` (a ``save_pretrained`` LlamaForCausalLM with ``tokenizer_file`` beside it) to ``out_dir``.

    ``out_dir`` must be absent or empty: a model directory is written once, manifest last, so a
    crashed export never looks complete. ``last_position_logits=False`` keeps optimum's full-logits
    graph (for comparisons only). Returns the manifest that was written.
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
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as staging:
        raw_dir = Path(staging) / "raw"
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
        raw_model = raw_dir / MODEL_FILE
        if last_position_logits:
            graph = onnx.load(str(raw_model), load_external_data=False)
            cut_to_last_position(graph)
            onnx.save(graph, str(raw_model))
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
            extra_options={"MatMulConstBOnly": True},
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
