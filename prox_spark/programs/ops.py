"""Typed program operations and the per-line parse record both dialects produce.

Models write programs as text; the parsers turn each program line into a ``ParsedLine`` holding a typed
op (or the reason it could not be read). Keeping the op types apart from parsing lets the two dialects
(``reference`` and ``strict``) disagree on syntax while the executor applies the same ops the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Union


@dataclass(frozen=True)
class KeepDoc:
    """Doc stage: keep the document unchanged."""

    name: str = "keep_doc"


@dataclass(frozen=True)
class DropDoc:
    """Doc stage: drop the whole document."""

    name: str = "drop_doc"


@dataclass(frozen=True)
class KeepChunk:
    """Chunk stage no-op. ``alias`` records which spelling the model used (keep_chunk, skip_chunk, untouch_doc)."""

    alias: str = "keep_chunk"
    name: str = "keep_chunk"


@dataclass(frozen=True)
class RemoveLines:
    """Remove lines ``start..end`` (0-based, both ends inclusive) of the whole document."""

    start: int
    end: int
    name: str = "remove_lines"


@dataclass(frozen=True)
class RemoveAllLines:
    """``remove_lines(all=True)``: remove every line of the document."""

    name: str = "remove_all_lines"


@dataclass(frozen=True)
class Normalize:
    """Replace every occurrence of ``source`` with ``target`` across the whole document."""

    source: str
    target: str = ""
    name: str = "normalize"


Op = Union[KeepDoc, DropDoc, KeepChunk, RemoveLines, RemoveAllLines, Normalize]

NOOP_ALIASES = ("keep_chunk", "skip_chunk", "untouch_doc")


class OpStatus(str, Enum):
    """What happened to one program line.

    ``parse_error`` and ``out_of_range`` count towards the error total (the ≥2-errors fallback);
    ``ignored`` lines (comments, no-ops, forms the reference silently skips) and ``not_found`` /
    ``skipped`` normalizations do not, exactly as in the released executor.

    ``too_large`` marks what crossed one of the executor's bounds (``ExecutorConfig.max_growth``,
    ``max_ops``, ``max_program_chars``), which the released executor does not have: it carries
    ``error_fallback_at`` errors on its own, so the whole program is ignored rather than cut short.
    """

    APPLIED = "applied"
    NOT_FOUND = "not_found"
    OUT_OF_RANGE = "out_of_range"
    PARSE_ERROR = "parse_error"
    IGNORED = "ignored"
    SKIPPED = "skipped"
    TOO_LARGE = "too_large"


@dataclass
class ParsedLine:
    """One line of a program after parsing (and, once executed, after application).

    ``errors`` is how many errors this line adds to the document's error count; one malformed
    reference-dialect line can add two (a missing ``)`` and a failed int parse).
    """

    index: int
    source_text: str
    op: Optional[Op]
    status: OpStatus
    errors: int = 0
    detail: str = ""

    def as_record(self) -> dict:
        """Flat dict form used for Arrow/Spark columns (``array<struct<...>>``)."""
        op = self.op
        return {
            "line": self.index,
            "op": None if op is None else op.name,
            "start": getattr(op, "start", None),
            "end": getattr(op, "end", None),
            "source": getattr(op, "source", None),
            "target": getattr(op, "target", None),
            "status": self.status.value,
            "errors": self.errors,
            "detail": self.detail,
        }


@dataclass
class ParsedProgram:
    """All lines of one program plus the parse-time error total."""

    lines: list[ParsedLine] = field(default_factory=list)

    @property
    def parse_errors(self) -> int:
        return sum(line.errors for line in self.lines)
