"""Line numbering and greedy token-budget chunking (prox-reference.md §2.2), with toy and real tokenizers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prox_spark.chunking import (
    CHUNK_COLUMNS,
    Chunk,
    chunk_document,
    chunk_frame,
    number_line,
    numbered_lines,
    token_counter,
)

def spans(chunks: list[Chunk]) -> list[tuple[int, int, int, bool]]:
    return [(c.first_line, c.last_line, c.n_tokens, c.oversize) for c in chunks]


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    """A real byte-level BPE tokenizer, trained on 150 shared documents in about a second."""
    from prox_spark.models.tokenizer import train_tokenizer, training_texts

    return train_tokenizer(training_texts(shared_data, max_docs=150), 600)


# --- numbering ---------------------------------------------------------------------------------------


def test_number_line_format():
    assert number_line(0, "Home") == "[000]Home"
    assert number_line(7, " x") == "[007] x"
    assert number_line(999, "") == "[999]"
    assert number_line(1000, "x") == "[1000]x"
    assert number_line(12345, "x") == "[12345]x"


def test_numbered_lines_use_python_split_semantics():
    assert numbered_lines("a\r\nb\n\n") == ["[000]a\r", "[001]b", "[002]", "[003]"]
    assert numbered_lines("") == ["[000]"]
    assert numbered_lines("only") == ["[000]only"]


# --- packing with a toy counter (characters of the numbered line) ------------------------------------

TEXT = "ab\ncd\nefgh\n\nxyz"  # numbered lengths: 7, 7, 9, 5, 8


def test_greedy_boundaries_hand_computed():
    chunks = chunk_document(TEXT, len, max_tokens=15)
    assert spans(chunks) == [(0, 1, 14, False), (2, 3, 14, False), (4, 4, 8, False)]
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    assert chunks[0].text == "[000]ab\n[001]cd"
    assert chunks[1].text == "[002]efgh\n[003]"
    assert chunks[2].text == "[004]xyz"


def test_exact_fit_is_appended():
    assert spans(chunk_document(TEXT, len, max_tokens=14)) == [(0, 1, 14, False), (2, 3, 14, False), (4, 4, 8, False)]
    expected = [(0, 0, 7, False), (1, 1, 7, False), (2, 2, 9, False), (3, 4, 13, False)]
    assert spans(chunk_document(TEXT, len, max_tokens=13)) == expected


def test_oversize_line_is_its_own_flagged_chunk_and_resets():
    chunks = chunk_document(TEXT, len, max_tokens=8)
    assert spans(chunks) == [(0, 0, 7, False), (1, 1, 7, False), (2, 2, 9, True), (3, 3, 5, False), (4, 4, 8, False)]
    assert chunks[2].text == "[002]efgh"  # untruncated


def test_oversize_first_and_consecutive_lines_make_no_empty_chunks():
    chunks = chunk_document("xxxxxxxxxx\nyyyyyyyyyy\nz", len, max_tokens=8)
    assert spans(chunks) == [(0, 0, 15, True), (1, 1, 15, True), (2, 2, 6, False)]
    assert all(c.text for c in chunks)


def test_trailing_empty_lines_are_chunked():
    chunks = chunk_document("a\n\n", len, max_tokens=100)
    assert spans(chunks) == [(0, 2, 16, False)]
    assert chunks[0].text == "[000]a\n[001]\n[002]"


def test_whitespace_word_counter():
    words = lambda line: len(line.split())  # noqa: E731
    text = "one two three\nfour five\nsix\nseven eight nine ten"
    # numbered word counts: 3, 2, 1, 4 ("[000]one" is one word)
    assert spans(chunk_document(text, words, max_tokens=5)) == [(0, 1, 5, False), (2, 3, 5, False)]


def test_numbering_is_global_past_1000_lines():
    text = "\n".join(f"line {i}" for i in range(1205))
    chunks = chunk_document(text, len, max_tokens=1500)
    assert len(chunks) > 10
    assert "\n".join(c.text for c in chunks) == "\n".join(numbered_lines(text))
    for before, after in zip(chunks, chunks[1:]):
        assert after.first_line == before.last_line + 1
        assert after.text.startswith(number_line(after.first_line, f"line {after.first_line}"))
    assert chunks[-1].text.endswith("\n[1204]line 1204")


def test_max_tokens_must_be_positive():
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_document("a", len, max_tokens=0)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab \r\t€", max_size=30), min_size=1, max_size=40),
    max_tokens=st.integers(min_value=1, max_value=60),
)
def test_packing_is_the_greedy_one(lines, max_tokens):
    """Together these properties pin the reference algorithm down: a cover, budgets, and greedy closing."""
    text = "\n".join(lines)
    chunks = chunk_document(text, len, max_tokens=max_tokens)
    numbered = numbered_lines(text)
    assert "\n".join(c.text for c in chunks) == "\n".join(numbered)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        costs = [len(line) for line in numbered[chunk.first_line : chunk.last_line + 1]]
        assert chunk.n_tokens == sum(costs)
        assert chunk.oversize == (chunk.n_tokens > max_tokens)
        assert not chunk.oversize or len(costs) == 1
    for before, after in zip(chunks, chunks[1:]):
        assert after.first_line == before.last_line + 1
        if not before.oversize:  # closed only because the next line did not fit
            assert before.n_tokens + len(numbered[after.first_line]) > max_tokens


# --- real tokenizer --------------------------------------------------------------------------------


def test_real_tokenizer_counts_bos_per_line_by_default(tokenizer):
    with_bos, without = token_counter(tokenizer), token_counter(tokenizer, add_special_tokens=False)
    # "[", three single digits, "]" and one added program token: independent of the learned merges
    assert with_bos("[000]keep_doc()") == 7
    assert without("[000]keep_doc()") == 6
    assert with_bos("[1000]") == 7


def test_real_tokenizer_hand_computed_boundaries(tokenizer):
    text = "keep_doc()\n\ndrop_doc()drop_doc()\nkeep_doc()"  # costs with BOS: 7, 6, 8, 7
    count = token_counter(tokenizer)
    assert spans(chunk_document(text, count, max_tokens=13)) == [(0, 1, 13, False), (2, 2, 8, False), (3, 3, 7, False)]
    assert spans(chunk_document(text, count, max_tokens=15)) == [(0, 1, 13, False), (2, 3, 15, False)]
    expected = [(0, 0, 7, False), (1, 1, 6, False), (2, 2, 8, True), (3, 3, 7, False)]
    assert spans(chunk_document(text, count, max_tokens=7)) == expected


def test_transformers_tokenizer_counts_the_same(tokenizer):
    from prox_spark.models.tokenizer import to_transformers

    wrapped = to_transformers(tokenizer)
    for line in ["[000]Home | Über uns", "[001]", "[1234]normalize(source_str=\"x\")"]:
        assert token_counter(wrapped)(line) == token_counter(tokenizer)(line)


def test_real_page_default_budget(tokenizer, shared_data):
    from prox_spark.models.tokenizer import shared_texts

    count = token_counter(tokenizer)
    text = max((t for _, t in zip(range(50), shared_texts(shared_data))), key=len)
    chunks = chunk_document(text, count)
    assert "\n".join(c.text for c in chunks) == "\n".join(numbered_lines(text))
    for chunk in chunks:
        assert chunk.n_tokens == sum(count(line) for line in chunk.text.split("\n"))
        assert chunk.oversize or chunk.n_tokens <= 1500


# --- batch helper ------------------------------------------------------------------------------------


def test_chunk_frame_explodes_to_rows():
    frame = chunk_frame(pd.Series([10, 11, 12], dtype="int64"), pd.Series([TEXT, "", "z"]), len, max_tokens=15)
    assert list(frame.columns) == list(CHUNK_COLUMNS)
    assert frame["doc_id"].tolist() == [10, 10, 10, 12]  # "" gives no chunk, as the reference skips it
    assert frame["chunk_index"].tolist() == [0, 1, 2, 0]
    assert frame["first_line"].tolist() == [0, 2, 4, 0]
    assert frame["text"].tolist()[-1] == "[000]z"
    assert frame["doc_id"].dtype == np.int64
    assert frame["n_tokens"].dtype == np.int64 and frame["oversize"].dtype == bool


def test_chunk_frame_empty_batch_keeps_schema():
    frame = chunk_frame(pd.Series([], dtype="string"), pd.Series([], dtype=object), len)
    assert list(frame.columns) == list(CHUNK_COLUMNS) and len(frame) == 0
    assert frame["doc_id"].dtype == "string" and frame["chunk_index"].dtype == np.int64


def test_chunk_frame_rejects_missing_text():
    with pytest.raises(ValueError, match="doc 'b'"):
        chunk_frame(pd.Series(["a", "b"]), pd.Series(["x", None]), len)
