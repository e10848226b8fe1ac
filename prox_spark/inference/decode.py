"""Batched greedy decoding with KV cache over an exported decoder graph, and one-pass choice scoring.

The graph is optimum's ``text-generation-with-past`` export: inputs ``input_ids``, ``attention_mask``
(past + new positions), ``position_ids``, ``past_key_values.{i}.key|value`` ([batch, kv_heads,
past_len, head_dim]); outputs ``logits`` and ``present.{i}.key|value``. The first call (prefill) runs
with zero-length past tensors, later calls feed one token per row. Prompts are left-padded so every
row's last position is a real token; ``position_ids`` count real tokens only (as transformers'
``generate`` does), so a padded row decodes exactly as it would alone.

A hand loop rather than ``ORTModelForCausalLM.generate``: measured 2-3x faster than torch generate
and faster than optimum's loop at batch 1-8 (architecture.md), and it drops finished rows from the
batch so a long program does not make the short ones pay for its length.

Two ways to carry the KV cache between steps (``KV cache`` classes below): any decoder-with-past graph
takes the past as inputs and returns past + new as outputs, so the whole cache is copied every step.
onnxruntime's fused ``GroupQueryAttention`` (our default export) can instead write the new keys and
values in place when its past input and present output are one buffer: decoding then binds one
preallocated buffer per layer as both. At batch 32 that copy was half of each step's time (the
attention op took 10.6 of 21 ms, the matmuls 9.8 ms); sharing the buffer makes steps 1.2x (batch 8)
to 1.4x (batch 32) faster, with the same tokens. It also keeps the cache on the GPU under
onnxruntime-gpu, where copying it through numpy would cross the bus twice per step.

Prefill and decode want different batch shapes on a CPU: decode streams every weight once per step, so
the more rows share a step the better, while prefill's activations stay in cache only in passes of a
few thousand tokens. ``prefill_tokens`` splits a batch's prefill into passes of at most that many
padded tokens and joins their KV caches for the decode steps (measured on the 31M shape: 1.07-1.09x
faster prefill at 2048 tokens per pass than one pass of 8k-32k tokens, prompts of 128-2000 tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import onnxruntime as ort

from prox_spark.inference.session import LoadedModel

T = TypeVar("T")
R = TypeVar("R")

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
#: padded tokens per prefill pass on CPU (see the module docstring); GPUs get the whole batch in one pass
CPU_PREFILL_TOKENS = 2048


@dataclass(frozen=True)
class Generation:
    """Greedy output for one prompt.

    ``tokens`` holds the generated ids only: no prompt, no padding, and not the EOS token itself (a
    program's text ends before EOS). ``stopped_at_eos`` is False when ``max_new_tokens`` cut the
    output off, i.e. the program may be truncated mid-call and the executor should know it.
    """

    tokens: list[int]
    stopped_at_eos: bool


class GreedyDecoder:
    """Greedy decoding and choice scoring for one onnxruntime session (stateless between calls)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        eos_token_id: int,
        pad_token_id: int,
        max_positions: int = 0,
        shared_kv_cache: bool = False,
        prefill_tokens: int | None = None,
    ) -> None:
        """``shared_kv_cache``: the graph's attention updates a past buffer bound as its present output in
        place (true of the fused GroupQueryAttention export, manifest ``attention: gqa``; ``from_model``
        sets it). Wrong on any other graph: its presents would overwrite the past it is still reading.
        ``prefill_tokens``: most padded tokens (rows x width) per prefill pass, at least one row per
        pass; None picks ``CPU_PREFILL_TOKENS`` on CPU and one pass on a GPU, 0 means one pass."""
        if prefill_tokens is not None and prefill_tokens < 0:
            raise ValueError(f"prefill_tokens must be >= 0 (0: one pass), got {prefill_tokens}")
        self._session = session
        self._shared_kv_cache = shared_kv_cache
        self._device = _session_device(session)  # where shared KV buffers live
        if prefill_tokens is None:
            prefill_tokens = CPU_PREFILL_TOKENS if self._device[0] == "cpu" else 0
        self._prefill_tokens = prefill_tokens
        self._max_positions = max_positions  # 0: unknown, no cap
        self._eos = eos_token_id
        self._pad = pad_token_id
        past_inputs = [i for i in session.get_inputs() if i.name.startswith("past_key_values.")]
        if not past_inputs:
            raise ValueError("graph has no past_key_values.* inputs: export with task text-generation-with-past")
        _, kv_heads, _, head_dim = past_inputs[0].shape
        self._past_names = [i.name for i in past_inputs]
        self._past_shape = (int(kv_heads), int(head_dim))
        self._past_dtype = _NUMPY_TYPES[past_inputs[0].type]
        self._output_names = [o.name for o in session.get_outputs()]
        # present.{i}.key (output) becomes past_key_values.{i}.key (input) of the next step
        self._present_to_past = {
            name: name.replace("present.", "past_key_values.", 1)
            for name in self._output_names
            if name.startswith("present.")
        }

    @classmethod
    def from_model(
        cls, model: LoadedModel, prefill_tokens: int | None = None, eos_token_id: int | None = None
    ) -> GreedyDecoder:
        """Decoder with the EOS and pad ids recorded in the model's manifest (and its KV cache kind).

        ``eos_token_id`` replaces the manifest's, e.g. -1 to generate every row to ``max_new_tokens``."""
        manifest = model.manifest
        return cls(
            model.session,
            eos_token_id=manifest.eos_token_id if eos_token_id is None else eos_token_id,
            pad_token_id=manifest.pad_token_id,
            max_positions=manifest.max_positions,
            shared_kv_cache=manifest.attention == "gqa",
            prefill_tokens=prefill_tokens,
        )

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy continuation of each prompt (one batch) until EOS or ``max_new_tokens``.

        Rows stop independently; finished rows leave the batch (and its KV cache) at once.
        Ties in the logits go to the lowest token id, as in torch's argmax. With a known position limit
        (``max_positions``), a row also stops where its own next position would pass it: it comes back
        with ``stopped_at_eos`` False, like a row cut by ``max_new_tokens``. Each row's budget depends on
        its own prompt only, so what a document gets never depends on the batch it was put in.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        input_ids, attention_mask, position_ids = self._left_pad(prompts)
        budgets = np.full(len(prompts), max_new_tokens, dtype=np.int64)
        if self._max_positions:
            lengths = np.array([len(p) for p in prompts], dtype=np.int64)
            if lengths.max() >= self._max_positions:
                raise ValueError(
                    f"prompt of {int(lengths.max())} tokens reaches the model's {self._max_positions} positions"
                )
            # the token produced at step s is fed at position length + s, which must stay below the limit
            budgets = np.minimum(budgets, self._max_positions - lengths)
        cache, logits = self._prefill(input_ids, attention_mask, position_ids, input_ids.shape[1] + int(budgets.max()))
        next_position = attention_mask.sum(axis=1, keepdims=True)
        rows = np.arange(len(prompts))  # original index of each row still in the batch
        tokens_out: list[list[int]] = [[] for _ in prompts]
        stopped = [False] * len(prompts)
        for step in range(int(budgets.max())):
            tokens = logits[:, -1, :].argmax(axis=-1)
            at_eos = tokens == self._eos
            for row, token, done in zip(rows.tolist(), tokens.tolist(), at_eos.tolist()):
                if done:
                    stopped[row] = True
                else:
                    tokens_out[row].append(token)
            finished = at_eos | (budgets[rows] <= step + 1)
            if finished.all():
                break
            if finished.any():
                alive = ~finished
                rows, tokens, attention_mask, next_position = (
                    rows[alive], tokens[alive], attention_mask[alive], next_position[alive]
                )
                cache.keep_rows(alive)
            attention_mask = np.concatenate([attention_mask, np.ones((len(rows), 1), np.int64)], axis=1)
            logits = cache.run(tokens[:, None].astype(np.int64), attention_mask, next_position)
            next_position = next_position + 1
        return [Generation(tokens=t, stopped_at_eos=s) for t, s in zip(tokens_out, stopped)]

    def score_choices(self, prompts: Sequence[Sequence[int]], choices: Mapping[str, Sequence[int]]) -> list[str]:
        """Pick, per prompt, the choice (text -> its token ids) the model prefers, in one forward pass.

        The choices' common token prefix is appended to every prompt; the next-token logits at the last
        position are compared on each choice's first token after that prefix (for ``keep_doc()`` vs
        ``drop_doc()`` usually the very first token). This is the decision greedy decoding takes at
        the first token where the choices part, restricted to the choices. Choice ids must be tokenized
        as they would follow the prompt. Ties go to the first choice in ``choices``' order.
        """
        names = list(choices)
        best = self.choice_logits(prompts, choices).argmax(axis=-1)
        return [names[i] for i in best.tolist()]

    def choice_logits(self, prompts: Sequence[Sequence[int]], choices: Mapping[str, Sequence[int]]) -> np.ndarray:
        """``[prompts, choices]`` next-token logits of each choice's deciding token (see ``score_choices``),
        in one forward pass: the margins a calibrated decision (the doc stage's keep threshold) compares."""
        names = list(choices)
        sequences = [list(choices[name]) for name in names]
        if len(names) < 2:
            raise ValueError(f"score_choices needs at least two choices, got {names}")
        prefix = _common_prefix(sequences)
        if any(len(seq) == len(prefix) for seq in sequences):
            raise ValueError(f"choice ids {sequences}: one choice is a prefix of another, no token decides")
        deciding = [seq[len(prefix)] for seq in sequences]
        if len(set(deciding)) != len(deciding):
            raise ValueError(
                f"choice ids {sequences}: choices must all part at the same token after their common prefix"
            )
        input_ids, attention_mask, position_ids = self._left_pad([list(p) + prefix for p in prompts])
        parts = []
        for rows in self._prefill_passes(*input_ids.shape):
            feeds = {
                "input_ids": input_ids[rows], "attention_mask": attention_mask[rows], "position_ids": position_ids[rows]
            }
            # logits only: scoring needs no cache, and fetching the presents would copy all of it out
            (logits,) = self._session.run(["logits"], {**feeds, **self._empty_past(rows.stop - rows.start)})
            parts.append(logits[:, -1, deciding])
        return np.concatenate(parts).astype(np.float64)

    def _prefill(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray, capacity: int
    ) -> tuple[_CopiedKVCache | _SharedKVCache, np.ndarray]:
        """Run the prompts in prefill passes; the joined cache (room for ``capacity`` positions) and logits."""
        caches, parts = [], []
        for rows in self._prefill_passes(*input_ids.shape):
            caches.append(self._kv_cache(rows.stop - rows.start, capacity))
            parts.append(caches[-1].run(input_ids[rows], attention_mask[rows], position_ids[rows]))
        cache = type(caches[0]).join(caches) if len(caches) > 1 else caches[0]
        return cache, np.concatenate(parts)

    def _prefill_passes(self, batch: int, width: int) -> list[slice]:
        """Row slices of one prefill pass each: at most ``prefill_tokens`` padded tokens, at least one row."""
        rows = max(1, self._prefill_tokens // width) if self._prefill_tokens else batch
        return [slice(start, min(start + rows, batch)) for start in range(0, batch, rows)]

    def _left_pad(self, prompts: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``input_ids``, ``attention_mask`` and ``position_ids`` for a left-padded batch."""
        if not prompts:
            raise ValueError("empty batch")
        lengths = [len(p) for p in prompts]
        if min(lengths) == 0:
            raise ValueError(f"prompt {lengths.index(0)} has no tokens")
        width = max(lengths)
        input_ids = np.full((len(prompts), width), self._pad, dtype=np.int64)
        attention_mask = np.zeros((len(prompts), width), dtype=np.int64)
        for row, (prompt, length) in enumerate(zip(prompts, lengths)):
            input_ids[row, width - length :] = prompt
            attention_mask[row, width - length :] = 1
        # padding positions get 1, as transformers' generate does; they are masked out anyway
        position_ids = np.where(attention_mask == 1, attention_mask.cumsum(axis=1) - 1, 1)
        return input_ids, attention_mask, position_ids

    def _kv_cache(self, batch: int, capacity: int) -> _CopiedKVCache | _SharedKVCache:
        """The cache for one ``generate`` call: ``capacity`` is the padded prompt width plus every step."""
        if self._shared_kv_cache:
            kv_heads, head_dim = self._past_shape
            shape = (batch, kv_heads, capacity, head_dim)
            empty = {past: np.zeros(shape, self._past_dtype) for past in self._past_names}
            return _SharedKVCache(self._session, self._device, self._present_to_past, empty)
        return _CopiedKVCache(self, self._empty_past(batch))

    def _empty_past(self, batch: int) -> dict[str, np.ndarray]:
        kv_heads, head_dim = self._past_shape
        return {name: np.zeros((batch, kv_heads, 0, head_dim), self._past_dtype) for name in self._past_names}

    def _run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        position_ids: np.ndarray,
        past: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids, **past}
        outputs = dict(zip(self._output_names, self._session.run(self._output_names, feeds)))
        present = {self._present_to_past[name]: outputs[name] for name in self._present_to_past}
        return outputs["logits"], present


class _CopiedKVCache:
    """Past fed as numpy inputs, presents read back as the next step's past: works on any with-past graph."""

    def __init__(self, decoder: GreedyDecoder, past: dict[str, np.ndarray]) -> None:
        self._decoder = decoder
        self._past = past

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
        logits, self._past = self._decoder._run(input_ids, attention_mask, position_ids, self._past)
        return logits

    def keep_rows(self, alive: np.ndarray) -> None:
        self._past = {name: value[alive] for name, value in self._past.items()}

    @classmethod
    def join(cls, parts: Sequence[_CopiedKVCache]) -> _CopiedKVCache:
        """One cache holding the rows of ``parts`` in order (prefill passes of one batch: the same width)."""
        return cls(parts[0]._decoder, {name: np.concatenate([p._past[name] for p in parts]) for name in parts[0]._past})


class _SharedKVCache:
    """One buffer per past tensor, bound through an IO binding as both the past input and the present output.

    GroupQueryAttention sees the same memory on both sides and writes each step's keys and values at the
    row's position in it, so nothing is copied between steps. The buffers live on the session's device
    (host memory on CPU, where numpy arrays back them; GPU memory under CUDA); logits always come back to
    the host. Dropping finished rows copies the survivors into smaller buffers, once per row that ends;
    joining prefill passes copies the prefilled cache once per batch: both small beside the steps saved.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        device: tuple[str, int],
        present_to_past: Mapping[str, str],
        buffers: Mapping[str, np.ndarray],
    ) -> None:
        """``device``: the session's (type, id); ``buffers``: past input name -> its [batch, kv_heads,
        capacity, head_dim] contents."""
        self._session = session
        self._device = device
        self._present_to_past = dict(present_to_past)
        self._buffers = {
            past: ort.OrtValue.ortvalue_from_numpy(value, *self._device) for past, value in buffers.items()
        }
        self._binding = session.io_binding()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input("input_ids", input_ids)
        binding.bind_cpu_input("attention_mask", attention_mask)
        binding.bind_cpu_input("position_ids", position_ids)
        binding.bind_output("logits", "cpu")
        for present, past in self._present_to_past.items():
            binding.bind_ortvalue_input(past, self._buffers[past])
            binding.bind_ortvalue_output(present, self._buffers[past])
        self._session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()

    def keep_rows(self, alive: np.ndarray) -> None:
        self._buffers = {
            past: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value.numpy()[alive]), *self._device)
            for past, value in self._buffers.items()
        }

    @classmethod
    def join(cls, parts: Sequence[_SharedKVCache]) -> _SharedKVCache:
        """One cache holding the rows of ``parts`` in order (prefill passes of one batch: the same capacity)."""
        first = parts[0]
        return cls(
            first._session,
            first._device,
            first._present_to_past,
            {past: np.concatenate([p._buffers[past].numpy() for p in parts]) for past in first._buffers},
        )


def _session_device(session: ort.InferenceSession) -> tuple[str, int]:
    """(device type, id) where the session computes: where its KV buffers should live."""
    if session.get_providers()[0] == "CUDAExecutionProvider":
        options = session.get_provider_options().get("CUDAExecutionProvider", {})
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0


def _common_prefix(sequences: list[list[int]]) -> list[int]:
    prefix: list[int] = []
    for column in zip(*sequences):
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    return prefix


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    Sorting by length halved doc-stage time against unsorted batches (less padding); longest first
    puts the memory peak in the first batch, so a batch size that does not fit fails at once.
    ``max_batch_tokens`` also caps rows x padded length (the longest row's length, as rows are padded
    to it): a session's activations and KV cache grow with that product, so 16 pages of 2000 tokens
    get fewer rows per batch than 16 short ones. A row longer than the budget runs alone.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_batch_tokens is not None and max_batch_tokens < 1:
        raise ValueError(f"max_batch_tokens must be >= 1 (or None for no limit), got {max_batch_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    if max_batch_tokens is None:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    for index in order:
        batch = batches[-1] if batches else None
        # rows arrive longest first, so the batch's first row sets its padded width
        if batch and len(batch) < batch_size and (len(batch) + 1) * max(lengths[batch[0]], 1) <= max_batch_tokens:
            batch.append(index)
        else:
            batches.append([index])
    return batches


def map_in_length_buckets(
    items: Sequence[T],
    batch_size: int,
    fn: Callable[[list[T]], Sequence[R]],
    key: Callable[[T], int] = len,
    max_batch_tokens: int | None = None,
) -> list[R]:
    """Apply ``fn`` to length-sorted batches of ``items``; results come back in the items' order.

    E.g. ``map_in_length_buckets(prompts, 16, lambda b: decoder.generate(b, 256))``. ``key`` is the
    length a row costs; ``max_batch_tokens`` caps rows x longest key per batch (see ``length_batches``).
    """
    results: dict[int, R] = {}
    for batch in length_batches([key(item) for item in items], batch_size, max_batch_tokens):
        outputs = fn([items[i] for i in batch])
        if len(outputs) != len(batch):
            raise ValueError(f"batch function returned {len(outputs)} results for {len(batch)} items")
        results.update(zip(batch, outputs))
    return [results[i] for i in range(len(items))]
