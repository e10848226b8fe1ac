"""Export to ONNX, the model-directory checks, and greedy decoding against transformers' generate.

One tiny random LLaMA (hidden 64, 2 layers, GQA 4/2, vocab 300) is built and exported once per module:
the default fused export (GroupQueryAttention, last-position logits) in fp32, int8 and fp16, and optimum's
unfused graph with last-position and with full logits. Weights use initializer_range 0.2 rather than the
default 0.02 so greedy output varies from token to token instead of repeating one token.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from tokenizers import Tokenizer, models  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from prox_spark.inference import (  # noqa: E402
    MANIFEST_NAME,
    GreedyDecoder,
    ModelLoadError,
    length_batches,
    load_manifest,
    load_model,
    map_in_length_buckets,
    resolve_intra_op_threads,
    sha256_file,
    verify_model_dir,
)
from prox_spark.inference.session import available_cores  # noqa: E402
from prox_spark.training.export import ExportError, export_model  # noqa: E402

VOCAB = 300
PAD = 0
MAX_NEW = 12


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=PAD,
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(config).eval()
    hf_dir = root / "hf"
    model.save_pretrained(hf_dir)
    Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0")).save(str(hf_dir / "tokenizer.json"))
    common = dict(
        model_id="tiny-random",
        kind="chunk",
        tokenizer_file="tokenizer.json",
        prompt_template="compact",
        max_prompt_tokens=128,
        max_new_tokens=MAX_NEW,
    )
    dirs, manifests = {}, {}
    for name, options in (
        ("full", dict(last_position_logits=False, attention="unfused")),
        ("unfused", dict(attention="unfused")),
        ("last", {}),
        ("int8", dict(precision="int8")),
        ("fp16", dict(precision="fp16")),
    ):
        dirs[name] = root / name
        manifests[name] = export_model(hf_dir, dirs[name], **common, **options)
    return SimpleNamespace(model=model, hf_dir=hf_dir, dirs=dirs, manifests=manifests)


def _prompts(seed: int, lengths) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, VOCAB, n).tolist() for n in lengths]


def _left_padded(prompts):
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


def _torch_greedy(model, prompts, eos):
    """transformers' generate, cut like Generation: tokens before EOS, and whether EOS came."""
    ids, mask = _left_padded(prompts)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=MAX_NEW,
            eos_token_id=eos,
            pad_token_id=PAD,
        )
    result = []
    for row in out[:, ids.shape[1] :].tolist():
        stopped = eos in row
        result.append((row[: row.index(eos)] if stopped else row, stopped))
    return result


def _decoder(exported, name, eos=None, shared_kv_cache=None):
    """The decoder ``from_model`` builds (a shared KV cache on fused graphs), with ``eos`` or the cache swapped."""
    loaded = load_model(exported.dirs[name], provider="cpu", intra_op_threads=1)
    if shared_kv_cache is None:
        return GreedyDecoder.from_model(loaded, eos_token_id=eos)
    return GreedyDecoder(
        loaded.session,
        eos_token_id=loaded.manifest.eos_token_id if eos is None else eos,
        pad_token_id=PAD,
        max_positions=loaded.manifest.max_positions,
        shared_kv_cache=shared_kv_cache,
    )


def _last_logits(decoder, prompts):
    ids, mask, positions = decoder._left_pad(prompts)
    logits, _ = decoder._run(ids, mask, positions, decoder._empty_past(len(prompts)))
    return logits


def test_graph_interface_names(exported):
    session = load_model(exported.dirs["last"], provider="cpu").session
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    outputs = [(o.name, o.shape) for o in session.get_outputs()]
    assert inputs[:3] == [
        ("input_ids", "tensor(int64)", ["batch_size", "sequence_length"]),
        ("attention_mask", "tensor(int64)", ["batch_size", "past_sequence_length + sequence_length"]),
        ("position_ids", "tensor(int64)", ["batch_size", "sequence_length"]),
    ]
    assert inputs[3] == ("past_key_values.0.key", "tensor(float)", ["batch_size", 2, "past_sequence_length", 16])
    assert [name for name, _ in outputs] == ["logits"] + [
        f"present.{i}.{part}" for i in range(2) for part in ("key", "value")
    ]
    assert outputs[0][1] == ["batch_size", 1, VOCAB]
    full = load_model(exported.dirs["full"], provider="cpu").session
    assert full.get_outputs()[0].shape == ["batch_size", "sequence_length", VOCAB]
    # the fused graph keeps optimum's interface, so one decoder serves both
    unfused = load_model(exported.dirs["unfused"], provider="cpu").session
    assert [(i.name, i.type, i.shape) for i in unfused.get_inputs()] == inputs
    assert [(o.name, o.shape) for o in unfused.get_outputs()] == outputs


