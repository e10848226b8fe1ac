"""Doubled lines: a kept line repeated right below itself, which the line refiner leaves out.

An article states a sentence once. A page template often prints the same text twice in a row: a photo
gallery's caption as the thumbnail's list entry and again under the picture, a link's title beside its
text, a teaser's headline as the link and as the heading. Each copy reads like article prose, so a model
judging lines keeps both; side by side they give themselves away. Both copies go: one caption of a gallery
is as much a caption as two.

Two kept lines are doubled when they are next to each other among the page's non-blank lines and equal
after lower-casing and dropping leading bullets, other marks and whitespace ("• Japan's Kikuchi
hits a home run" above "Japan's Kikuchi hits a home run").
"""

from __future__ import annotations

import re
from typing import Sequence

#: what a list bullet or indentation puts in front of a line's text
_LEADING_MARKS = re.compile(r"^[\W_]+")


def _comparable(line: str) -> str:
    return _LEADING_MARKS.sub("", line.strip().lower())


def without_doubled_lines(lines: Sequence[str], keep: Sequence[bool]) -> list[bool]:
    """``keep`` with both lines of every doubled pair (see the module docstring) removed."""
    if len(lines) != len(keep):
        raise ValueError(f"{len(lines)} lines but {len(keep)} decisions")
    out = list(keep)
    non_blank = [i for i, line in enumerate(lines) if line.strip()]
    text = {i: _comparable(lines[i]) for i in non_blank if keep[i]}
    for above, below in zip(non_blank, non_blank[1:]):
        if text.get(above) and text.get(above) == text.get(below):
            out[above] = out[below] = False
    return out
