"""onnxruntime sessions for exported models: checked on load, one per worker process, honest about providers.

Spark reuses Python workers across tasks, so a session built once per process (keyed by the model's
path and checksum) turns model loading into a per-executor cost instead of a per-batch one. Two traps
this module closes, both measured on this kind of machine (architecture.md):

- onnxruntime-gpu silently runs on CPU when CUDA cannot start, while ``get_available_providers()``
  still lists CUDA. We look at ``session.get_providers()`` after creation and report what really runs.
- Several Spark tasks per executor each running onnxruntime with a thread per core and spinning
  threads were 2.5x slower than one thread each: intra-op threads default to cores / concurrent tasks,
  inter-op threads to 1, and spinning is turned off whenever cores are shared.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, NamedTuple, Sequence

import onnxruntime as ort

from prox_spark.inference.manifest import MODEL_FILE, Manifest, ModelLoadError, check_files, load_manifest

logger = logging.getLogger(__name__)

Provider = Literal["auto", "cpu", "cuda"]

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class LoadedModel:
    """A verified session together with its manifest and the execution provider that really runs it."""

    session: ort.InferenceSession
    manifest: Manifest
    provider: str
    model_dir: str


def available_cores() -> int:
    """CPU cores this process may run on (respects cgroup/affinity limits that ``os.cpu_count`` ignores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no sched_getaffinity
        return os.cpu_count() or 1


def resolve_intra_op_threads(intra_op_threads: int, concurrent_tasks: int) -> int:
    """Threads per session: the explicit value, or (for 0) cores divided by the tasks sharing them."""
    if intra_op_threads < 0 or concurrent_tasks < 1:
        raise ValueError(
            f"intra_op_threads must be >= 0 and concurrent_tasks >= 1, got {intra_op_threads}, {concurrent_tasks}"
        )
    if intra_op_threads:
        return intra_op_threads
    return max(1, available_cores() // concurrent_tasks)


def session_options(intra_op_threads: int, share_cores: bool) -> ort.SessionOptions:
    """Options for a decoding session; spinning threads only pay off when nobody else wants the cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if share_cores:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def cuda_device_id(resources: Mapping[str, Sequence[str]], visible_devices: str | None = None) -> int:
    """The CUDA device id a task's session should use: the first ``gpu`` address Spark's resource
    scheduling assigned to the task (``TaskContext.resources()``), 0 when it assigned none.

    Spark's addresses are what the cluster's GPU discovery script reported (physical indices on
    Databricks and EMR). When ``CUDA_VISIBLE_DEVICES`` (``visible_devices``) restricts what this process
    sees, CUDA renumbers the visible devices from 0, so an address listed there maps to its position.
    Without this every task of a multi-GPU executor would run on GPU 0.
    """
    addresses = [a.strip() for a in resources.get("gpu", ()) if a and a.strip()]
    if not addresses:
        return 0
    address = addresses[0]
    visible = [v.strip() for v in (visible_devices or "").split(",") if v.strip()]
    if address in visible:
        return visible.index(address)
    if not address.isdigit():
        raise ValueError(
            f"Spark assigned GPU address {address!r}, which is neither a CUDA device index nor listed in "
            f"CUDA_VISIBLE_DEVICES={visible_devices!r}; fix the cluster's GPU discovery script"
        )
    return int(address)


def provider_list(provider: Provider, device_id: int) -> list[str | tuple[str, dict[str, str]]]:
    """The providers to request, in order: CUDA (on ``device_id``) when asked for or available, then CPU."""
    if provider == "cpu":
        return [CPU]
    if provider == "cuda" or CUDA in ort.get_available_providers():
        return [(CUDA, {"device_id": str(device_id)}), CPU]
    return [CPU]


def open_session(
    model_dir: str | Path,
    manifest: Manifest,
    *,
    provider: Provider = "auto",
    intra_op_threads: int = 1,
    share_cores: bool = False,
    device_id: int = 0,
) -> LoadedModel:
    """Create a session for an already file-checked model directory and check its inputs and outputs."""
    path = Path(model_dir) / MODEL_FILE
    session, actual = create_session(
        path, provider=provider, intra_op_threads=intra_op_threads, share_cores=share_cores, device_id=device_id
    )
    check_session_io(session, manifest, path)
    return LoadedModel(session=session, manifest=manifest, provider=actual, model_dir=str(model_dir))


def create_session(
    path: Path, *, provider: Provider | str = "auto", intra_op_threads: int = 1, share_cores: bool = False,
    device_id: int = 0,
) -> tuple[ort.InferenceSession, str]:
    """An onnxruntime session of the graph at ``path`` and the provider it really runs on (every model kind).

    ``provider="cuda"`` fails when CUDA does not really run (a GPU job silently on CPU is a costly
    surprise); ``"auto"`` accepts the CPU fallback and logs it.
    """
    requested = provider_list(provider, device_id)
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options(intra_op_threads, share_cores), providers=requested
        )
    except Exception as exc:  # onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)
        raise ModelLoadError(f"{path}: not a loadable ONNX model: {exc}") from exc
    running = session.get_providers()
    actual = CUDA if CUDA in running else CPU
    if provider == "cuda" and actual != CUDA:
        raise ModelLoadError(
            f"{path}: CUDAExecutionProvider was requested but onnxruntime runs on {running} "
            "(no GPU visible, or CUDA/cuDNN libraries missing; is onnxruntime-gpu installed alone?)"
        )
    if requested[0] != CPU and actual != CUDA:
        logger.warning("%s: CUDA requested but not available to onnxruntime, running on CPU", path)
    logger.info("%s: onnxruntime runs on %s with %d intra-op thread(s)", path, actual, intra_op_threads)
    return session, actual


def check_session_io(session: ort.InferenceSession, manifest: Manifest, path: Path) -> None:
    """The graph has the decoder-with-past interface the decoder feeds (names, element types, vocab)."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    layers = sum(1 for name in inputs if name.startswith("past_key_values.")) // 2
    expected_inputs = {"input_ids", "attention_mask", "position_ids"} | {
        f"past_key_values.{i}.{part}" for i in range(layers) for part in ("key", "value")
    }
    expected_outputs = {"logits"} | {f"present.{i}.{part}" for i in range(layers) for part in ("key", "value")}
    if layers == 0:
        raise ModelLoadError(
            f"{path}: graph has no past_key_values.* inputs (inputs: {sorted(inputs)}); "
            "export with task text-generation-with-past"
        )
    for kind, expected, actual in (("inputs", expected_inputs, inputs), ("outputs", expected_outputs, outputs)):
        if set(actual) != expected:
            raise ModelLoadError(
                f"{path}: graph {kind} do not match a decoder with KV cache: "
                f"missing {sorted(expected - set(actual))}, unexpected {sorted(set(actual) - expected)}"
            )
    for name in ("input_ids", "attention_mask", "position_ids"):
        if inputs[name].type != "tensor(int64)":
            raise ModelLoadError(f"{path}: input {name} has type {inputs[name].type}, expected tensor(int64)")
    cache_type = inputs["past_key_values.0.key"].type
    expected_cache = "tensor(float16)" if manifest.precision == "fp16" else "tensor(float)"
    if cache_type != expected_cache:
        raise ModelLoadError(
            f"{path}: KV cache inputs are {cache_type} but the manifest says precision {manifest.precision!r} "
            f"({expected_cache}): the graph and its manifest come from different exports"
        )
    logits_shape = outputs["logits"].shape
    if logits_shape[-1] != manifest.vocab_size:
        raise ModelLoadError(
            f"{path}: logits have vocabulary dimension {logits_shape[-1]}, manifest says {manifest.vocab_size}"
        )
    if manifest.last_position_logits and logits_shape[1] != 1:
        raise ModelLoadError(f"{path}: manifest promises last-position logits but the graph returns {logits_shape}")


def verify_model_dir(model_dir: str | Path) -> Manifest:
    """Full check of an exported model directory on the driver, before any Spark stage starts.

    Manifest fields, presence and sha256 of every listed file, a CPU session that loads the graph, and
    the decoder interface. Raises ``ModelLoadError`` with the reason.
    """
    manifest = load_manifest(model_dir)
    check_files(model_dir, manifest)
    open_session(model_dir, manifest, provider="cpu", intra_op_threads=1, share_cores=True)
    return manifest


class SessionKey(NamedTuple):
    """What a process's session for a model depends on, and so what ``load_model``'s cache is keyed by."""

    #: the model directory, resolved
    model_dir: str
    #: the manifest's checksum: a model replaced in place is reloaded
    checksum: str
    provider: str
    #: intra-op threads, resolved (``resolve_intra_op_threads``)
    threads: int
    #: more than one task shares the cores (spinning off)
    share_cores: bool
    #: the task's CUDA device; 0 for a CPU session, which ignores it
    device_id: int


def session_key(
    model_dir: str | Path,
    *,
    provider: Provider = "auto",
    intra_op_threads: int = 0,
    concurrent_tasks: int = 1,
    device_id: int = 0,
) -> SessionKey:
    """The key of ``load_model``'s session for these arguments (reads the manifest for its checksum)."""
    resolved = str(Path(model_dir).resolve())
    return key_for(resolved, load_manifest(resolved).checksum, provider=provider, intra_op_threads=intra_op_threads,
                   concurrent_tasks=concurrent_tasks, device_id=device_id)


def key_for(
    resolved_dir: str, checksum: str, *, provider: Provider, intra_op_threads: int, concurrent_tasks: int, device_id: int,
) -> SessionKey:
    """The ``SessionKey`` of a model whose manifest (of any kind) has ``checksum``: threads resolved, spinning off
    when tasks share the cores, and one CPU session per model whatever GPU the task was assigned."""
    threads = resolve_intra_op_threads(intra_op_threads, concurrent_tasks)
    if provider_list(provider, device_id)[0] == CPU:
        device_id = 0
    return SessionKey(resolved_dir, checksum, provider, threads, concurrent_tasks > 1, device_id)


def load_model(
    model_dir: str | Path,
    *,
    provider: Provider = "auto",
    intra_op_threads: int = 0,
    concurrent_tasks: int = 1,
    device_id: int = 0,
) -> LoadedModel:
    """The process-wide session for ``model_dir`` (built, file-checked and interface-checked on first use).

    ``intra_op_threads=0`` means cores / ``concurrent_tasks`` (the Spark tasks sharing this executor's
    cores); spinning is off when ``concurrent_tasks > 1``. The cache key (``SessionKey``) includes the
    manifest checksum, so a model replaced in place is reloaded, the options, so different settings never
    share a session, and ``device_id`` (the task's GPU, see ``cuda_device_id``), which a CPU session ignores.
    """
    return cached_model(
        session_key(
            model_dir, provider=provider, intra_op_threads=intra_op_threads, concurrent_tasks=concurrent_tasks,
            device_id=device_id,
        )
    )


#: (model, device) pairs one worker keeps: a reused Python worker can serve tasks on every GPU of its node
@functools.lru_cache(maxsize=16)
def cached_model(key: SessionKey) -> LoadedModel:
    """This process's session for ``key`` (``session_key``), opened on first use: what ``load_model`` returns,
    for callers that cache what they build on the session under the same key."""
    manifest = load_manifest(key.model_dir)
    if manifest.checksum != key.checksum:
        raise ModelLoadError(f"{key.model_dir}: manifest changed while loading; retry")
    check_files(key.model_dir, manifest)
    return open_session(
        key.model_dir, manifest, provider=key.provider, intra_op_threads=key.threads, share_cores=key.share_cores,
        device_id=key.device_id,
    )
