"""Per-line inputs of the line refiner: cheap layout features and hashed tokens, for every line of a page.

The model sees the whole page as a sequence of lines (the executor's lines: ``text.split("\\n")``), so
these features describe one line on its own; what its neighbours look like is the model's job. Tokens
are hashed (crc32, lower-cased, digits folded to ``0``) into a fixed number of buckets, so the model
needs no tokenizer file and any language or script maps somewhere. Training and serving both call
``page_features``: the features are defined once, and ``FEATURE_VERSION`` goes into the model's manifest
so a graph trained on other features fails to load instead of scoring garbage.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: bump whenever a feature or the hashing changes (checked against the manifest at load time)
FEATURE_VERSION = 1
#: token ids per line (longer lines keep their first tokens; their length is in the dense features)
MAX_TOKENS_PER_LINE = 32
DEFAULT_BUCKETS = 16384

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)
_DIGITS = re.compile(r"\d")
_BULLET_START = re.compile(r"^[•*·►▸▪●○◦»>|–—\-]")
_TERMINAL = re.compile(r"[.!?:;\"'”“»)…]$")
_URLISH = re.compile(r"https?://|www\.|\.(?:com|org|net|de|html?)\b|@\w", re.IGNORECASE)
_COPYRIGHT = re.compile(r"©|\(c\)|copyright|all rights reserved", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_TIME_OR_DATE = re.compile(r"\b\d{1,2}[:./]\d{1,2}(?:[:./]\d{2,4})?\b")
_SEPARATORS = re.compile(r"[|»›·•/]")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")

#: names of the dense features, in column order
DENSE_FEATURES = (
    "log_chars", "log_words", "blank", "alpha_ratio", "digit_ratio", "upper_ratio", "punct_ratio",
    "terminal_punct", "bullet_start", "titlecase_words", "log_separators", "urlish", "copyright",
    "position", "position_from_end", "log_page_lines", "log_repeats", "mean_word_len", "short_words",
    "commas_per_word", "periods_per_word", "year", "time_or_date", "indented", "chars_vs_page_max",
    "share_of_page_words", "all_caps", "log_sentence_ends",
)
N_DENSE = len(DENSE_FEATURES)


@dataclass(frozen=True)
class PageFeatures:
    """One page's model inputs: ``dense`` [lines, N_DENSE] float32, ``tokens`` [lines, T] int64 (0 = pad)."""

    dense: np.ndarray
    tokens: np.ndarray

    @property
    def lines(self) -> int:
        return int(self.dense.shape[0])


def token_ids(line: str, buckets: int = DEFAULT_BUCKETS) -> list[int]:
    """Hashed ids (1..buckets-1) of the line's first ``MAX_TOKENS_PER_LINE`` tokens."""
    tokens = _TOKEN.findall(_DIGITS.sub("0", line.lower()))[:MAX_TOKENS_PER_LINE]
    return [zlib.crc32(token.encode("utf-8")) % (buckets - 1) + 1 for token in tokens]


def page_features(text: str, buckets: int = DEFAULT_BUCKETS) -> PageFeatures:
    """Features of every line of ``text`` (``text.split("\\n")``, as the executor numbers them)."""
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    repeats = Counter(s for s in stripped if s)
    words = [s.split() for s in stripped]
    page_words = max(1, sum(len(w) for w in words))
    page_max_chars = max(1, max(len(s) for s in stripped))
    n = len(lines)
    dense = np.zeros((n, N_DENSE), dtype=np.float32)
    tokens = np.zeros((n, MAX_TOKENS_PER_LINE), dtype=np.int64)
    log_lines = math.log1p(n) / 8
    for i, (line, s, ws) in enumerate(zip(lines, stripped, words)):
        ids = token_ids(s, buckets) if s else []
        tokens[i, : len(ids)] = ids
        dense[i] = _line_vector(line, s, ws, i, n, log_lines, repeats, page_words, page_max_chars)
    return PageFeatures(dense, tokens)


def _line_vector(
    line: str, s: str, ws: list[str], i: int, n: int, log_lines: float, repeats: Counter,
    page_words: int, page_max_chars: int,
) -> list[float]:
    chars = len(s)
    position = (i / (n - 1)) if n > 1 else 0.0
    if not chars:
        return [0.0, 0.0, 1.0] + [0.0] * 10 + [position, 1.0 - position, log_lines] + [0.0] * (N_DENSE - 16)
    letters = sum(map(str.isalpha, s))
    digits = sum(map(str.isdigit, s))
    upper = sum(map(str.isupper, s))
    spaces = sum(map(str.isspace, s))
    punct = chars - letters - digits - spaces
    n_words = len(ws)
    word_chars = [len(w) for w in _WORD.findall(s)]
    return [
        math.log1p(chars) / 6,
        math.log1p(n_words) / 5,
        0.0,
        letters / chars,
        digits / chars,
        upper / letters if letters else 0.0,
        punct / chars,
        1.0 if _TERMINAL.search(s) else 0.0,
        1.0 if _BULLET_START.match(s) else 0.0,
        sum(w[:1].isupper() for w in ws) / n_words,
        math.log1p(len(_SEPARATORS.findall(s))) / 3,
        1.0 if _URLISH.search(s) else 0.0,
        1.0 if _COPYRIGHT.search(s) else 0.0,
        position,
        1.0 - position,
        log_lines,
        math.log1p(repeats[s] - 1) / 3,
        (sum(word_chars) / len(word_chars) / 10) if word_chars else 0.0,
        (sum(1 for c in word_chars if c <= 3) / len(word_chars)) if word_chars else 0.0,
        min(s.count(",") / n_words, 2.0),
        min(s.count(".") / n_words, 2.0),
        1.0 if _YEAR.search(s) else 0.0,
        1.0 if _TIME_OR_DATE.search(s) else 0.0,
        1.0 if line[:1].isspace() else 0.0,
        chars / page_max_chars,
        n_words / page_words,
        1.0 if letters > 3 and upper == letters else 0.0,
        math.log1p(len(_SENTENCE_END.findall(s))) / 3,
    ]


def pad_pages(pages: Sequence[PageFeatures]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of pages as the graph's inputs: ``dense`` [B, L, F], ``tokens`` [B, L, T], ``mask`` [B, L],
    padded to the longest page (padding is masked, so it does not change any page's scores)."""
    longest = max(p.lines for p in pages)
    dense = np.zeros((len(pages), longest, N_DENSE), dtype=np.float32)
    tokens = np.zeros((len(pages), longest, MAX_TOKENS_PER_LINE), dtype=np.int64)
    mask = np.zeros((len(pages), longest), dtype=np.float32)
    for row, page in enumerate(pages):
        dense[row, : page.lines], tokens[row, : page.lines], mask[row, : page.lines] = page.dense, page.tokens, 1.0
    return dense, tokens, mask
