"""Shingle F1 of cleaned text against gold text, as the article-extraction benchmark scores extractors.

The definition is the shared ``tools/textscore.py`` one, restated here so the package does not depend on
a file outside it (``tests/test_evaluation.py`` checks the two agree on real gold pages):

- tokens are ``\\w+`` matches (``re.UNICODE``); shingles are token 4-grams, counted (a ``Counter``), so a
  text of fewer than 4 tokens has none;
- per page, tp / fp / fn are the shingle counts matched / only predicted / only in gold, divided by their
  sum (every page weighs the same, however long);
- precision is averaged over the pages that predicted something or matched (tp + fp > 0), recall over the
  pages whose gold has shingles (tp + fn > 0); a page with no false positive and no false negative scores
  1 on both; F1 is the harmonic mean of the two averages (not an average of per-page F1s).

Where ``textscore.py`` raises (no page predicted any shingle, or precision and recall both 0) the scores
here are 0: a cleaner that keeps nothing scores 0 instead of stopping the report.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

_TOKEN = re.compile(r"\w+", re.UNICODE)
SHINGLE_SIZE = 4


@dataclass(frozen=True)
class ShingleScore:
    """Shingle F1 and the averaged precision and recall it is made of."""

    f1: float
    precision: float
    recall: float


def shingles(text: str | None, n: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """The counted ``n``-grams of ``text``'s ``\\w+`` tokens (none when it has fewer than ``n`` tokens)."""
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i:i + n]) for i in range(max(0, len(tokens) - n + 1)))


def shingle_counts(gold: str, predicted: str) -> tuple[int, int, int]:
    """One page's (tp, fp, fn) shingle counts: matched, only predicted, only in gold."""
    g, p = shingles(gold), shingles(predicted)
    tp = sum(min(g[k], p[k]) for k in g.keys() | p.keys())
    fp = sum(max(0, p[k] - g[k]) for k in p)
    fn = sum(max(0, g[k] - p[k]) for k in g)
    return tp, fp, fn


def page_counts(gold: str, predicted: str) -> tuple[float, float, float]:
    """One page's (tp, fp, fn) shingle counts divided by their sum; (0, 0, 0) when both have no shingle."""
    tp, fp, fn = shingle_counts(gold, predicted)
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def _mean(values: list[float]) -> float:
    """``statistics.mean`` as ``textscore.py`` uses it (so the two agree bit for bit), 0 for no value."""
    return statistics.mean(values) if values else 0.0


def page_precision_recall(gold: str, predicted: str) -> tuple[float | None, float | None]:
    """One page's shingle precision and recall; None where the page does not count towards that average
    (no shingle predicted or matched; no shingle in gold)."""
    c = page_counts(gold, predicted)
    return (
        _precision(*c) if c[0] + c[1] > 0 else None,
        _recall(*c) if c[0] + c[2] > 0 else None,
    )


def shingle_f1(pairs: Iterable[tuple[str, str]]) -> ShingleScore:
    """Shingle F1 / precision / recall over ``(gold, predicted)`` page pairs."""
    pages = [page_precision_recall(gold, predicted) for gold, predicted in pairs]
    precision = _mean([p for p, _ in pages if p is not None])
    recall = _mean([r for _, r in pages if r is not None])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ShingleScore(f1=f1, precision=precision, recall=recall)
