"""FineWeb's custom quality filter (Penedo et al. 2024, "The FineWeb Datasets"; datatrove
``FineWebQualityFilter``), with its published thresholds as defaults.

FineWeb chose these on top of Gopher and C4 to catch what those miss in extracted web text: pages that are
mostly unpunctuated lines (menus, tables), mostly short lines (lists of links), repeated boilerplate lines,
and one-word-per-line lists. Definitions follow datatrove's, with two deviations:

- line-end checks ignore trailing whitespace (so CRLF text is judged like LF text);
- the newline ratio divides by word tokens from a stdlib regex (words, with inner apostrophes, and runs of
  punctuation) rather than nltk's ``word_tokenize``: close in count for prose, no model download on workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prox_spark.rules.base import RuleResult, dropped, fraction, kept
from prox_spark.rules.gopher import find_duplicates

STOP_CHARS = (".", "'", '"', "!", "?")

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]+")


@dataclass(frozen=True)
class FineWebQuality:
    """Drops pages with few punctuated lines, many short lines, duplicated lines, or list-like layout."""

    name: str = "fineweb_quality"
    #: drop when the fraction of lines ending in ``STOP_CHARS`` is at most this
    line_punct_thr: float = 0.12
    #: drop when the fraction of lines of at most ``short_line_length`` characters is at least this
    short_line_thr: float = 0.67
    short_line_length: int = 30
    #: drop when characters in duplicated non-blank lines over all non-newline characters is at least this
    char_duplicates_ratio: float = 0.01
    #: drop when newlines per word token exceed this
    new_line_ratio: float = 0.3

    def apply(self, text: str) -> RuleResult:
        lines = [line.rstrip() for line in text.split("\n")]
        if fraction(sum(line.endswith(STOP_CHARS) for line in lines), len(lines)) <= self.line_punct_thr:
            return dropped(text, "fineweb_line_punct_ratio")
        if fraction(sum(len(line) <= self.short_line_length for line in lines), len(lines)) >= self.short_line_thr:
            return dropped(text, "fineweb_short_line_ratio")

        _, duplicate_chars = find_duplicates([line for line in lines if line.strip()])
        if fraction(duplicate_chars, len(text) - text.count("\n")) >= self.char_duplicates_ratio:
            return dropped(text, "fineweb_char_dup_ratio")

        if fraction(text.count("\n"), len(_TOKEN.findall(text))) > self.new_line_ratio:
            return dropped(text, "fineweb_list_ratio")
        return kept(text)
