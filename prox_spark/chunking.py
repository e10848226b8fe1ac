"""Line numbering and token-budget chunking of documents for the chunk stage (prox-reference.md §2.2).

Reproduces the reference's ``trunc_text`` so chunk boundaries match the released pipeline:

- lines are ``text.split("\\n")`` (trailing empty lines kept, ``\\r`` stays inside its line);
- line ``i`` is rendered ``f"[{i:03d}]{line}"``: no space after ``]``, ``[1000]`` and up have four
  digits, and numbering runs across the whole document, not per chunk;
- a line costs the tokens of its *numbered* form, counted one line at a time with the refining
  model's tokenizer; the reference's ``encode`` adds a BOS to every line, so ``token_counter``
  counts with special tokens by default;
- greedy packing: a line joins the current chunk if the sum still fits ``max_tokens``; otherwise the
  current chunk closes and the line starts the next one; a line that alone exceeds ``max_tokens``
  becomes a chunk of its own (``oversize``; the reference sends it to the model anyway, where vLLM
  ignores the over-long prompt) and the next line starts afresh.

A chunk's ``n_tokens`` is that sum of per-line counts, the budget quantity, not the token count of the
joined text (which has one BOS in all and merges across newlines may differ).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from prox_spark.prompts import Encoder, encode_text

#: the reference's chunk budget in tokens of the chunk model's tokenizer
DEFAULT_MAX_TOKENS = 1500

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document, ready for the chunk prompt."""

    #: position of the chunk within its document, from 0; programs are merged back in this order
    chunk_index: int
    #: global number of the first and last line it holds (inclusive)
    first_line: int
    last_line: int
    #: the numbered lines joined with "\n"
    text: str
    #: sum of the per-line token counts
    n_tokens: int
    #: one line alone over the budget (the reference's "FlagAsSkipped" case)
    oversize: bool


#: columns of ``chunk_frame``: the document id, then ``Chunk``'s fields
CHUNK_COLUMNS = ("doc_id", *(field.name for field in fields(Chunk)))


def number_line(index: int, line: str) -> str:
    """``[007]line``: zero-padded to three digits, no space, wider from 1000 on."""
    return f"[{index:03d}]{line}"


def numbered_lines(text: str) -> list[str]:
    """Every line of ``text`` with its global number, split on ``"\\n"`` only, as the executor splits."""
    return [number_line(index, line) for index, line in enumerate(text.split("\n"))]


def chunk_document(text: str, count_tokens: CountTokens, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Chunk]:
    """Pack the numbered lines of ``text`` into chunks of at most ``max_tokens`` (except oversize lines)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    numbered = numbered_lines(text)
    chunks: list[Chunk] = []
    lines: list[str] = []
    total = 0
    for index, line in enumerate(numbered):
        cost = count_tokens(line)
        if total + cost <= max_tokens:
            lines.append(line)
            total += cost
            continue
        if lines:
            chunks.append(_chunk(len(chunks), index, lines, total, oversize=False))
        if cost > max_tokens:
            chunks.append(_chunk(len(chunks), index + 1, [line], cost, oversize=True))
            lines, total = [], 0
        else:
            lines, total = [line], cost
    if lines:
        chunks.append(_chunk(len(chunks), len(numbered), lines, total, oversize=False))
    return chunks


def _chunk(chunk_index: int, end: int, lines: list[str], n_tokens: int, *, oversize: bool) -> Chunk:
    """The chunk of ``lines``, whose last line is line ``end - 1`` of the document."""
    return Chunk(chunk_index, end - len(lines), end - 1, "\n".join(lines), n_tokens, oversize)


def chunk_frame(
    doc_ids: Iterable[object],
    texts: Iterable[str | None],
    count_tokens: CountTokens,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> pd.DataFrame:
    """One row per chunk (``CHUNK_COLUMNS``) for a batch of documents: the body of the chunk-stage UDF.

    ``doc_id`` keeps the dtype of ``doc_ids`` (a pandas Series or numpy array), so the Arrow schema of
    the UDF's output does not depend on the batch. Empty texts give no rows: the reference skips them
    (a doc dropped at the doc stage has text ""). A missing text is an upstream bug (quarantine should
    have caught it) and raises, naming the doc.
    """
    ids, rows = [], []
    for doc_id, text in zip(doc_ids, texts):
        if not isinstance(text, str):
            raise ValueError(f"doc {doc_id!r}: text must be a string, got {text!r}")
        if text:
            for chunk in chunk_document(text, count_tokens, max_tokens):
                ids.append(doc_id)
                rows.append(chunk)
    return pd.DataFrame(
        {
            "doc_id": pd.Series(ids, dtype=getattr(doc_ids, "dtype", object)),
            "chunk_index": np.array([c.chunk_index for c in rows], dtype=np.int64),
            "first_line": np.array([c.first_line for c in rows], dtype=np.int64),
            "last_line": np.array([c.last_line for c in rows], dtype=np.int64),
            "text": pd.Series([c.text for c in rows], dtype=object),
            "n_tokens": np.array([c.n_tokens for c in rows], dtype=np.int64),
            "oversize": np.array([c.oversize for c in rows], dtype=bool),
        },
        columns=list(CHUNK_COLUMNS),
    )


def token_counter(tokenizer: Encoder, *, add_special_tokens: bool = True) -> CountTokens:
    """``count_tokens`` for a ``tokenizers.Tokenizer`` or transformers tokenizer.

    ``add_special_tokens=True`` (the reference's way) adds the tokenizer's BOS to every line's count.
    """
    return lambda line: len(encode_text(tokenizer, line, add_special_tokens=add_special_tokens))
