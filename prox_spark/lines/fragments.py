"""Stray fragments: small islands of kept text far from the page's main text, which the line refiner leaves out.

A news or blog page has one main text, and around it teasers of other articles ("More than 60,000
South Sudanese have entered Sudan…" under a menu headline), photo captions and sidebar blurbs. Each
such line reads like article prose, so a model judging lines can keep it; what gives it away is that
it stands alone, a lone kept line among removed ones, while the article is a long run of kept lines.

A *run* is a stretch of kept lines where at most ``MAX_GAP`` removed non-blank lines interrupt (a photo
credit or an ad line inside the article does not split it). A run is a stray fragment when it has fewer
words than both ``MIN_RUN_WORDS`` and ``MIN_RUN_SHARE`` of the page's largest run: a page whose runs are
all small (a list, a forum, a short note) keeps them all, and a real second section of an article is
long enough to stay.
"""

from __future__ import annotations

from typing import Sequence

#: removed non-blank lines a run may contain and stay one run
MAX_GAP = 1
#: a run below both bars is a stray fragment
MIN_RUN_WORDS = 50
MIN_RUN_SHARE = 0.2


def kept_runs(lines: Sequence[str], keep: Sequence[bool], max_gap: int = MAX_GAP) -> list[tuple[int, int, int]]:
    """``(first line, last line, words)`` of every run of kept lines (see the module docstring)."""
    if len(lines) != len(keep):
        raise ValueError(f"{len(lines)} lines but {len(keep)} decisions")
    runs: list[list[int]] = []
    removed_since: int | None = None
    for i, (line, kept) in enumerate(zip(lines, keep)):
        if not line.strip():
            continue
        if not kept:
            if removed_since is not None:
                removed_since += 1
            continue
        if runs and removed_since is not None and removed_since <= max_gap:
            runs[-1][1] = i
            runs[-1][2] += len(line.split())
        else:
            runs.append([i, i, len(line.split())])
        removed_since = 0
    return [(first, last, words) for first, last, words in runs]


def without_stray_fragments(
    lines: Sequence[str], keep: Sequence[bool], *, min_words: int = MIN_RUN_WORDS, min_share: float = MIN_RUN_SHARE,
) -> list[bool]:
    """``keep`` with every stray fragment's lines removed."""
    runs = kept_runs(lines, keep)
    out = list(keep)
    if len(runs) < 2:
        return out
    bar = min(min_words, min_share * max(words for _, _, words in runs))
    for first, last, words in runs:
        if words < bar:
            out[first : last + 1] = [False] * (last - first + 1)
    return out
