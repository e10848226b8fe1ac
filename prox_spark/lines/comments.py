"""Where a page's reader-comment section starts, so the line refiner can leave it out.

Human gold for article extraction (the Dragnet, MSV and CleanPortalEval sets, and the article-extraction
benchmark whose shingle F1 the project is judged by) marks an article's body and leaves out the readers'
comments under it. The line refiner's training labels cannot teach that: CleanEval's gold and the
trafilatura teacher (which extracts comments by default) keep comment threads, and a thread's lines look
like article prose, so a model judging lines by their neighbours keeps them.

A comment section announces itself with a short header line written by the blog or CMS template:
"12 Comments", "Leave a Reply", "3 thoughts on “…”", "Kommentare", "Join the discussion". The section
starts at the first such line after the article has begun, that is after ``min_kept_share`` of the
page's kept words: a header above that point is a menu entry or a comment counter under the title. The
header must be the whole line (give or take a count and punctuation), so a prose or code line that
merely contains "comment" or "response" never matches.
"""

from __future__ import annotations

import re
from typing import Sequence

#: a kept-word share the page must reach above a header before the header counts as a comment section's
DEFAULT_MIN_KEPT_SHARE = 0.3

_COUNT = r"(?:\d+|one|no|two|three)"
_NOUN = (
    r"(?:comments?|responses?|replies|reactions?|thoughts?|kommentare?|antworten|reaktionen|commentaires?"
    r"|comentarios?|commenti|reacties)"
)
SECTION_HEADER = re.compile(
    rf"^\W*(?:{_COUNT}\s+)?{_NOUN}\W*(?:\(\s*\d+\s*\))?\W*$"
    rf"|^\W*{_COUNT}\s+{_NOUN}\s+(?:on|to|zu|auf|für)\b"
    r"|^\W*(?:leave|post|add|write|submit)\s+(?:a|your)\s+(?:reply|comment|response)\W*$"
    r"|^\W*(?:join|start)\s+the\s+(?:discussion|conversation)\W*$"
    r"|^\W*(?:kommentar\s+(?:schreiben|verfassen|hinzufügen)|schreibe\s+einen\s+kommentar|einen\s+kommentar\s+schreiben)\W*$",
    re.IGNORECASE,
)


def comment_section_start(
    lines: Sequence[str], keep: Sequence[bool], min_kept_share: float = DEFAULT_MIN_KEPT_SHARE
) -> int | None:
    """Index of the line that opens the page's comment section, or None when it has none.

    ``keep`` is the refiner's per-line decision; the share of kept words above a header decides whether
    the article has begun (see the module docstring).
    """
    if len(lines) != len(keep):
        raise ValueError(f"{len(lines)} lines but {len(keep)} decisions")
    kept_words = [len(line.split()) if kept else 0 for line, kept in zip(lines, keep)]
    total = sum(kept_words)
    if not total:
        return None
    seen = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and seen >= min_kept_share * total and SECTION_HEADER.search(stripped):
            return i
        seen += kept_words[i]
    return None


def without_comment_section(lines: Sequence[str], keep: Sequence[bool], min_kept_share: float = DEFAULT_MIN_KEPT_SHARE) -> list[bool]:
    """``keep`` with the comment section (its header and every line after it) removed."""
    start = comment_section_start(lines, keep, min_kept_share)
    if start is None:
        return list(keep)
    return list(keep[:start]) + [False] * (len(keep) - start)