def test_fused_graph_has_one_attention_op_per_layer(exported):
    ops = [node.op_type for node in onnx.load(str(exported.dirs["last"] / "model.onnx")).graph.node]
    assert ops.count("GroupQueryAttention") == 2 and ops.count("RotaryEmbedding") == 4
    assert "Softmax" not in ops and ops.count("MatMul") == 2 * 7 + 1  # weights only: no QK^T / AV MatMuls
    unfused = [node.op_type for node in onnx.load(str(exported.dirs["unfused"] / "model.onnx")).graph.node]
    assert "GroupQueryAttention" not in unfused and unfused.count("Softmax") == 2
    assert (exported.manifests["last"].attention, exported.manifests["unfused"].attention) == ("gqa", "unfused")


def test_fused_export_refuses_full_logits(exported, tmp_path):
    with pytest.raises(ExportError, match="last-position logits"):
        export_model(
            exported.hf_dir, tmp_path / "m", model_id="m", kind="doc", tokenizer_file="tokenizer.json",
            prompt_template="compact", max_prompt_tokens=8, max_new_tokens=8, last_position_logits=False,
        )


def test_manifest_without_attention_field_loads_as_unfused(exported, tmp_path):
    """Exports written before the fused graph have no ``attention`` field: they still load and decode."""
    directory = tmp_path / "old"
    shutil.copytree(exported.dirs["unfused"], directory)
    raw = json.loads((directory / MANIFEST_NAME).read_text())
    del raw["attention"]
    (directory / MANIFEST_NAME).write_text(json.dumps(raw))
    assert verify_model_dir(directory).attention == "unfused"
    decoder = GreedyDecoder.from_model(load_model(directory, provider="cpu", intra_op_threads=1))
    prompts = _prompts(6, (4, 8))
    assert [g.tokens for g in decoder.generate(prompts, MAX_NEW)] == [
        g.tokens for g in _decoder(exported, "unfused").generate(prompts, MAX_NEW)
    ]


def test_greedy_matches_transformers_generate(exported):
    prompts = _prompts(0, (5, 9, 3, 12, 1, 7))
    # pick an EOS the model really emits mid-sequence, so stopping per row is exercised
    free_run = _torch_greedy(exported.model, prompts, eos=2)
    eos = free_run[0][0][3]
    expected = _torch_greedy(exported.model, prompts, eos=eos)
    assert any(stopped for _, stopped in expected) and not all(stopped for _, stopped in expected)
    for name in ("full", "unfused", "last"):
        got = _decoder(exported, name, eos=eos).generate(prompts, MAX_NEW)
        assert [(g.tokens, g.stopped_at_eos) for g in got] == expected, name
    copied = _decoder(exported, "last", eos=eos, shared_kv_cache=False).generate(prompts, MAX_NEW)
    assert [(g.tokens, g.stopped_at_eos) for g in copied] == expected


@pytest.mark.parametrize("name", ["last", "int8", "fp16"])
def test_shared_kv_cache_decodes_as_the_copied_one(exported, name):
    """Fused graphs decode with one in-place KV buffer per layer: the same tokens as copying the cache,
    through rows that stop early (their buffers are compacted) and the position limit."""
    decoder = _decoder(exported, name)
    assert decoder._shared_kv_cache
    prompts = _prompts(3, (40, 3, 250, 17, 9, 1))
    free_run = [g.tokens for g in _decoder(exported, name, eos=-1).generate(prompts, 30)]
    eos = free_run[1][4]  # a token one row emits early: rows stop at different steps
    shared = _decoder(exported, name, eos=eos).generate(prompts, 30)
    copied = _decoder(exported, name, eos=eos, shared_kv_cache=False).generate(prompts, 30)
    assert [(g.tokens, g.stopped_at_eos) for g in shared] == [(g.tokens, g.stopped_at_eos) for g in copied]
    assert len({len(g.tokens) for g in shared}) > 2  # rows really left the batch at different steps
    assert len(shared[2].tokens) == 256 - 250  # the long row stopped at the position limit


