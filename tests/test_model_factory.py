"""Tokenizer training and wrapping, LLaMA shapes (the 0.3B reference shape counted, not allocated), tiny model."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from prox_spark.models import (  # noqa: E402
    ADDED_TOKENS,
    SHAPES,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    build_model,
    llama_config,
    load_tokenizer,
    parameter_count,
    save_tokenizer,
    shared_texts,
    to_transformers,
    train_tokenizer,
    training_texts,
)

VOCAB = 800
SAMPLE = 200
TRICKY = [
    "Grüße aus Köln — 日本語のテキスト, русский текст, emoji 😀🏳️‍🌈",
    "tabs\tand  double  spaces  \r\nwindows line\r\n\n\ntrailing newlines\n\n",
    " leading space, \u00a0nbsp, zero\u200bwidth, control \x00\x07 bytes",
    'normalize(source_str="(c) 2023", target_str="") [000]x [1000]y',
]


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    return list(training_texts(shared_data, max_docs=SAMPLE, seed=3))


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts, VOCAB)


# --- tokenizer -------------------------------------------------------------------------------------


def test_training_texts_read_the_shared_data(texts, shared_data):
    assert len(texts) == SAMPLE and all(isinstance(t, str) and t for t in texts)
    assert texts == list(training_texts(shared_data, max_docs=SAMPLE, seed=3))  # seeded sample
    assert texts != list(training_texts(shared_data, max_docs=SAMPLE, seed=4))
    assert sum(1 for _ in shared_texts(shared_data)) == 990 + 399 - 1  # one trafilatura page has empty noisy_text


def test_tokenizer_trains_fast_and_reproducibly(texts, tokenizer):
    started = time.perf_counter()
    again = train_tokenizer(reversed(texts), VOCAB)
    assert time.perf_counter() - started < 10
    assert again.to_str() == tokenizer.to_str()  # same texts, any order: the same tokenizer.json
    assert tokenizer.get_vocab_size() == VOCAB
    assert [tokenizer.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)


def test_vocab_size_must_leave_room_for_merges():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["x"], 200)


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_is_byte_exact(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(ids) == text
    assert tokenizer.token_to_id("<unk>") not in ids


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_round_trip_any_text(tokenizer, text):
    ids = tokenizer.encode(text).ids
    assert ids[0] == tokenizer.token_to_id("<s>")
    assert tokenizer.decode(ids[1:], skip_special_tokens=False) == text


def test_program_pieces_and_markers_are_single_tokens(tokenizer):
    for token in ADDED_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False).ids) == 1, token
    program = tokenizer.encode("remove_lines(line_start=12, line_end=15)", add_special_tokens=False).tokens
    assert program == ["remove_lines(line_start=", "1", "2", ", line_end=", "1", "5", ")"]
    assert tokenizer.encode('normalize(source_str="Menu", target_str="")', add_special_tokens=False).tokens[0] == (
        'normalize(source_str="'
    )


def test_save_and_load(tokenizer, tmp_path):
    path = save_tokenizer(tokenizer, tmp_path / "tok")
    assert path.name == TOKENIZER_FILE
    for source in (path, path.parent):
        loaded = load_tokenizer(source)
        assert loaded.to_str() == tokenizer.to_str()
        assert loaded.encode(TRICKY[0]).ids == tokenizer.encode(TRICKY[0]).ids
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing")


def test_transformers_wrapper(tokenizer, tmp_path):
    wrapped = to_transformers(tokenizer)
    assert (wrapped.bos_token_id, wrapped.eos_token_id, wrapped.pad_token_id, wrapped.unk_token_id) == (0, 1, 2, 3)
    assert wrapped.padding_side == "left" and len(wrapped) == VOCAB
    batch = wrapped(["a", "a much longer line of text"], padding=True)
    assert batch["input_ids"][0][0] == wrapped.pad_token_id and batch["attention_mask"][0][0] == 0
    assert batch["input_ids"][1][0] == wrapped.bos_token_id
    for text in TRICKY:
        assert wrapped.decode(wrapped(text)["input_ids"], skip_special_tokens=True) == text
    assert to_transformers(tokenizer, padding_side="right").padding_side == "right"
    wrapped.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).encode(TRICKY[1]).ids == tokenizer.encode(TRICKY[1]).ids


# --- configs and models --------------------------------------------------------------------------------


def test_reference_shape_matches_the_paper():
    config = llama_config("prox_xs_0_3b")
    assert (config.hidden_size, config.intermediate_size, config.num_attention_heads) == (1280, 2048, 16)
    assert (config.num_key_value_heads, config.num_hidden_layers, config.vocab_size) == (1, 24, 32000)
    assert config.rms_norm_eps == 1e-5 and config.max_position_embeddings == 2048
    assert config.tie_word_embeddings is False
    assert config.rope_theta == 10000.0
    # paper Table 8: 354.3M (313.3M non-embedding)
    assert parameter_count(config) == 354_284_800
    assert parameter_count(config, embeddings=False) == 313_324_800


@pytest.mark.parametrize("shape", list(SHAPES))
def test_parameter_formula_matches_a_meta_build(shape):
    config = llama_config(shape)
    model = build_model(config, device="meta")  # no memory: the 0.3B shape would need 1.4 GB
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config)


def test_small_is_about_30m_with_an_8k_vocab():
    assert 28e6 < parameter_count(llama_config("small")) < 34e6


def test_config_takes_vocab_and_ids_from_the_tokenizer(tokenizer):
    for source in (tokenizer, to_transformers(tokenizer)):
        config = llama_config("tiny", tokenizer=source, initializer_range=0.1)
        assert config.vocab_size == VOCAB
        assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (0, 1, 2)
        assert config.initializer_range == 0.1
    with pytest.raises(ValueError, match="tiny, small, prox_xs_0_3b"):
        llama_config("huge")


def test_build_model_is_seeded_and_leaves_the_global_rng_alone():
    config = llama_config("tiny")
    state = torch.random.get_rng_state()
    first, same, other = build_model(config, seed=1), build_model(config, seed=1), build_model(config, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(first.state_dict()[weight], same.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


def test_tiny_model_forward_and_generate(tokenizer):
    wrapped = to_transformers(tokenizer)
    model = build_model(llama_config("tiny", tokenizer=tokenizer), seed=0).eval()
    batch = wrapped(["<doc>\nHello\n</doc>\n<program>\n", "short"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"])
        assert out.logits.shape == (2, batch["input_ids"].shape[1], VOCAB)
        assert torch.isfinite(out.loss)
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=wrapped.pad_token_id)
    assert generated.shape == (2, batch["input_ids"].shape[1] + 3)
