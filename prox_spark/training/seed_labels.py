"""Line labels for the seed programs: what the gold chunk program does with each line of a noisy page,
judged against a *clean reference* of the same page (a trafilatura or resiliparse extraction, snippets a
person marked, or ``heuristic_clean_text``).

``label_lines`` gives every noisy line (the executor's ``split("\\n")`` lines) one label:

- ``remove``: the line's content (whitespace collapsed, list bullets stripped) does not occur in the
  reference; lines of fewer than ``short_line_chars`` characters must match a whole reference line,
  because a short menu entry ("Home", "Kontakt") occurs inside almost any article by chance;
- ``keep``: it does occur; when only a part of the line occurs (a prefix or suffix absent from the
  reference, at least ``min_partial_chars`` left), the line is kept and the absent prefix/suffix becomes
  ``normalize(source_str="...", target_str="")`` when the reference parser can read it back: no ``"``,
  ``)``, ``,``, ``=``, newline or carriage return in it (§1.4), and it occurs once in the whole page (the
  executor's replace is global);
- ``blank``: whitespace only; it joins a removal when the lines around it (inside its chunk) are removed
  (``resolve_blanks``), so a menu with blank lines in between is one ``remove_lines`` and not five.

Snippet labels win over the reference: a line holding a ``must_keep`` snippet is kept, one holding a
``must_remove`` snippet (and no must-keep one) is removed.

These are exact-substring labels for writing *programs* (a partial line becomes a ``normalize``); the line
model's keep/remove labels, scored by shingles, are ``prox_spark.training.line_labels``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: characters the reference parser cannot read inside a normalize source (prox-reference.md §1.4)
FORBIDDEN_IN_SOURCE = ('"', ")", ",", "=", "\n", "\r")

_BULLET = re.compile(r"^(?:[\s•*·►▸▪●○◦»>|–—-]+|\d{1,3}[.)]\s+)+")
#: soft hyphen and zero-width characters: extractors drop them, page text keeps them
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))


def collapse_ws(text: str) -> str:
    """Whitespace runs (any Unicode whitespace) to one space, ends stripped; invisible characters
    (soft hyphen, zero-width) removed."""
    return " ".join(text.translate(_INVISIBLE).split())


def line_core(line: str) -> str:
    """What a line says: whitespace collapsed and leading list markers ("• ", "- ", "3. ") stripped.

    Extractors render list items differently (trafilatura writes "- " where the page text has "• "),
    so lines are compared without them.
    """
    return _BULLET.sub("", collapse_ws(line)).strip()


@dataclass(frozen=True)
class LineLabel:
    """What the gold program does with one noisy line."""

    action: Literal["keep", "remove", "blank"]
    #: raw substrings of the line to delete with ``normalize`` (kept lines only)
    normalize: tuple[str, ...] = ()
    #: must_keep | must_remove | reference | partial | absent | blank
    why: str = ""


class CleanReference:
    """A clean text prepared for membership tests of noisy lines."""

    def __init__(self, clean_text: str, *, short_line_chars: int = 20) -> None:
        cores = [line_core(line) for line in clean_text.split("\n")]
        self.lines = {core for core in cores if core}
        self.joined = " " + " ".join(core for core in cores if core) + " "
        self.short_line_chars = short_line_chars

    def contains(self, core: str) -> bool:
        """A long core anywhere in the reference; a short one only as a whole reference line."""
        if not core:
            return False
        if len(core) < self.short_line_chars:
            return core in self.lines
        return core in self.joined


def _cut_points(line: str) -> list[int]:
    """Positions where a new word starts: after whitespace or punctuation, or a lower->upper case join
    ("LübeckDie"), which is how menus and titles glue onto content in extracted text."""
    points = []
    for i in range(1, len(line)):
        before, here = line[i - 1], line[i]
        if here.isspace():
            continue
        if before.isspace() or (before.islower() and here.isupper()) or (not before.isalnum() and here.isalnum()):
            points.append(i)
    return points


def _partial(
    line: str, reference: CleanReference, min_chars: int, max_line_chars: int = 400, max_cuts: int = 40
) -> tuple[str, str, str] | None:
    """``(prefix, kept, suffix)`` with ``kept`` the longest present part left after cutting an absent
    prefix and/or suffix at word starts, or None when no part of ``min_chars`` or more is present.

    Both ends are cut together on lines up to ``max_line_chars``; longer lines are cut at one end only
    (a glued-on title or caption), which keeps the search linear in the line's length.
    """
    cuts = _cut_points(line)
    starts = [0] + cuts[:max_cuts]
    ends = [len(line)] + list(reversed(cuts))[:max_cuts]
    if len(line) > max_line_chars:
        pairs = [(start, len(line)) for start in starts] + [(0, end) for end in ends]
    else:
        pairs = [(start, end) for start in starts for end in ends]
    pairs = sorted({(start, end) for start, end in pairs if end > start}, key=lambda p: (p[0] - p[1], p[0]))
    for start, end in pairs:  # longest part first: the first present one is the answer
        kept = line[start:end]
        core = line_core(kept)
        if len(core) >= min_chars and reference.contains(core):
            return line[:start], kept, line[end:]
    return None


def normalize_source_ok(source: str, page_text: str) -> bool:
    """A normalize source the reference parser reads back exactly and whose global replace hits only it."""
    if not source.strip() or len(source.strip()) < 2:
        return False
    if any(char in source for char in FORBIDDEN_IN_SOURCE):
        return False
    return page_text.count(source) == 1


def label_lines(
    noisy_text: str,
    clean_text: str,
    *,
    must_keep: Sequence[str] = (),
    must_remove: Sequence[str] = (),
    short_line_chars: int = 20,
    min_partial_chars: int = 20,
    allow_normalize: bool = True,
) -> list[LineLabel]:
    """One label per ``noisy_text.split("\\n")`` line (the executor's lines), see the module docstring."""
    reference = CleanReference(clean_text, short_line_chars=short_line_chars)
    keep_snippets = [s for s in must_keep if s and s in noisy_text]
    remove_snippets = [s for s in must_remove if s and s in noisy_text]
    labels: list[LineLabel] = []
    for line in noisy_text.split("\n"):
        core = line_core(line)
        if not core:
            labels.append(LineLabel("blank", why="blank"))
        elif any(s in line for s in keep_snippets):
            labels.append(LineLabel("keep", why="must_keep"))
        elif any(s in line for s in remove_snippets):
            labels.append(LineLabel("remove", why="must_remove"))
        elif reference.contains(core):
            labels.append(LineLabel("keep", why="reference"))
        else:
            part = _partial(line, reference, min_partial_chars)
            if part is None:
                labels.append(LineLabel("remove", why="absent"))
                continue
            prefix, _, suffix = part
            indent = len(prefix) - len(prefix.lstrip())
            prefix = prefix[indent:]  # the line's indentation stays: only the absent words go
            sources = ()
            if allow_normalize:
                sources = tuple(s for s in (prefix, suffix) if s.strip() and normalize_source_ok(s, noisy_text))
            labels.append(LineLabel("keep", normalize=sources, why="partial"))
    return labels


#: a line counts as content for ``heuristic_clean_text`` with at least this many words ...
HEURISTIC_MIN_WORDS = 12
#: ... or this many and sentence-final punctuation
HEURISTIC_SENTENCE_WORDS = 5


def heuristic_clean_text(noisy_text: str) -> str:
    """Fallback reference for pages without an extraction: the lines that read like prose.

    A line is kept when it has ≥ ``HEURISTIC_MIN_WORDS`` words, or ≥ ``HEURISTIC_SENTENCE_WORDS`` words
    and ends with ``.``, ``!``, ``?``, ``:`` or a closing quote, and fewer than a third of its words are
    separators (``|``, ``»``, ``·``, ``/``) - menus and breadcrumbs are long word lists without sentences.
    """
    kept = []
    for line in noisy_text.split("\n"):
        words = line.split()
        separators = sum(1 for w in words if w in {"|", "»", "·", "/", "•", ">", "-"})
        if not words or separators * 3 >= len(words):
            continue
        sentence = line.rstrip().endswith((".", "!", "?", ":", '"', "“", "”", "»"))
        if len(words) >= HEURISTIC_MIN_WORDS or (sentence and len(words) >= HEURISTIC_SENTENCE_WORDS):
            kept.append(line)
    return "\n".join(kept)


def resolve_blanks(labels: Sequence[LineLabel], first: int, last: int) -> list[bool]:
    """Removed-or-not for lines ``first..last`` (one chunk): blank lines join removals around them.

    A blank run is removed when the non-blank lines on both sides *within the chunk* are removed (a
    chunk edge counts as removed), and at least one of the two sides is a real removed line.
    """
    actions = [labels[i].action for i in range(first, last + 1)]
    removed = [a == "remove" for a in actions]
    i = 0
    while i < len(actions):
        if actions[i] != "blank":
            i += 1
            continue
        j = i
        while j < len(actions) and actions[j] == "blank":
            j += 1
        left = actions[i - 1] if i > 0 else None  # None: chunk edge
        right = actions[j] if j < len(actions) else None
        if left != "keep" and right != "keep" and "remove" in (left, right):
            for k in range(i, j):
                removed[k] = True
        i = j
    return removed