def test_last_position_logits_equal_full_graph(exported):
    prompts = _prompts(1, (4, 11, 2))
    full = _last_logits(_decoder(exported, "full"), prompts)
    last = _last_logits(_decoder(exported, "unfused"), prompts)
    fused = _last_logits(_decoder(exported, "last"), prompts)
    assert full.shape == (3, 11, VOCAB) and last.shape == fused.shape == (3, 1, VOCAB)
    np.testing.assert_allclose(full[:, -1], last[:, 0], rtol=1e-5, atol=1e-5)
    # a different kernel sums in a different order: fp32 noise only
    np.testing.assert_allclose(full[:, -1], fused[:, 0], rtol=1e-4, atol=1e-4)


def test_manifest_round_trip(exported):
    directory, manifest = exported.dirs["last"], exported.manifests["last"]
    assert load_manifest(directory) == manifest
    assert load_manifest(directory / MANIFEST_NAME) == manifest
    assert verify_model_dir(directory) == manifest
    assert manifest.files["model.onnx"] == sha256_file(directory / "model.onnx")
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}
    assert (manifest.kind, manifest.precision, manifest.last_position_logits) == ("chunk", "fp32", True)
    assert manifest.attention == "gqa"
    assert (manifest.eos_token_id, manifest.pad_token_id, manifest.vocab_size, manifest.opset) == (2, PAD, VOCAB, 18)
    assert manifest.versions["onnxruntime"] and manifest.versions["optimum-onnx"]
    assert manifest.checksum != exported.manifests["full"].checksum


def _rewrite_manifest(directory: Path, **changes):
    raw = json.loads((directory / MANIFEST_NAME).read_text())
    raw.update(changes)
    (directory / MANIFEST_NAME).write_text(json.dumps(raw))


def _replace_model(directory: Path, data: bytes):
    (directory / "model.onnx").write_bytes(data)
    files = load_manifest(directory).files | {"model.onnx": sha256_file(directory / "model.onnx")}
    _rewrite_manifest(directory, files=files)


def _truncate(path: Path, size: int):
    path.write_bytes(path.read_bytes()[:size])


def _identity_graph() -> bytes:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input_ids"], ["logits"])],
        "identity",
        [onnx.helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, ["b", "s"])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.INT64, ["b", "s"])],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]).SerializeToString()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: _truncate(d / "model.onnx", 1000), r"checksum mismatch for model\.onnx"),
        (lambda d: (d / "model.onnx").write_bytes(b"\x00garbage" * 100), r"checksum mismatch for model\.onnx"),
        (lambda d: (d / "tokenizer.json").unlink(), r"tokenizer\.json is listed in prox_model\.json but missing"),
        (lambda d: _replace_model(d, b"\x08\x07garbage bytes, not protobuf" * 50), r"not a loadable ONNX model"),
        (lambda d: _replace_model(d, (d / "model.onnx").read_bytes()[:5000]), r"not a loadable ONNX model"),
        (lambda d: _replace_model(d, _identity_graph()), r"no past_key_values\.\* inputs"),
        (lambda d: (d / MANIFEST_NAME).unlink(), r"manifest not found"),
        (lambda d: (d / MANIFEST_NAME).write_text("{not json"), r"not readable JSON"),
        (lambda d: _rewrite_manifest(d, max_new_tokens="256"), r"'max_new_tokens': expected int"),
        (lambda d: _rewrite_manifest(d, kind="page"), r"'kind': expected one of"),
        (lambda d: _rewrite_manifest(d, attention="flash"), r"'attention': expected one of"),
        (lambda d: _rewrite_manifest(d, vocab_size=32000), r"vocabulary dimension 300, manifest says 32000"),
        (lambda d: _rewrite_manifest(d, extra=1), r"unknown manifest field\(s\): extra"),
        (lambda d: _rewrite_manifest(d, precision="fp16"), r"KV cache inputs are tensor\(float\) but the manifest says precision 'fp16'"),
    ],
)
def test_broken_model_dir_is_a_clear_load_error(exported, tmp_path, damage, message):
    directory = tmp_path / "model"
    shutil.copytree(exported.dirs["last"], directory)
    damage(directory)
    with pytest.raises(ModelLoadError, match=message):
        verify_model_dir(directory)
    with pytest.raises(ModelLoadError, match=message):
        load_model(directory, provider="cpu")


