"""Keep/remove labels for every line of a noisy page, from a clean text of the same page.

The clean text is human gold main text (the gold cleaning sets) or an extractor's output (the
trafilatura segments' teacher). A line *carries* clean text when most of its word 4-grams occur in the
clean text: the same shingles the cleaning metric scores (``prox_spark.evaluation.shingles``), so a
line labelled keep is one whose text the metric wants. A line of one to three words has no 4-gram of
its own; it is kept only when it is a whole line of the clean text (a heading, a byline), because a
short menu entry ("Home", "Kontakt") occurs inside almost any article by chance. Human snippets, where a
page has them, win: a line holding a must-keep snippet is kept, one holding only must-remove snippets
is removed. Blank lines get no label (``None``): they carry no text, and rendering decides them from
their neighbours (``prox_spark.lines.render``).
"""

from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)
#: share of a line's 4-grams that must occur in the clean text for the line to be kept
CARRIES = 0.5
N = 4


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _grams(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + N]) for i in range(len(tokens) - N + 1)}


def line_labels(
    noisy_text: str,
    clean_text: str,
    *,
    must_keep: Sequence[str] = (),
    must_remove: Sequence[str] = (),
) -> list[bool | None]:
    """Per ``noisy_text.split("\\n")`` line: True keep, False remove, None blank (see the module docstring)."""
    clean_grams = _grams(_tokens(clean_text))
    clean_lines = {tuple(_tokens(line)) for line in clean_text.split("\n")}
    keep_snippets = [s for s in must_keep if s and s in noisy_text]
    remove_snippets = [s for s in must_remove if s and s in noisy_text]
    labels: list[bool | None] = []
    for line in noisy_text.split("\n"):
        if not line.strip():
            labels.append(None)
            continue
        if any(s in line for s in keep_snippets):
            labels.append(True)
            continue
        if any(s in line for s in remove_snippets):
            labels.append(False)
            continue
        tokens = _tokens(line)
        if len(tokens) >= N:
            grams = _grams(tokens)
            labels.append(len(grams & clean_grams) >= CARRIES * len(grams))
        else:
            labels.append(bool(tokens) and tuple(tokens) in clean_lines)
    return labels
