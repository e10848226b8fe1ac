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
merely contains "comment" or "response" never matches. A header line found ``MAX_HEADER_REPEATS`` times or
more on one page ("Post a comment" under every teaser of an index page) is a link repeated per item, and
cutting at it would remove the items that follow.

Many threads have no such header, or one the article's share rule cannot reach: when the comments
outweigh a short post, less than ``min_kept_share`` of the kept words lie above the header. A thread
still announces itself, by its *attribution lines*: one short line per comment naming its writer
("Maria Jensen says:", "Posted by: liz at May 29, 2005 10:19 PM", "Comment by Daniel — 17.07.2011 @ 13:10").
A run of them (``MIN_THREAD_WRITERS`` different writers, at most ``MAX_ATTRIBUTION_GAP`` lines apart)
after the article has begun opens a thread; a section header just above the run's first attribution
opens it instead. Distinct writers are what tell a thread from a blog's index page, whose every post
ends "Posted by <the same author> at …", and from an article quoting people ("…," he said), whose
lines are long or quoted.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
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


_DATE = (
    r"(?:\d{1,2}[:./-]\d{1,2}|\b(?:19|20)\d\d\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d"
    r"|\d+\s+(?:minutes?|hours?|days?|weeks?|months?|years?)\s+ago|\b(?:am|pm)\b)"
)
_VERB = r"(?:said|says|wrote|writes|replied|commented|sagt|schreibt|schrieb|meint|dit|a dit|escribió|dice|scrive)"
#: the writer's name: no quotes or commas (prose quoting someone has them), up to ``MAX_NAME_WORDS`` words
_NAME = r"([^\"“”„«»,]{1,50}?)"
#: a line naming a comment's writer; group 1, 2 or 3 is the name
ATTRIBUTION = re.compile(
    rf"^\W*(?:\d+\.\s+)?{_NAME}\s+{_VERB}\s*(?:[:,.…]|\.\.\.)?\s*(?:(?:on\s+|am\s+)?.{{0,40}}{_DATE}.{{0,30}})?$"
    rf"|^\W*(?:posted|submitted|written|comment(?:ed)?|reply|antwort|kommentar)\s+(?:by|von):?\s+{_NAME}"
    rf"\s*(?:\||@|\bat\b|\bon\b|\bam\b|,|\bin\b|—|–|-).{{0,40}}{_DATE}"
    rf"|^\W*{_NAME}\s(?:on|am|at|\|)\s.{{0,30}}{_DATE}.{{0,20}}(?:reply|antworten|permalink|report|#)\W*$",
    re.IGNORECASE,
)
#: lower-case substrings of which every attribution line has one: finding them in the page (``str.find``,
#: much faster than a regex alternation) spares most lines the full pattern
_ATTRIBUTION_HINTS = (
    "said", "says", "wrote", "writes", "replied", "sagt", "schreibt", "schrieb", "meint", "dit", "escribió", "dice",
    "scrive", "posted", "submitted", "written", "comment", "kommentar", "antwort", "reply", "permalink", "report", "#",
)
MAX_NAME_WORDS = 4
#: an attribution line is short: a writer, a verb, a date
MAX_ATTRIBUTION_WORDS = 20
#: different writers a run of attribution lines needs to be a thread, and the most lines between two of a run
MIN_THREAD_WRITERS = 3
MAX_ATTRIBUTION_GAP = 30
#: kept words the article must have above a thread, besides ``min_kept_share``'s share, and that share for threads
#: (lower than a header's: a run of writers is surer evidence than one header line)
MIN_WORDS_ABOVE_THREAD = 50
THREAD_MIN_KEPT_SHARE = 0.1
#: a header line found this many times on one page is a link repeated under every item of a list (a blog's
#: index, a columnist's teasers), not the page's comment section
MAX_HEADER_REPEATS = 3
#: non-blank lines above a thread's first attribution searched for its section header
HEADER_LOOKBACK = 3