def test_int8_runs_and_stays_close(exported):
    manifest = exported.manifests["int8"]
    assert manifest.precision == "int8"
    graph = onnx.load(str(exported.dirs["int8"] / "model.onnx"))
    ops = [node.op_type for node in graph.graph.node]
    # 7 weight MatMuls per layer + lm_head are int8; attention stays fp32 inside GroupQueryAttention
    assert ops.count("MatMulInteger") == 2 * 7 + 1
    assert ops.count("MatMul") == 0 and ops.count("GroupQueryAttention") == 2
    prompts = _prompts(2, np.random.default_rng(3).integers(2, 20, 32))
    fp32, int8 = _decoder(exported, "last"), _decoder(exported, "int8")
    got = int8.generate(prompts, MAX_NEW)
    assert len(got) == 32 and all(len(g.tokens) == MAX_NEW or g.stopped_at_eos for g in got)
    assert all(0 <= t < VOCAB for g in got for t in g.tokens)
    exact, quantized = _last_logits(fp32, prompts)[:, 0], _last_logits(int8, prompts)[:, 0]
    # measured: mean |difference| 0.09 against a logit std of 1.55; first tokens agree for 29/32
    assert np.abs(exact - quantized).mean() < 0.1 * exact.std()
    assert (exact.argmax(1) == quantized.argmax(1)).mean() >= 0.75


def test_fp16_graph_runs_and_stays_close(exported):
    """The export for onnxruntime-gpu's fp16-only fused attention, run here on the CPU provider: fp16 KV cache
    and weights, fp32 logits close to the fp32 graph's, and the same greedy programs for most rows."""
    assert exported.manifests["fp16"].precision == "fp16" and exported.manifests["fp16"].attention == "gqa"
    session = load_model(exported.dirs["fp16"], provider="cpu").session
    types = {i.name: i.type for i in session.get_inputs()} | {o.name: o.type for o in session.get_outputs()}
    assert types["past_key_values.0.key"] == types["present.1.value"] == "tensor(float16)"
    assert types["logits"] == "tensor(float)"
    graph = onnx.load(str(exported.dirs["fp16"] / "model.onnx")).graph
    weights = [t for t in graph.initializer if t.name.endswith("/weight")]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    prompts = _prompts(5, np.random.default_rng(6).integers(2, 20, 32))
    fp32, fp16 = _decoder(exported, "last"), _decoder(exported, "fp16")
    exact, half = _last_logits(fp32, prompts)[:, 0], _last_logits(fp16, prompts)[:, 0]
    assert half.dtype == np.float32
    # measured: mean |difference| 0.0016 logit std, first tokens agree 32/32, whole programs 29/32 (this random
    # model's near-ties over 12 tokens)
    assert np.abs(exact - half).mean() < 0.01 * exact.std()
    assert (exact.argmax(1) == half.argmax(1)).mean() >= 0.95
    same = sum(a.tokens == b.tokens for a, b in zip(fp32.generate(prompts, MAX_NEW), fp16.generate(prompts, MAX_NEW)))
    assert same >= 0.8 * len(prompts)


def test_fp16_refuses_weights_beyond_its_range(exported, tmp_path):
    from prox_spark.training.gqa_graph import UnsupportedModel, build_gqa_graph

    model = LlamaForCausalLM(exported.model.config).eval()
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] = 1e6
    with pytest.raises(UnsupportedModel, match="up/weight: values beyond the float16 range"):
        build_gqa_graph(model, "fp16")
    model.save_pretrained(tmp_path / "hf")
    shutil.copyfile(exported.hf_dir / "tokenizer.json", tmp_path / "hf" / "tokenizer.json")
    with pytest.raises(ExportError, match="beyond the float16 range; export it with precision='fp32'"):
        export_model(tmp_path / "hf", tmp_path / "m", model_id="x", kind="chunk", tokenizer_file="tokenizer.json",
                     prompt_template="compact", max_prompt_tokens=128, max_new_tokens=4, precision="fp16")


