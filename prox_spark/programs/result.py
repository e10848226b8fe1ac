"""The executor's per-document result: final text, decision, reason and per-op statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from prox_spark.programs.ops import ParsedLine
from prox_spark.text import EMPTY_TEXT as _EMPTY_TEXT


class Outcome(str, Enum):
    """How a document left the executor."""

    KEPT = "kept"
    #: ≥ ``error_fallback_at`` errors: the program was ignored and the original text kept.
    KEPT_ORIGINAL = "kept_original"
    DROPPED = "dropped"


class Reason(str, Enum):
    """Why a document was dropped, or why its program was ignored."""

    DOC_PROGRAM_DROP = "doc_program_drop"
    KEPT_FRACTION_TOO_LOW = "kept_fraction_too_low"
    TOO_FEW_WORDS = "too_few_words"
    EMPTY_TEXT = _EMPTY_TEXT  # the same reason in every table (``prox_spark.text``)
    INVALID_TEXT = "invalid_text"
    TOO_MANY_ERRORS = "too_many_errors"


@dataclass
class ExecutionResult:
    """Result of running one program on one document.

    ``text`` is the final text, ``""`` when the document is dropped (as the reference returns).
    ``reason`` is set for dropped documents and for ``KEPT_ORIGINAL`` (``too_many_errors``).
    ``ops`` holds every program line with its status; ``errors`` is the document's error count.
    """

    text: str
    outcome: Outcome
    reason: Optional[Reason]
    ops: list[ParsedLine] = field(default_factory=list)
    errors: int = 0
    words_before: int = 0
    words_after: int = 0
    lines_before: int = 0
    lines_after: int = 0

    @property
    def dropped(self) -> bool:
        return self.outcome is Outcome.DROPPED

    @property
    def kept(self) -> bool:
        return not self.dropped

    def as_record(self) -> dict:
        """Flat dict form (one batch row); ``ops`` as a list of dicts for Arrow ``list<struct>``."""
        return {
            "text": self.text,
            "kept": self.kept,
            "outcome": self.outcome.value,
            "reason": None if self.reason is None else self.reason.value,
            "errors": self.errors,
            "n_ops": sum(1 for line in self.ops if line.op is not None),
            "words_before": self.words_before,
            "words_after": self.words_after,
            "lines_before": self.lines_before,
            "lines_after": self.lines_after,
            "ops": [line.as_record() for line in self.ops],
        }
