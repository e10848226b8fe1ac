"""Seed (SFT) data for the refining models: gold programs derived from reference texts, verified by execution.

The paper's seed programs come from a 70B annotator (prox-reference.md §3). Without one we derive them:

**Chunk stage**: from a noisy page and a *clean reference* of the same page (a trafilatura or resiliparse
extraction, snippets a person marked, or a documented heuristic) every noisy line gets a label
(``label_lines``):

- ``remove``: the line's content (whitespace collapsed, list bullets stripped) does not occur in the
  reference; lines of fewer than ``short_line_chars`` characters must match a whole reference line,
  because a short menu entry ("Home", "Kontakt") occurs inside almost any article by chance;
- ``keep``: it does occur; when only a part of the line occurs (a prefix or suffix absent from the
  reference, at least ``min_partial_chars`` left), the line is kept and the absent prefix/suffix becomes
  ``normalize(source_str="...", target_str="")`` when the reference parser can read it back: no ``"``,
  ``)``, ``,``, ``=``, newline or carriage return in it (§1.4), and it occurs once in the whole page (the
  executor's replace is global);
- ``blank``: whitespace only; it joins a removal when the lines around it (inside its chunk) are removed,
  so a menu with blank lines in between is one ``remove_lines`` and not five.

Snippet labels win over the reference: a line holding a ``must_keep`` snippet is kept, one holding a
``must_remove`` snippet (and no must-keep one) is removed. The reference of a shared cleaning page
(``cleaning_pages``) is its own ``teacher_trafilatura`` extraction when the copy has one (this copy does),
else the WARC-extracted files' ``trafilatura_text`` / ``resiliparse_main_text`` for the same URL, else
``heuristic_clean_text``. Derived this way, without the snippets, the programs keep 0.950 of the must-keep
snippets and remove 0.873 of the must-remove ones over all 989 pages (the teacher itself: 0.947 / 0.880).

The page is chunked exactly as at inference (``prox_spark.chunking.chunk_document``, global line
numbers), and each chunk's program lists its removals (consecutive removed lines merged,
``remove_lines(line_start=a, line_end=b)``, 0-based, inclusive) and normalizations in line order, or
``keep_chunk()``. The chunk programs joined by ``\\n`` are the page's program, which is **executed with the
reference executor** (``verify_program``): it must give exactly the expected clean lines (or the executor's
own drop when the expected text falls under its ≤10-words / ≤5%-kept rules) with no error. A page whose
normalizations break that is retried without them; a page that still fails is left out and counted.

**Doc stage**: labelled documents (``{"id", "text", "label"}``, label 1/true/"keep" or 0/false/"drop")
give ``keep_doc()`` / ``drop_doc()``.

**Doc stage, in-distribution keeps** (``cleaning_keep_examples``): the shared cleaning pages carry
must-keep snippets a person marked, so each has real main content and is labelled ``keep_doc()``. The
DCLM labels alone are English; without these a doc model drops most of the noisy multilingual pages the
chunk stage is built for. Only train-split pages are written (``doc_cleaning.jsonl``, its own file so
``doc.jsonl`` stays the DCLM-only evaluation set); the doc training config decides how many to mix in.

**Splits** are by page id: ``split_of(id)`` hashes the id (sha256 with a salt), so a page and all its
chunks land in one split on every machine and run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from prox_spark.chunking import Chunk, CountTokens, chunk_document
from prox_spark.programs import OpStatus, Outcome, Reason, execute
from prox_spark.prompts import Kind, render_prompt

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
DEFAULT_SALT = "prox-seed-v1"

KEEP_DOC, DROP_DOC, KEEP_CHUNK = "keep_doc()", "drop_doc()", "keep_chunk()"
#: characters the reference parser cannot read inside a normalize source (prox-reference.md §1.4)
FORBIDDEN_IN_SOURCE = ('"', ")", ",", "=", "\n", "\r")

#: relative paths under the shared data folder
TRAFILATURA_SEGMENTS = "cleaning/trafilatura_eval_segments.jsonl.gz"
WARC_EXTRACTED = ("cleaning/dolma_warc_extracted.jsonl", "cleaning/resiliparse_warc_extracted.jsonl")
DCLM_LABELS = "quality/dclm_human_labels.jsonl"

#: the file names ``build_seed`` writes
DOC_FILE, CHUNK_FILE, STATS_FILE = "doc.jsonl", "chunk.jsonl", "stats.json"
#: train-split cleaning pages as ``keep_doc()`` examples (``cleaning_keep_examples``)
DOC_CLEANING_FILE = "doc_cleaning.jsonl"

Reference = Literal["trafilatura", "trafilatura_precision", "resiliparse", "heuristic"]


# --- splits ----------------------------------------------------------------------------------------


def split_of(key: str, *, validation: float = 0.1, test: float = 0.1, salt: str = DEFAULT_SALT) -> Split:
    """Deterministic split of a page or document id: sha256(salt:key) read as a fraction in [0, 1)."""
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError(f"validation={validation} and test={test} must be >= 0 and sum to < 1")
    digest = hashlib.sha256(f"{salt}:{key}".encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    if fraction < test:
        return "test"
    if fraction < test + validation:
        return "validation"
    return "train"


# --- line labels -----------------------------------------------------------------------------------

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


# --- programs --------------------------------------------------------------------------------------


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


def normalize_op(source: str) -> str:
    return f'normalize(source_str="{source}", target_str="")'


def remove_op(start: int, end: int) -> str:
    return f"remove_lines(line_start={start}, line_end={end})"


def chunk_program(labels: Sequence[LineLabel], first: int, last: int) -> tuple[str, list[int]]:
    """The gold program for lines ``first..last`` and the global numbers of the lines it removes."""
    removed = resolve_blanks(labels, first, last)
    ops: list[str] = []
    removed_lines: list[int] = []
    run_start: int | None = None
    for offset, gone in enumerate(removed):
        number = first + offset
        if gone:
            removed_lines.append(number)
            if run_start is None:
                run_start = number
            continue
        if run_start is not None:
            ops.append(remove_op(run_start, number - 1))
            run_start = None
        ops.extend(normalize_op(source) for source in labels[number].normalize)
    if run_start is not None:
        ops.append(remove_op(run_start, last))
    return ("\n".join(ops) if ops else KEEP_CHUNK), removed_lines


def expected_text(noisy_text: str, labels: Sequence[LineLabel], removed: set[int]) -> str:
    """What the gold program must turn the page into (before the executor's drop rules)."""
    kept = []
    for number, line in enumerate(noisy_text.split("\n")):
        if number in removed:
            continue
        for source in labels[number].normalize:
            line = line.replace(source, "")
        kept.append(line)
    return "\n".join(kept)


@dataclass(frozen=True)
class Verification:
    ok: bool
    detail: str = ""


def verify_program(noisy_text: str, program: str, expected: str) -> Verification:
    """Run ``program`` with the reference executor: no error, and exactly ``expected`` (or the executor's
    ≤10-words / ≤5%-kept drop when ``expected`` falls under those rules)."""
    result = execute(noisy_text, program, stage="chunk", dialect="reference")
    if result.errors:
        bad = [line.detail or line.status.value for line in result.ops if line.errors]
        return Verification(False, f"{result.errors} executor error(s): {bad[:3]}")
    not_found = [line.source_text for line in result.ops if line.status is OpStatus.NOT_FOUND]
    if not_found:
        return Verification(False, f"normalize source not found: {not_found[:2]}")
    words_before, words_after = len(noisy_text.split()), len(expected.split())
    if result.outcome is Outcome.DROPPED:
        rule_drop = words_before == 0 or words_after <= 10 or words_after / words_before <= 0.05
        if result.reason in (Reason.TOO_FEW_WORDS, Reason.KEPT_FRACTION_TOO_LOW, Reason.EMPTY_TEXT) and rule_drop:
            return Verification(True, f"dropped by the executor's rule ({result.reason.value})")
        return Verification(False, f"dropped: {result.reason}")
    if result.text != expected:
        return Verification(False, "executed text differs from the expected clean lines")
    return Verification(True)


# --- pages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkSeed:
    chunk: Chunk
    program: str
    removed_lines: tuple[int, ...]


@dataclass
class PageSeed:
    """One page's derivation: labels, chunks with their programs, and whether execution confirmed them."""

    page_id: str
    source: str
    split: Split
    text: str
    labels: list[LineLabel]
    chunks: list[ChunkSeed]
    program: str
    verified: bool
    detail: str = ""
    #: the normalizations were dropped because the program with them failed verification
    normalize_dropped: bool = False

    @property
    def removed_lines(self) -> list[int]:
        return [n for c in self.chunks for n in c.removed_lines]


def _page_programs(text: str, labels: list[LineLabel], chunks: list[Chunk]) -> tuple[list[ChunkSeed], str]:
    seeds = []
    for chunk in chunks:
        program, removed = chunk_program(labels, chunk.first_line, chunk.last_line)
        seeds.append(ChunkSeed(chunk, program, tuple(removed)))
    return seeds, "\n".join(s.program for s in seeds)


def derive_page(
    page_id: str,
    noisy_text: str,
    clean_text: str,
    count_tokens: CountTokens,
    max_chunk_tokens: int,
    *,
    must_keep: Sequence[str] = (),
    must_remove: Sequence[str] = (),
    source: str = "",
    split: Split | None = None,
    allow_normalize: bool = True,
    short_line_chars: int = 20,
    min_partial_chars: int = 20,
) -> PageSeed:
    """Label, chunk, write and verify the gold program of one page."""
    labels = label_lines(
        noisy_text,
        clean_text,
        must_keep=must_keep,
        must_remove=must_remove,
        short_line_chars=short_line_chars,
        min_partial_chars=min_partial_chars,
        allow_normalize=allow_normalize,
    )
    chunks = chunk_document(noisy_text, count_tokens, max_chunk_tokens)
    split = split or split_of(page_id)
    seeds, program = _page_programs(noisy_text, labels, chunks)
    removed = {n for s in seeds for n in s.removed_lines}
    check = verify_program(noisy_text, program, expected_text(noisy_text, labels, removed))
    dropped_normalize = False
    if not check.ok and any(label.normalize for label in labels):
        labels = [LineLabel(lb.action, (), lb.why) for lb in labels]
        seeds, program = _page_programs(noisy_text, labels, chunks)
        check = verify_program(noisy_text, program, expected_text(noisy_text, labels, removed))
        dropped_normalize = True
    return PageSeed(page_id, source, split, noisy_text, labels, seeds, program, check.ok, check.detail, dropped_normalize)


# --- examples --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedExample:
    """One SFT example: the model input (``input``, rendered as ``prompt``) and the target program."""

    id: str
    kind: Kind
    split: Split
    #: what goes into the prompt template: the raw document (doc) or the numbered chunk (chunk)
    input: str
    #: ``render_prompt(template, kind, input)`` - for reading; training encodes ``input`` itself so the
    #: prompt can be truncated the way inference truncates it
    prompt: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SeedExample:
        return cls(**{k: record[k] for k in ("id", "kind", "split", "input", "prompt", "target")}, meta=record.get("meta", {}))


def chunk_examples(page: PageSeed, template: str = "compact") -> list[SeedExample]:
    """One chunk-stage example per chunk of a verified page."""
    n_lines = len(page.labels)
    out = []
    for seed in page.chunks:
        chunk = seed.chunk
        out.append(
            SeedExample(
                id=f"{page.page_id}#{chunk.chunk_index}",
                kind="chunk",
                split=page.split,
                input=chunk.text,
                prompt=render_prompt(template, "chunk", chunk.text),
                target=seed.program,
                meta={
                    "page_id": page.page_id,
                    "source": page.source,
                    "chunk_index": chunk.chunk_index,
                    "n_chunks": len(page.chunks),
                    "first_line": chunk.first_line,
                    "last_line": chunk.last_line,
                    "n_doc_lines": n_lines,
                    "n_tokens": chunk.n_tokens,
                    "oversize": chunk.oversize,
                    "removed_lines": list(seed.removed_lines),
                },
            )
        )
    return out


def doc_label(value: Any) -> bool:
    """A keep (True) / drop (False) label from 1/0, true/false, "keep"/"drop", "1"/"0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "0", "keep", "drop", "true", "false", "keep_doc()", "drop_doc()"):
        return value.strip().lower() in ("1", "keep", "true", "keep_doc()")
    raise ValueError(f"label {value!r}: expected 1/0, true/false or keep/drop")


def doc_examples(
    records: Iterable[dict[str, Any]], *, source: str, template: str = "compact", salt: str = DEFAULT_SALT
) -> Iterator[SeedExample]:
    """``keep_doc()`` / ``drop_doc()`` examples from ``{text, label[, id]}`` records (id: hash of the text)."""
    for number, record in enumerate(records):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{source} record {number}: 'text' must be a non-empty string")
        if "label" not in record:
            raise ValueError(f"{source} record {number}: no 'label'")
        keep = doc_label(record["label"])
        doc_id = str(record.get("id") or hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
        yield SeedExample(
            id=doc_id,
            kind="doc",
            split=split_of(doc_id, salt=salt),
            input=text,
            prompt=render_prompt(template, "doc", text),
            target=KEEP_DOC if keep else DROP_DOC,
            meta={"source": source, "label": int(keep)},
        )


def cleaning_keep_examples(
    pages: Iterable[CleaningPage], *, template: str = "compact", salt: str = DEFAULT_SALT
) -> Iterator[SeedExample]:
    """``keep_doc()`` examples from the cleaning pages with must-keep snippets, train split only.

    The split is the chunk model's (``split_of(page_id)``), so the held-out cleaning pages the
    evaluation scores are never trained on; a train page whose URL is also a non-train page's is
    left out too (the same page under another id).
    """
    pages = list(pages)
    held_out_urls = {p.url for p in pages if p.url and split_of(p.page_id, salt=salt) != "train"}
    for page in pages:
        if split_of(page.page_id, salt=salt) != "train" or page.url in held_out_urls or not page.must_keep:
            continue
        yield SeedExample(
            id=page.page_id,
            kind="doc",
            split="train",
            input=page.noisy_text,
            prompt=render_prompt(template, "doc", page.noisy_text),
            target=KEEP_DOC,
            meta={"source": page.source, "label": 1, "why": "cleaning page with must-keep snippets"},
        )


# --- shared data -----------------------------------------------------------------------------------


def read_jsonl_dicts(path: str | Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of one of our own ``.jsonl`` or ``.jsonl.gz`` data files, as dicts (blank lines skipped).

    Strict: a line that is not JSON raises ``ValueError`` naming the file and line, since a broken labelled
    or seed file must stop the build. Corpus input is read by ``prox_spark.readers.read_jsonl`` instead, which
    yields documents and quarantines every bad line without raising."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None


@dataclass(frozen=True)
class CleaningPage:
    """A noisy page with the reference it is labelled against."""

    page_id: str
    url: str
    noisy_text: str
    clean_text: str
    #: which reference ``clean_text`` is: teacher_trafilatura, warc:trafilatura_text, heuristic, ...
    reference: str
    source: str
    must_keep: tuple[str, ...] = ()
    must_remove: tuple[str, ...] = ()


_TEACHER_FIELDS: dict[str, tuple[str, ...]] = {
    "trafilatura": ("teacher_trafilatura", "trafilatura_text", "teacher_trafilatura_precision", "resiliparse_main_text"),
    "trafilatura_precision": ("teacher_trafilatura_precision", "teacher_trafilatura", "trafilatura_text", "resiliparse_main_text"),
    "resiliparse": ("resiliparse_main_text", "teacher_trafilatura", "trafilatura_text"),
    "heuristic": (),
}


def _pick_reference(record: dict[str, Any], extra: dict[str, Any] | None, preference: Reference) -> tuple[str, str]:
    for name in _TEACHER_FIELDS[preference]:
        for origin, holder in (("", record), ("warc:", extra or {})):
            value = holder.get(name)
            if isinstance(value, str) and value.strip():
                return value, origin + name
    return heuristic_clean_text(record["noisy_text"]), "heuristic"


def cleaning_pages(data_dir: str | Path, *, reference: Reference = "trafilatura", include_warc: bool = True) -> Iterator[CleaningPage]:
    """The shared cleaning pages with their reference text.

    The trafilatura evaluation pages use their own teacher extraction when the copy carries one
    (``teacher_trafilatura`` / ``teacher_trafilatura_precision``), else the WARC-extracted files'
    ``trafilatura_text`` / ``resiliparse_main_text`` for the same URL, else ``heuristic_clean_text``.
    With ``include_warc`` the WARC-extracted pages themselves (no snippets) follow.
    """
    data_dir = Path(data_dir)
    warc_records = []
    for relative in WARC_EXTRACTED:
        path = data_dir / relative
        if path.is_file():
            warc_records.extend((relative, r) for r in read_jsonl_dicts(path))
    by_url = {r.get("url"): r for _, r in warc_records if r.get("url")}
    segments = data_dir / TRAFILATURA_SEGMENTS
    if segments.is_file():
        for record in read_jsonl_dicts(segments):
            noisy = record.get("noisy_text") or ""
            if not noisy.strip():
                continue
            clean, origin = "", "heuristic"
            if reference != "heuristic":
                clean, origin = _pick_reference(record, by_url.get(record.get("url")), reference)
            else:
                clean = heuristic_clean_text(noisy)
            yield CleaningPage(
                page_id=str(record["id"]),
                url=record.get("url", ""),
                noisy_text=noisy,
                clean_text=clean,
                reference=origin,
                source="trafilatura_eval",
                must_keep=tuple(record.get("must_keep") or ()),
                must_remove=tuple(record.get("must_remove") or ()),
            )
    if include_warc:
        for relative, record in warc_records:
            noisy = record.get("noisy_text") or ""
            if not noisy.strip():
                continue
            if reference == "heuristic":
                clean, origin = heuristic_clean_text(noisy), "heuristic"
            else:
                clean, origin = _pick_reference(record, None, reference)
            yield CleaningPage(
                page_id=str(record.get("id") or record.get("url")),
                url=record.get("url", ""),
                noisy_text=noisy,
                clean_text=clean,
                reference=origin,
                source=Path(relative).name.split(".")[0],
            )


# --- the builder -----------------------------------------------------------------------------------


@dataclass
class SeedStats:
    pages: int = 0
    pages_verified: int = 0
    pages_failed: int = 0
    pages_normalize_dropped: int = 0
    references: dict[str, int] = field(default_factory=dict)
    chunk_examples: dict[str, int] = field(default_factory=dict)
    doc_examples: dict[str, int] = field(default_factory=dict)
    #: train-split cleaning pages written to ``doc_cleaning.jsonl``
    doc_cleaning_examples: int = 0
    chunk_programs: dict[str, int] = field(default_factory=dict)
    line_labels: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def build_seed(
    data_dir: str | Path,
    out_dir: str | Path,
    count_tokens: CountTokens,
    *,
    max_chunk_tokens: int = 384,
    reference: Reference = "trafilatura",
    extra_doc_labels: Sequence[str | Path] = (),
    include_dclm: bool = True,
    allow_normalize: bool = True,
    template: str = "compact",
    salt: str = DEFAULT_SALT,
) -> SeedStats:
    """Write ``doc.jsonl``, ``doc_cleaning.jsonl``, ``chunk.jsonl`` (one ``SeedExample`` record per line)
    and ``stats.json``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = SeedStats()
    references: Counter[str] = Counter()
    chunk_counts: Counter[str] = Counter()
    program_counts: Counter[str] = Counter()
    label_counts: Counter[str] = Counter()
    with open(out_dir / CHUNK_FILE, "w", encoding="utf-8") as handle:
        for page in cleaning_pages(data_dir, reference=reference):
            stats.pages += 1
            references[page.reference] += 1
            seed = derive_page(
                page.page_id,
                page.noisy_text,
                page.clean_text,
                count_tokens,
                max_chunk_tokens,
                must_keep=page.must_keep,
                must_remove=page.must_remove,
                source=page.source,
                split=split_of(page.page_id, salt=salt),
                allow_normalize=allow_normalize,
            )
            stats.pages_normalize_dropped += seed.normalize_dropped
            if not seed.verified:
                stats.pages_failed += 1
                stats.failures.append(f"{page.page_id}: {seed.detail}")
                continue
            stats.pages_verified += 1
            label_counts.update(label.why for label in seed.labels)
            for example in chunk_examples(seed, template):
                chunk_counts[example.split] += 1
                for op in example.target.split("\n"):
                    program_counts[op.split("(", 1)[0]] += 1
                handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    doc_counts: Counter[str] = Counter()
    with open(out_dir / DOC_FILE, "w", encoding="utf-8") as handle:
        sources: list[tuple[str, Path]] = []
        if include_dclm and (data_dir / DCLM_LABELS).is_file():
            sources.append(("dclm_human_labels", data_dir / DCLM_LABELS))
        sources.extend((Path(p).name, Path(p)) for p in extra_doc_labels)
        for name, path in sources:
            for example in doc_examples(read_jsonl_dicts(path), source=name, template=template, salt=salt):
                doc_counts[f"{example.split}:{example.target}"] += 1
                handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    with open(out_dir / DOC_CLEANING_FILE, "w", encoding="utf-8") as handle:
        pages = cleaning_pages(data_dir, reference=reference, include_warc=False)
        for example in cleaning_keep_examples(pages, template=template, salt=salt):
            stats.doc_cleaning_examples += 1
            handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    stats.references = dict(references)
    stats.chunk_examples = dict(chunk_counts)
    stats.doc_examples = dict(sorted(doc_counts.items()))
    stats.chunk_programs = dict(program_counts)
    stats.line_labels = dict(label_counts)
    (out_dir / STATS_FILE).write_text(json.dumps(asdict(stats), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def read_seed(path: str | Path, split: Split | None = None) -> list[SeedExample]:
    """The examples of a seed file, optionally of one split."""
    return [
        example
        for example in (SeedExample.from_record(r) for r in read_jsonl_dicts(path))
        if split is None or example.split == split
    ]
