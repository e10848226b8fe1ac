"""Line decisions → a ProX chunk program: consecutive removed lines become one ``remove_lines`` op.

The program is what the executor, the ``programs`` table and the audits already read, so a line model's
decisions are audited and re-executed exactly like a generative model's. Blank lines carry no text: one
is removed only when the lines on both sides of it are (or it sits at the page's edge next to a removed
line), so a menu broken by blank lines is one op and a kept paragraph keeps its spacing.
"""

from __future__ import annotations

from typing import Sequence

from prox_spark.lines.cuts import NO_CUTS, PageCuts

KEEP_CHUNK = "keep_chunk()"


#: on a page where no line reaches the threshold, lines scoring at least this share of the page's best
#: score are kept instead
EMPTY_PAGE_FALLBACK = 0.5


def line_decisions(
    lines: Sequence[str], keep_scores: Sequence[float], threshold: float, relative: float = 0.0, *,
    cuts: PageCuts = NO_CUTS,
) -> list[bool]:
    """Per line, keep (True) or remove: a non-blank line is kept when its score reaches ``threshold`` and
    ``relative`` times the page's best score; ``cuts`` then remove what only the whole page shows
    (``prox_spark.lines.cuts``: the comment section, stray fragments).

    The relative bar reads a page the way a person does: next to a confident article body, lines the
    model only half believes in (comment threads, teasers, captions) go, while on a page without one the
    absolute threshold decides. The line refiner never empties a page on its own either: keeping or
    dropping a whole page is the doc stage's decision. So on a page where no line reaches ``threshold``,
    the lines within ``EMPTY_PAGE_FALLBACK`` of the page's best score are kept: the refiner's ranking of
    the lines still holds where its calibration does not (an unusual layout or language). A page whose
    every score is 0 stays empty.
    """
    if len(lines) != len(keep_scores):
        raise ValueError(f"{len(lines)} lines but {len(keep_scores)} scores")
    blank = [not line.strip() for line in lines]
    best = max((s for b, s in zip(blank, keep_scores) if not b), default=0.0)
    if best >= threshold:
        threshold = max(threshold, relative * best)
    elif best > 0:
        threshold = EMPTY_PAGE_FALLBACK * best
    keep: list[bool | None] = [None if b else bool(s >= threshold) for b, s in zip(blank, keep_scores)]
    before: list[bool | None] = []
    last: bool | None = None
    for decision in keep:
        before.append(last)
        if decision is not None:
            last = decision
    after: list[bool | None] = [None] * len(keep)
    last = None
    for i in range(len(keep) - 1, -1, -1):
        after[i] = last
        if keep[i] is not None:
            last = keep[i]
    decided = [
        decision if decision is not None else not (before[i] is not True and after[i] is not True)
        for i, decision in enumerate(keep)
    ]
    return cuts.apply(lines, decided)


def removed_ranges(keep: Sequence[bool], offset: int = 0) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` line ranges of the removed lines, numbered from ``offset``."""
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for i, kept in enumerate(keep):
        if not kept and start is None:
            start = i
        elif kept and start is not None:
            ranges.append((start + offset, i - 1 + offset))
            start = None
    if start is not None:
        ranges.append((start + offset, len(keep) - 1 + offset))
    return ranges


def render_program(ranges: Sequence[tuple[int, int]]) -> str:
    """The chunk program removing ``ranges``; ``keep_chunk()`` when nothing is removed."""
    if not ranges:
        return KEEP_CHUNK
    return "\n".join(f"remove_lines(line_start={a}, line_end={b})" for a, b in ranges)
