"""Seed labels from annotator answers: the doc-stage rule, chunk-program merging, whole-document annotation.

Doc stage (prox-reference.md §3.1): ``keep_doc()`` when Edu >= 3, or Edu == 2 and Format >= 4; else
``drop_doc()``.

Chunk stage (§3.2): each chunk of a kept document is asked the three noise prompts (nav, url, footer);
their programs are checked (``client.check_program``) and merged per document by ``merge_programs``:

- ``remove_lines`` ranges are clipped to the lines the prompt was shown (a range wholly outside is
  dropped with a note), then overlapping *and adjacent* ranges are merged (same lines removed, fewer ops);
- ``normalize`` ops are deduplicated on (source, target); a blank source, ``source == target`` or, when
  the text is known, a source that does not occur in it (the paper's "non-existent target" failure) is
  dropped with a note; a second target for the same source is dropped with a note (the first prompt wins,
  in ``CHUNK_KINDS`` order);
- the no-op (``untouch_doc()``) is kept only when nothing else remains;
- ops are rendered canonically, ``remove_lines(line_start=a, line_end=b)`` in line order, then
  ``normalize(source_str="...", target_str="...")`` longest source first (so a longer match is replaced
  before a shorter one inside it could break it). The executor applies all normalizations before any
  removal, so putting removals first changes nothing;
- removal-ratio guard: if the merged program removes more than ``max_removed_fraction`` of the
  document's lines it is marked for review (``status="review"``), not silently kept or dropped.

``annotate_documents`` runs both stages over a batch of documents through any client with
``complete_many`` (``AnnotatorClient``) and returns one record per document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from prox_spark.annotate.client import Checked, Completion, Request, check_program, check_score
from prox_spark.annotate.prompts import CHUNK_KINDS, chunk_messages, score_messages
from prox_spark.chunking import DEFAULT_MAX_TOKENS, Chunk, chunk_document
from prox_spark.programs import KeepChunk, KeepDoc, Normalize, OpStatus, RemoveAllLines, RemoveLines, parse
from prox_spark.text import EMPTY_TEXT

#: default of the removal-ratio guard (the paper applies one but does not give its value)
DEFAULT_MAX_REMOVED_FRACTION = 0.5

KEEP_DOC = "keep_doc()"
DROP_DOC = "drop_doc()"

#: record statuses, worst first
STATUSES = ("failed", "invalid", "review", "ok")


# --------------------------------------------------------------------------------------------------
# Doc stage
# --------------------------------------------------------------------------------------------------


def _check_points(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ValueError(f"{name} score must be an integer 0-5, got {value!r}")
    return value


def keep_doc(edu: int, fmt: int) -> bool:
    """The ProX doc label: keep when Edu >= 3, or Edu == 2 and Format >= 4."""
    edu = _check_points("edu", edu)
    fmt = _check_points("format", fmt)
    return edu >= 3 or (edu == 2 and fmt >= 4)


def doc_program(edu: int, fmt: int) -> str:
    """``keep_doc()`` or ``drop_doc()`` for the two scores."""
    return KEEP_DOC if keep_doc(edu, fmt) else DROP_DOC


# --------------------------------------------------------------------------------------------------
# Chunk programs
# --------------------------------------------------------------------------------------------------


def quote(value: str) -> str:
    """A double-quoted Python string literal of ``value`` that the strict parser reads back unchanged."""
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F or 0x80 <= ord(char) < 0xA0 or char in "\u2028\u2029":
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_remove(start: int, end: int) -> str:
    return f"remove_lines(line_start={start}, line_end={end})"


def render_normalize(source: str, target: str = "") -> str:
    return f"normalize(source_str={quote(source)}, target_str={quote(target)})"


@dataclass
class MergedProgram:
    """The merged chunk program of one document (or one chunk) and what merging did."""

    program: str
    #: merged inclusive line ranges, ascending
    removals: list[tuple[int, int]] = field(default_factory=list)
    #: (source, target) in the rendered order
    normalizations: list[tuple[str, str]] = field(default_factory=list)
    removed_lines: int = 0
    #: lines of the document (None when neither ``text`` nor ``n_lines`` was given)
    n_lines: Optional[int] = None
    removed_fraction: Optional[float] = None
    needs_review: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def is_noop(self) -> bool:
        return not self.removals and not self.normalizations


def merge_programs(
    programs: Sequence[str],
    *,
    text: str | None = None,
    n_lines: int | None = None,
    line_ranges: Sequence[tuple[int, int] | None] | None = None,
    max_removed_fraction: float = DEFAULT_MAX_REMOVED_FRACTION,
    noop: str = "untouch_doc",
) -> MergedProgram:
    """Merge chunk programs (already checked, or raw: unparseable lines are dropped with a note).

    ``text`` (the raw document) gives the line count and lets normalizations be checked against it;
    ``line_ranges[i]`` is the inclusive (first, last) line range program ``i`` was shown.
    """
    if line_ranges is not None and len(line_ranges) != len(programs):
        raise ValueError(f"{len(line_ranges)} line ranges for {len(programs)} programs")
    if not 0.0 <= max_removed_fraction <= 1.0:
        raise ValueError(f"max_removed_fraction must be within 0-1, got {max_removed_fraction}")
    if text is not None:
        n_lines = len(text.split("\n"))
    notes: list[str] = []
    ranges: list[tuple[int, int]] = []
    normalizations: dict[str, str] = {}
    remove_all = False
    for index, program in enumerate(programs):
        shown = line_ranges[index] if line_ranges is not None else None
        bounds = _bounds(shown, n_lines)
        for line in parse(program or "", stage="chunk", dialect="strict").lines:
            op = line.op
            where = f"program {index}: {line.source_text.strip()[:80]!r}"
            if line.status is OpStatus.PARSE_ERROR:
                notes.append(f"{where}: unparseable ({line.detail}), dropped")
            elif op is None or isinstance(op, (KeepChunk, KeepDoc)):
                continue
            elif isinstance(op, RemoveAllLines):
                remove_all = True
                notes.append(f"{where}: removes every line")
            elif isinstance(op, RemoveLines):
                clipped = _clip(op.start, op.end, bounds)
                if clipped is None:
                    notes.append(f"{where}: outside lines {bounds[0]}-{bounds[1]}, dropped")
                else:
                    if clipped != (op.start, op.end):
                        notes.append(f"{where}: clipped to {clipped[0]}-{clipped[1]}")
                    ranges.append(clipped)
            elif isinstance(op, Normalize):
                if op.source.strip() == "" or op.source == op.target:
                    notes.append(f"{where}: no-op normalize, dropped")
                elif text is not None and op.source not in text:
                    notes.append(f"{where}: source not in the text, dropped")
                elif op.source in normalizations:
                    if normalizations[op.source] != op.target:
                        notes.append(f"{where}: second target for the same source, dropped")
                else:
                    normalizations[op.source] = op.target
    removals = merge_ranges(ranges)
    if remove_all and n_lines is not None:
        removals = [(0, n_lines - 1)] if n_lines > 0 else []
    removed = sum(end - start + 1 for start, end in removals)
    ordered = sorted(normalizations.items(), key=lambda item: (-len(item[0]), item[0]))
    rendered = [render_remove(s, e) for s, e in removals] + [render_normalize(s, t) for s, t in ordered]
    if remove_all and n_lines is None:
        rendered.insert(0, "remove_lines(all=True)")
    fraction = (removed / n_lines) if n_lines else None
    needs_review = remove_all or (fraction is not None and fraction > max_removed_fraction)
    return MergedProgram(
        program="\n".join(rendered) if rendered else f"{noop}()",
        removals=removals,
        normalizations=ordered,
        removed_lines=removed,
        n_lines=n_lines,
        removed_fraction=fraction,
        needs_review=needs_review,
        notes=notes,
    )


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of inclusive ranges: overlapping or adjacent ones become one, ascending."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _bounds(shown: tuple[int, int] | None, n_lines: int | None) -> tuple[int, int]:
    low, high = 0, (n_lines - 1 if n_lines is not None else 10**9)
    if shown is not None:
        low, high = max(low, shown[0]), min(high, shown[1])
    return low, high


def _clip(start: int, end: int, bounds: tuple[int, int]) -> tuple[int, int] | None:
    low, high = bounds
    if end < low or start > high:
        return None
    return max(start, low), min(end, high)


# --------------------------------------------------------------------------------------------------
# Whole documents
# --------------------------------------------------------------------------------------------------


class CompletesMany(Protocol):
    def complete_many(self, requests: Sequence[Request]) -> list[Completion]: ...


@dataclass(frozen=True)
class AnnotateSettings:
    """How documents are annotated (the ``labels`` section of the job config)."""

    #: guard: more removed lines than this share of the document sends it to review
    max_removed_fraction: float = DEFAULT_MAX_REMOVED_FRACTION
    #: chunk budget for the chunk prompts, in ``count_tokens`` units (the reference's 1500 model tokens)
    max_chunk_tokens: int = DEFAULT_MAX_TOKENS
    #: the doc-stage prompts see at most this many characters of a document (0: all of it)
    max_doc_chars: int = 12000
    #: also write chunk programs for documents the doc label drops (the paper annotates kept ones only)
    chunk_dropped_docs: bool = False
    #: the no-op written when a chunk program has nothing to do
    noop: str = "untouch_doc"
    #: max_tokens of the doc-stage (score) and chunk-stage answers
    doc_max_tokens: int = 512
    chunk_max_tokens: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_removed_fraction <= 1.0:
            raise ValueError(f"max_removed_fraction must be within 0-1, got {self.max_removed_fraction}")
        if self.max_chunk_tokens < 1 or self.doc_max_tokens < 1 or self.chunk_max_tokens < 1:
            raise ValueError("token limits must be >= 1")
        if self.max_doc_chars < 0:
            raise ValueError(f"max_doc_chars must be >= 0, got {self.max_doc_chars}")
        if self.noop not in ("untouch_doc", "keep_chunk", "skip_chunk"):
            raise ValueError(f"noop must be untouch_doc, keep_chunk or skip_chunk, got {self.noop!r}")


def approx_tokens(line: str) -> int:
    """Rough token count (4 characters a token, at least 1) when no tokenizer is given."""
    return len(line) // 4 + 1


RECORD_KEYS = (
    "id",
    "text",
    "doc_program",
    "chunk_program",
    "edu_score",
    "format_score",
    "status",
    "reason",
    "detail",
    "notes",
    "removed_fraction",
    "chunks",
)


@dataclass
class _Doc:
    id: Any
    text: Any
    record: dict[str, Any]
    chunks: list[Chunk] = field(default_factory=list)
    #: per chunk, per kind: index into the chunk request list (None: blank chunk, not asked)
    chunk_requests: list[dict[str, int] | None] = field(default_factory=list)


def _record(doc_id: Any, text: Any) -> dict[str, Any]:
    return {
        "id": doc_id,
        "text": text,
        "doc_program": None,
        "chunk_program": None,
        "edu_score": None,
        "format_score": None,
        "status": "ok",
        "reason": "",
        "detail": "",
        "notes": [],
        "removed_fraction": None,
        "chunks": [],
    }


def _fail(record: dict[str, Any], where: str, checked: Checked, detail_prefix: str = "") -> None:
    """Mark the record; the first problem names the reason, except that a failed request outranks a bad answer."""
    status = "failed" if checked.reason.startswith("request_failed:") else "invalid"
    current = record["status"]
    if current in ("ok", "review") or (current == "invalid" and status == "failed"):
        record["status"] = status
        record["reason"] = f"{where}:{checked.reason}"
        record["detail"] = (detail_prefix + checked.detail).strip()


def annotate_documents(
    texts: Iterable[Any],
    client: CompletesMany,
    *,
    ids: Iterable[Any] | None = None,
    settings: AnnotateSettings | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[dict[str, Any]]:
    """Annotate a batch of documents; one record per input (keys ``RECORD_KEYS``), in input order.

    ``status``: ``ok``; ``review`` (the removal-ratio guard fired; the programs are still written);
    ``invalid`` (an answer failed its check; ``reason`` is ``<where>:<code>``, e.g. ``edu:no_score`` or
    ``chunk/url:unparseable_op``, ``detail`` says more); ``failed`` (a request failed after its retries:
    not cached, a rerun asks again). Blank texts are ``invalid`` with reason ``empty_text`` and cost no
    request. Requests of one stage are sent together, so ``client`` can run them concurrently.
    """
    settings = settings or AnnotateSettings()
    count_tokens = count_tokens or approx_tokens
    texts = list(texts)
    id_list = list(ids) if ids is not None else [None] * len(texts)
    if len(id_list) != len(texts):
        raise ValueError(f"{len(id_list)} ids for {len(texts)} texts")
    docs = [_Doc(doc_id, text, _record(doc_id, text)) for doc_id, text in zip(id_list, texts)]

    # doc stage: both scores of every non-blank document
    score_requests: list[Request] = []
    asked: list[_Doc] = []
    for doc in docs:
        if not isinstance(doc.text, str) or not doc.text.strip():
            doc.record.update(status="invalid", reason=EMPTY_TEXT, detail="text is missing or blank")
            continue
        shown = doc.text[: settings.max_doc_chars] if settings.max_doc_chars else doc.text
        if len(shown) < len(doc.text):
            doc.record["notes"].append(f"doc prompts saw the first {len(shown)} of {len(doc.text)} characters")
        asked.append(doc)
        for kind in ("edu", "format"):
            score_requests.append(Request.of(score_messages(kind, shown), settings.doc_max_tokens))
    answers = client.complete_many(score_requests)
    to_chunk: list[_Doc] = []
    for position, doc in enumerate(asked):
        edu = check_score(answers[2 * position], "edu")
        fmt = check_score(answers[2 * position + 1], "format")
        doc.record["edu_score"] = edu.value
        doc.record["format_score"] = fmt.value
        for kind, checked in (("edu", edu), ("format", fmt)):
            if not checked.ok:
                _fail(doc.record, kind, checked)
        if not (edu.ok and fmt.ok):
            continue
        program = doc_program(edu.value, fmt.value)
        doc.record["doc_program"] = program
        if program == KEEP_DOC or settings.chunk_dropped_docs:
            to_chunk.append(doc)

    # chunk stage: three prompts per non-blank chunk of the documents that go on
    chunk_requests: list[Request] = []
    for doc in to_chunk:
        doc.chunks = chunk_document(doc.text, count_tokens, settings.max_chunk_tokens)
        lines = doc.text.split("\n")
        for chunk in doc.chunks:
            if not any(line.strip() for line in lines[chunk.first_line : chunk.last_line + 1]):
                doc.chunk_requests.append(None)
                continue
            slots = {}
            for kind in CHUNK_KINDS:
                slots[kind] = len(chunk_requests)
                chunk_requests.append(Request.of(chunk_messages(kind, chunk.text), settings.chunk_max_tokens))
            doc.chunk_requests.append(slots)
    answers = client.complete_many(chunk_requests)
    for doc in to_chunk:
        _finish_chunks(doc, answers, settings)
    return [doc.record for doc in docs]


def _finish_chunks(doc: _Doc, answers: list[Completion], settings: AnnotateSettings) -> None:
    record = doc.record
    programs: list[str] = []
    ranges: list[tuple[int, int]] = []
    per_chunk: list[tuple[Chunk, list[str]]] = []
    for chunk, slots in zip(doc.chunks, doc.chunk_requests):
        chunk_programs: list[str] = []
        if slots is not None:
            for kind in CHUNK_KINDS:
                checked = check_program(answers[slots[kind]])
                if not checked.ok:
                    prefix = f"chunk {chunk.chunk_index} (lines {chunk.first_line}-{chunk.last_line}): "
                    _fail(record, f"chunk/{kind}", checked, prefix)
                    continue
                chunk_programs.append(checked.value)
        per_chunk.append((chunk, chunk_programs))
        programs.extend(chunk_programs)
        ranges.extend([(chunk.first_line, chunk.last_line)] * len(chunk_programs))
    if record["status"] in ("failed", "invalid"):
        return
    merged = merge_programs(
        programs,
        text=doc.text,
        line_ranges=ranges,
        max_removed_fraction=settings.max_removed_fraction,
        noop=settings.noop,
    )
    record["chunk_program"] = merged.program
    record["removed_fraction"] = merged.removed_fraction
    record["notes"].extend(merged.notes)
    for chunk, chunk_programs in per_chunk:
        own = merge_programs(
            chunk_programs,
            text=doc.text,
            line_ranges=[(chunk.first_line, chunk.last_line)] * len(chunk_programs),
            max_removed_fraction=1.0,
            noop=settings.noop,
        )
        record["chunks"].append(
            {
                "chunk_index": chunk.chunk_index,
                "first_line": chunk.first_line,
                "last_line": chunk.last_line,
                "program": own.program,
            }
        )
    if merged.needs_review:
        record["status"] = "review"
        record["reason"] = "removed_fraction"
        record["detail"] = (
            f"removes {merged.removed_lines} of {merged.n_lines} lines "
            f"({merged.removed_fraction:.0%} > {settings.max_removed_fraction:.0%})"
        )


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per status, per (status, reason), and how many documents were kept / dropped."""
    statuses: Counter = Counter()
    reasons: Counter = Counter()
    labels: Counter = Counter()
    for record in records:
        statuses[record["status"]] += 1
        if record["reason"]:
            reasons[(record["status"], record["reason"])] += 1
        if record["doc_program"]:
            labels[record["doc_program"]] += 1
    return {"statuses": dict(statuses), "reasons": dict(reasons), "labels": dict(labels)}