def attributions(lines: Sequence[str]) -> list[tuple[int, str]]:
    """``(line index, lower-cased writer)`` of every attribution line (see the module docstring)."""
    found = []
    for i in _hinted_lines(lines):
        stripped = lines[i].strip()
        if len(stripped.split()) > MAX_ATTRIBUTION_WORDS:
            continue
        match = ATTRIBUTION.search(stripped)
        if match:
            writer = next(name for name in match.groups() if name).strip().lower()
            if writer and len(writer.split()) <= MAX_NAME_WORDS:
                found.append((i, writer))
    return found


def _hinted_lines(lines: Sequence[str]) -> list[int]:
    """Indices of the lines holding one of ``_ATTRIBUTION_HINTS``."""
    lowered = [line.lower() for line in lines]  # per line: lower-casing can change a text's length
    page = "\n".join(lowered)
    starts = list(itertools.accumulate((len(line) + 1 for line in lowered), initial=0))
    hinted: set[int] = set()
    for hint in _ATTRIBUTION_HINTS:
        at = page.find(hint)
        while at >= 0:
            line = bisect.bisect_right(starts, at) - 1
            hinted.add(line)
            at = page.find(hint, starts[line + 1])  # the next line: one hit per line is enough
    return sorted(hinted)


def comment_section_start(
    lines: Sequence[str], keep: Sequence[bool], min_kept_share: float = DEFAULT_MIN_KEPT_SHARE
) -> int | None:
    """Index of the line that opens the page's comment section (its header or its thread, whichever
    comes first), or None when it has none.

    ``keep`` is the refiner's per-line decision; the kept words above a header or a thread decide whether
    the article has begun (see the module docstring).
    """
    if len(lines) != len(keep):
        raise ValueError(f"{len(lines)} lines but {len(keep)} decisions")
    kept_words = [len(line.split()) if kept else 0 for line, kept in zip(lines, keep)]
    if not sum(kept_words):
        return None
    above = [0]
    for words in kept_words:
        above.append(above[-1] + words)
    starts = [_header_start(lines, above, min_kept_share), _thread_start(lines, above)]
    return min((start for start in starts if start is not None), default=None)


def _header_start(lines: Sequence[str], above: list[int], min_kept_share: float) -> int | None:
    headers = [(i, _header_key(line)) for i, line in enumerate(lines) if SECTION_HEADER.search(line.strip())]
    repeats = Counter(key for _, key in headers)
    for i, key in headers:
        if above[i] >= min_kept_share * above[-1] and repeats[key] < MAX_HEADER_REPEATS:
            return i
    return None


def _header_key(line: str) -> str:
    """A header line as it repeats on a page: lower-cased, whitespace collapsed (a count is kept, so
    "8 Comments" under one teaser and "24 Comments" under the next are different lines)."""
    return " ".join(line.lower().split())


def _thread_start(lines: Sequence[str], above: list[int]) -> int | None:
    runs: list[list[tuple[int, str]]] = []
    for found in attributions(lines):
        if runs and found[0] - runs[-1][-1][0] <= MAX_ATTRIBUTION_GAP:
            runs[-1].append(found)
        else:
            runs.append([found])
    for run in runs:
        writers = {writer for _, writer in run}
        # mostly different writers: a post index repeats its one author
        if len(writers) < MIN_THREAD_WRITERS or 2 * len(writers) < len(run):
            continue
        first = run[0][0]
        if above[first] >= MIN_WORDS_ABOVE_THREAD and above[first] >= THREAD_MIN_KEPT_SHARE * above[-1]:
            return _header_above(lines, first)
    return None


def _header_above(lines: Sequence[str], first: int) -> int:
    """``first``, or the section header within ``HEADER_LOOKBACK`` non-blank lines above it."""
    looked = 0
    for i in range(first - 1, -1, -1):
        stripped = lines[i].strip()
        if not stripped:
            continue
        if SECTION_HEADER.search(stripped):
            return i
        looked += 1
        if looked >= HEADER_LOOKBACK:
            break
    return first


def without_comment_section(lines: Sequence[str], keep: Sequence[bool], min_kept_share: float = DEFAULT_MIN_KEPT_SHARE) -> list[bool]:
    """``keep`` with the comment section (its header and every line after it) removed."""
    start = comment_section_start(lines, keep, min_kept_share)
    if start is None:
        return list(keep)
    return list(keep[:start]) + [False] * (len(keep) - start)