def test_fp16_needs_the_fused_graph(exported, tmp_path):
    with pytest.raises(ExportError, match="fused graph only"):
        export_model(exported.hf_dir, tmp_path / "m", model_id="x", kind="chunk", tokenizer_file="tokenizer.json",
                     prompt_template="compact", max_prompt_tokens=128, max_new_tokens=4, precision="fp16",
                     attention="unfused")


def test_score_choices_agrees_with_greedy_and_torch(exported):
    decoder = _decoder(exported, "last")
    prompts = _prompts(4, (6, 3, 10, 8, 5, 1))
    shared = [17, 42]  # choices share two tokens, as "keep_doc()" / "drop_doc()" may share a prefix
    first = [g.tokens[0] for g in decoder.generate([p + shared for p in prompts[:2]], 1)]
    keep, drop = first[0], first[1] if first[1] != first[0] else (first[0] + 1) % VOCAB
    choices = {"keep_doc()": shared + [keep, 5], "drop_doc()": shared + [drop, 9, 9]}
    chosen = decoder.score_choices(prompts, choices)
    assert chosen[0] == "keep_doc()"  # greedy's own first token after the shared prefix
    if first[1] != first[0]:
        assert chosen[1] == "drop_doc()"
    ids, mask = _left_padded([p + shared for p in prompts])
    with torch.no_grad():
        logits = exported.model(input_ids=ids, attention_mask=mask).logits[:, -1]
    expected = ["keep_doc()" if logits[i, keep] >= logits[i, drop] else "drop_doc()" for i in range(len(prompts))]
    assert chosen == expected


def test_shared_kv_cache_is_written_in_place(exported):
    """The attention op writes each step's keys into the one bound buffer: same memory, filled position by position."""
    decoder = _decoder(exported, "last")
    ids, mask, positions = decoder._left_pad(_prompts(7, (6, 4)))
    cache = decoder._kv_cache(2, ids.shape[1] + 3)
    buffer = cache._buffers["past_key_values.0.key"]
    address = buffer.data_ptr()

    def filled():  # per buffer position: written yet?
        return np.abs(buffer.numpy()).sum(axis=(0, 1, 3)) > 0

    logits = cache.run(ids, mask, positions)
    assert filled().tolist() == [True] * 6 + [False] * 3
    step = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
    cache.run(step, np.concatenate([mask, np.ones_like(step)], axis=1), mask.sum(1, keepdims=True))
    assert filled().tolist() == [True] * 7 + [False] * 2
    assert cache._buffers["past_key_values.0.key"].data_ptr() == address


@pytest.mark.parametrize(("name", "shared_kv_cache"), [("last", True), ("last", False), ("unfused", False)])
def test_prefill_in_passes_decodes_as_one_pass(exported, name, shared_kv_cache):
    """Prefill split into passes (their caches joined for decoding) gives the tokens and scores of one pass."""
    session = load_model(exported.dirs[name], provider="cpu", intra_op_threads=1).session
    prompts = _prompts(5, (9, 30, 4, 17, 25))
    eos = _decoder(exported, name, eos=-1).generate(prompts, MAX_NEW)[2].tokens[3]

    def decoder(prefill_tokens):
        return GreedyDecoder(
            session, eos_token_id=eos, pad_token_id=PAD, shared_kv_cache=shared_kv_cache, prefill_tokens=prefill_tokens
        )

    one, passes = decoder(0), decoder(60)
    assert passes._prefill_passes(5, 30) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert one._prefill_passes(5, 30) == [slice(0, 5)]
    assert decoder(10)._prefill_passes(2, 30) == [slice(0, 1), slice(1, 2)]  # a row wider than the budget runs alone
    expected = [(g.tokens, g.stopped_at_eos) for g in one.generate(prompts, MAX_NEW)]
    assert any(stopped for _, stopped in expected) and not all(stopped for _, stopped in expected)
    assert [(g.tokens, g.stopped_at_eos) for g in passes.generate(prompts, MAX_NEW)] == expected
    choices = {"a": [5], "b": [6], "c": [7]}
    np.testing.assert_allclose(passes.choice_logits(prompts, choices), one.choice_logits(prompts, choices), rtol=1e-5)
    with pytest.raises(ValueError, match="prefill_tokens"):
        decoder(-1)


@pytest.mark.parametrize(
    "choices", [{"a": [1, 2]}, {"a": [1, 2], "b": [1, 2, 3]}, {"a": [1, 2], "b": [1, 3], "c": [4, 2]}]
)
def test_score_choices_rejects_undecidable_choices(exported, choices):
    with pytest.raises(ValueError):
        _decoder(exported, "last").score_choices([[5, 6]], choices)


