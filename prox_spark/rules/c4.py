"""C4's line and page rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", §2.2), as tfds' ``c4_utils.clean_page`` and datatrove's ``C4QualityFilter`` apply
them: per line, in this order (blank lines go first, under their own counter, so that they do not swamp
the punctuation counter),

1. drop a line holding a word longer than 1000 characters;
2. drop a line that does not end in terminal punctuation (. ? ! ") or ends in "...";
3. drop a line with fewer than 3 words;
4. drop the whole page if the line contains "lorem ipsum";
5. drop a line containing "javascript";
6. drop the whole page if the line contains "{";
7. drop a line with a cookie / terms-of-use phrase;

then drop the page if the kept lines hold fewer than 5 sentences. Checks 4 and 6 only see lines that
survived 1–3, as in the reference implementation: a "{" on a line that would be removed anyway does not
drop the page. All checks except the length ones are case-insensitive.

Deviations, both so that kept lines are always a subsequence of the input lines (the refined text must be
traceable to the source, line for line):

- kept lines are returned verbatim (checks use the stripped line; the reference strips them);
- Wikipedia citation markers ("[1]", "[edit]") are not cut out of lines (tfds does), since that edits
  inside a line. The bad-words page filter needs a downloaded word list and is left out, as in datatrove.

Sentences are counted with a stdlib splitter (terminal punctuation, optional closing quote or bracket,
then whitespace) instead of nltk's punkt: it over-counts lines with abbreviations such as "Dr. Smith".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from prox_spark.rules.base import RuleResult, dropped, kept

END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)

#: Line checks that drop the whole page rather than the line.
PAGE_REASONS = frozenset({"c4_lorem_ipsum", "c4_curly_bracket"})

_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+")


def count_sentences(line: str) -> int:
    """Sentences in one line: pieces between terminal punctuation followed by whitespace."""
    return sum(1 for part in _SENTENCE_BREAK.split(line) if part.strip())


@dataclass(frozen=True)
class C4Quality:
    """C4's heuristic line filter and page filter; edits the text (removes lines) and may drop the page.

    ``filter_no_terminal_punct=False`` is the setting FineWeb ran C4 with (its own line-punctuation ratio
    replaces the per-line rule, which removed too much text for them).
    """

    name: str = "c4"
    filter_no_terminal_punct: bool = True
    min_words_per_line: int = 3
    max_word_length: int = 1000
    min_num_sentences: int = 5

    def apply(self, text: str) -> RuleResult:
        kept_lines: list[str] = []
        removed: Counter[str] = Counter()
        sentences = 0
        for raw in text.split("\n"):
            line = raw.strip()
            reason = self._line_reason(line)
            if reason in PAGE_REASONS:
                return dropped(text, reason)
            if reason:
                removed[reason] += 1
                continue
            sentences += count_sentences(line)
            kept_lines.append(raw)
        if sentences < self.min_num_sentences:
            return dropped(text, "c4_too_few_sentences")
        return kept("\n".join(kept_lines), removed)

    def _line_reason(self, line: str) -> str | None:
        """Why this (stripped) line goes, or None to keep it; page-level reasons are returned the same way."""
        if not line:
            return "c4_line_empty"
        words = line.split()
        if any(len(word) > self.max_word_length for word in words):
            return "c4_line_long_word"
        if self.filter_no_terminal_punct and (not line.endswith(END_MARKS) or line.endswith(ELLIPSIS)):
            return "c4_line_no_terminal_punct"
        if len(words) < self.min_words_per_line:
            return "c4_line_too_few_words"
        lower = line.lower()
        if "lorem ipsum" in lower:
            return "c4_lorem_ipsum"
        if "javascript" in lower:
            return "c4_line_javascript"
        if "{" in line:
            return "c4_curly_bracket"
        if any(phrase in lower for phrase in POLICY_PHRASES):
            return "c4_line_policy"
        return None
