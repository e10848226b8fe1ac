"""Gopher quality and repetition filters (Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 and table A1), with the published thresholds as defaults.

The paper gives thresholds, not code. Where it leaves a definition open, this module picks the reading
below and says why; datatrove's ``GopherQualityFilter`` / ``GopherRepetitionFilter`` (what FineWeb ran)
was used as a cross-check of the thresholds and comparison directions (``>`` for maxima, ``<`` for minima).

- Words are whitespace-separated tokens (the paper's unit, no tokenizer download on workers). For counts,
  mean length and stop words a token is stripped of leading/trailing punctuation and symbols, and
  symbol-only tokens are not words; the alphabetic-word ratio is over all tokens, so symbol junk counts
  against it.
- Stop words: at least two *different* words of the list, the paper's wording ("contain at least two of
  the following English words"), matched case-insensitively.
- Bullet and ellipsis line ratios are over non-blank lines, so blank separator lines do not dilute a list.
- Repetition fractions are character fractions: duplicated lines/paragraphs over the characters of all
  lines/paragraphs; n-gram fractions over the characters of all words (spaces excluded). A word covered
  by several overlapping n-grams is counted once, as the paper asks. "Duplicate" means an occurrence after
  the first (datatrove's reading). A top n-gram that occurs once is not a repetition and scores 0.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Sequence

from prox_spark.rules.base import RuleResult, dropped, fraction, kept

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
#: Line-leading characters that mark a list item in extracted web text.
BULLETS = ("•", "●", "◦", "▪", "‣", "⁃", "-", "*", "–")
ELLIPSES = ("...", "…")

_EDGE_SYMBOLS = re.compile(r"^[\W_]+|[\W_]+$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def words_of(tokens: Iterable[str]) -> list[str]:
    """Tokens with surrounding punctuation/symbols removed; symbol-only tokens are not words."""
    return [word for word in (_EDGE_SYMBOLS.sub("", token) for token in tokens) if word]


def find_duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(number of items seen before, their total characters): the first occurrence is not a duplicate."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


@dataclass(frozen=True)
class GopherQuality:
    """Gopher's quality filter: document length, word shape, symbols, lists, alphabetic words, stop words."""

    name: str = "gopher_quality"
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: frozenset[str] = STOP_WORDS

    def apply(self, text: str) -> RuleResult:
        tokens = text.split()
        words = words_of(tokens)
        n_words = len(words)
        if n_words == 0 or n_words < self.min_doc_words:
            return dropped(text, "gopher_short_doc")
        if n_words > self.max_doc_words:
            return dropped(text, "gopher_long_doc")

        mean_length = sum(map(len, words)) / n_words
        if mean_length < self.min_avg_word_length:
            return dropped(text, "gopher_below_avg_word_length")
        if mean_length > self.max_avg_word_length:
            return dropped(text, "gopher_above_avg_word_length")

        if text.count("#") / n_words > self.max_symbol_word_ratio:
            return dropped(text, "gopher_too_many_hashes")
        if (text.count("...") + text.count("…")) / n_words > self.max_symbol_word_ratio:
            return dropped(text, "gopher_too_many_ellipsis")

        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if fraction(sum(line.startswith(BULLETS) for line in lines), len(lines)) > self.max_bullet_lines_ratio:
            return dropped(text, "gopher_too_many_bullets")
        if fraction(sum(line.endswith(ELLIPSES) for line in lines), len(lines)) > self.max_ellipsis_lines_ratio:
            return dropped(text, "gopher_too_many_end_ellipsis")

        alpha_tokens = sum(any(char.isalpha() for char in token) for token in tokens)
        if alpha_tokens / len(tokens) < self.min_alpha_words_ratio:
            return dropped(text, "gopher_below_alpha_threshold")

        if len({word.lower() for word in words} & self.stop_words) < self.min_stop_words:
            return dropped(text, "gopher_not_enough_stop_words")
        return kept(text)


@dataclass(frozen=True)
class GopherRepetition:
    """Gopher's repetition filter: duplicated paragraphs and lines, over-frequent and duplicated n-grams.

    Checks run paragraphs → lines → top n-grams → duplicated n-grams, so a repeated paragraph is reported
    as such rather than as the repeated lines it contains.
    """

    name: str = "gopher_repetition"
    max_dup_para_frac: float = 0.30
    max_dup_para_char_frac: float = 0.20
    max_dup_line_frac: float = 0.30
    max_dup_line_char_frac: float = 0.20
    #: (n, max character fraction of the most frequent n-gram)
    max_top_ngram_char_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    #: (n, max character fraction of duplicated n-grams)
    max_dup_ngram_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )

    def apply(self, text: str) -> RuleResult:
        paragraphs = [part.strip() for part in _PARAGRAPH_BREAK.split(text) if part.strip()]
        reason = _duplicate_reason(paragraphs, "para", self.max_dup_para_frac, self.max_dup_para_char_frac)
        if reason:
            return dropped(text, reason)

        lines = [line.strip() for line in text.split("\n") if line.strip()]
        reason = _duplicate_reason(lines, "line", self.max_dup_line_frac, self.max_dup_line_char_frac)
        if reason:
            return dropped(text, reason)

        words = text.split()
        # prefix[i] = characters of words[:i], so any word span's characters cost O(1).
        prefix = [0, *accumulate(map(len, words))]
        for n, max_frac in self.max_top_ngram_char_frac:
            if fraction(_top_ngram_chars(words, prefix, n), prefix[-1]) > max_frac:
                return dropped(text, f"gopher_top_{n}_gram")
        for n, max_frac in self.max_dup_ngram_char_frac:
            if fraction(_dup_ngram_chars(words, prefix, n), prefix[-1]) > max_frac:
                return dropped(text, f"gopher_dup_{n}_gram")
        return kept(text)


def _duplicate_reason(items: list[str], unit: str, max_frac: float, max_char_frac: float) -> str | None:
    count, chars = find_duplicates(items)
    if fraction(count, len(items)) > max_frac:
        return f"gopher_dup_{unit}_frac"
    if fraction(chars, sum(map(len, items))) > max_char_frac:
        return f"gopher_dup_{unit}_char_frac"
    return None


def _ngrams(words: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(words[i:] for i in range(n)))


def _top_ngram_chars(words: list[str], prefix: list[int], n: int) -> int:
    """Characters covered by the most frequent n-gram's occurrences (0 if no n-gram repeats)."""
    counts = Counter(_ngrams(words, n))
    if not counts:
        return 0
    top, count = counts.most_common(1)[0]
    if count < 2:
        return 0
    return _covered_chars((i for i, gram in enumerate(_ngrams(words, n)) if gram == top), n, prefix)


def _dup_ngram_chars(words: list[str], prefix: list[int], n: int) -> int:
    """Characters covered by n-gram occurrences whose n-gram was already seen earlier in the document."""
    grams = list(_ngrams(words, n))
    if len(set(grams)) == len(grams):  # the usual case for clean text, decided without a Python loop
        return 0
    seen: set[tuple[str, ...]] = set()
    repeats = []
    for start, gram in enumerate(grams):
        if gram in seen:
            repeats.append(start)
        else:
            seen.add(gram)
    return _covered_chars(repeats, n, prefix)


def _covered_chars(starts: Iterable[int], n: int, prefix: list[int]) -> int:
    """Characters of the union of word spans ``[start, start + n)``; ``starts`` ascend, overlaps count once."""
    covered = end = 0
    for start in starts:
        covered += prefix[start + n] - prefix[max(start, end)]
        end = start + n
    return covered