def test_length_buckets_restore_order_and_change_nothing(exported):
    prompts = _prompts(5, (3, 15, 7, 1, 9, 9, 4))
    assert length_batches([len(p) for p in prompts], 3) == [[1, 4, 5], [2, 6, 0], [3]]
    decoder = _decoder(exported, "last")
    seen = []

    def generate(batch):
        seen.append([len(p) for p in batch])
        return decoder.generate(batch, MAX_NEW)

    bucketed = map_in_length_buckets(prompts, 3, generate)
    assert seen == [[15, 9, 9], [7, 4, 3], [1]]
    assert [g.tokens for g in bucketed] == [g.tokens for g in decoder.generate(prompts, MAX_NEW)]


def test_token_budget_caps_rows_times_padded_length():
    lengths = [2000, 1900, 1800, 300, 250, 200, 100, 5000, 10]
    batches = length_batches(lengths, 16, max_batch_tokens=4096)
    # longest first; a row over the budget runs alone; short rows fill up to batch_size
    assert batches == [[7], [0, 1], [2, 3], [4, 5, 6, 8]]
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 4096
    assert length_batches(lengths, 3, max_batch_tokens=10**6) == length_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    with pytest.raises(ValueError, match="max_batch_tokens"):
        length_batches(lengths, 4, max_batch_tokens=0)


def test_token_budget_changes_batches_not_tokens(exported):
    prompts = _prompts(7, (30, 28, 6, 5, 4, 3, 2))
    decoder = _decoder(exported, "last")
    seen = []

    def generate(batch):
        seen.append([len(p) for p in batch])
        return decoder.generate(batch, MAX_NEW)

    budgeted = map_in_length_buckets(prompts, 8, generate, max_batch_tokens=40)
    assert seen == [[30], [28], [6, 5, 4, 3, 2]]
    assert [g.tokens for g in budgeted] == [g.tokens for g in decoder.generate(prompts, MAX_NEW)]


def test_sessions_are_cached_and_honest_about_providers(exported):
    first = load_model(exported.dirs["last"], provider="cpu", intra_op_threads=1)
    assert load_model(exported.dirs["last"], provider="cpu", intra_op_threads=1) is first
    assert first.provider == "CPUExecutionProvider"
    auto = load_model(exported.dirs["last"], provider="auto")
    assert auto.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert resolve_intra_op_threads(0, 2) == max(1, available_cores() // 2)
    assert resolve_intra_op_threads(3, 2) == 3
    if "CUDAExecutionProvider" not in first.session.get_providers():
        with pytest.raises(ModelLoadError, match="CUDAExecutionProvider was requested"):
            load_model(exported.dirs["last"], provider="cuda")


def test_export_refuses_non_empty_output(exported, tmp_path):
    (tmp_path / "stale.txt").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_model(
            exported.hf_dir,
            tmp_path,
            model_id="m",
            kind="doc",
            tokenizer_file="tokenizer.json",
            prompt_template="compact",
            max_prompt_tokens=8,
            max_new_tokens=8,
        )


def test_generation_stops_at_the_graph_position_limit(exported):
    """A fused graph fails past max_position_embeddings; the decoder cuts each row there instead."""
    decoder = _decoder(exported, "last")  # the fused default export
    assert decoder._max_positions == 256
    prompts = [list(range(3, 3 + 250)), list(range(3, 3 + 20))]
    generations = GreedyDecoder(
        decoder._session, eos_token_id=-1, pad_token_id=PAD, max_positions=256
    ).generate(prompts, max_new_tokens=50)
    # each row's own budget: the long prompt stops at the limit, the short one is not cut with it
    assert [len(g.tokens) for g in generations] == [6, 50]
    assert not any(g.stopped_at_eos for g in generations)
    alone = GreedyDecoder(decoder._session, eos_token_id=-1, pad_token_id=PAD, max_positions=256).generate(
        prompts[1:], max_new_tokens=50)
    assert alone[0].tokens == generations[1].tokens
    with pytest.raises(ValueError, match="reaches the model's 256 positions"):
        decoder.generate([list(range(3, 3 + 256))], max_new_tokens=1)
