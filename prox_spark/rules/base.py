"""The rule contract: a heuristic filter keeps a document or drops it with a named reason, and is counted.

Rules are the fixed-heuristic baselines (Gopher, C4, FineWeb) that ProX programs are compared against, so
every drop must say *why* (as datatrove's filters do) and every rule must be counted the same way: how
many documents it forwarded, how many it dropped per reason, and how many lines it removed per reason.
Rules are pure functions of the text (no state, no randomness), so a Spark task that is retried gives the
same rows, and a chain can be shared by every task of a worker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from prox_spark.text import EMPTY_TEXT  # whitespace-only input: the chain drops it before any rule runs


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one document.

    ``text`` is the document after the rule: line-level rules (C4) remove lines and return the rest; a
    dropped document keeps the text the rule saw, for audits. ``lines_removed`` counts removed lines per
    reason; it is empty for document-level rules and for drops (a dropped document has no surviving lines
    to account for).
    """

    keep: bool
    reason: str | None
    text: str
    lines_removed: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.keep and self.reason is not None:
            raise ValueError(f"a kept document has no drop reason (got {self.reason!r})")
        if not self.keep and not self.reason:
            raise ValueError("a dropped document needs a reason")


def kept(text: str, lines_removed: Mapping[str, int] | None = None) -> RuleResult:
    """Keep ``text`` (possibly edited), recording which lines were removed and why."""
    return RuleResult(True, None, text, dict(lines_removed or {}))


def dropped(text: str, reason: str) -> RuleResult:
    """Drop the document with ``reason``."""
    return RuleResult(False, reason, text)


class Rule(Protocol):
    """A heuristic filter. ``name`` keys its counters, so names are unique within a chain."""

    name: str

    def apply(self, text: str) -> RuleResult: ...


def fraction(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, 0.0 when there is nothing to divide by, so rules are total on any text."""
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True)
class NonEmptyText:
    """Drops whitespace-only text; the chain runs it first so empty input is counted like any other drop."""

    name: str = "non_empty"

    def apply(self, text: str) -> RuleResult:
        return kept(text) if text.strip() else dropped(text, EMPTY_TEXT)


@dataclass
class RuleStats:
    """What one rule did: documents forwarded, documents dropped per reason, lines removed per reason."""

    forwarded: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    lines_removed: Counter[str] = field(default_factory=Counter)

    def record(self, result: RuleResult) -> None:
        if result.keep:
            self.forwarded += 1
            self.lines_removed.update(result.lines_removed)
        else:
            self.dropped[result.reason] += 1

    def merge(self, other: RuleStats) -> None:
        self.forwarded += other.forwarded
        self.dropped.update(other.dropped)
        self.lines_removed.update(other.lines_removed)

    def as_dict(self) -> dict:
        """Plain-dict form for the runs table / logs."""
        return {
            "forwarded": self.forwarded,
            "dropped": dict(self.dropped),
            "lines_removed": dict(self.lines_removed),
        }


@dataclass
class ChainStats:
    """Per-rule counters of a chain, keyed by rule name. Summed across documents with ``merge``."""

    rules: dict[str, RuleStats] = field(default_factory=dict)

    def __getitem__(self, name: str) -> RuleStats:
        return self.rules.setdefault(name, RuleStats())

    def merge(self, other: ChainStats) -> ChainStats:
        """Add ``other`` into this one (in place) and return it, so ``functools.reduce`` can sum a batch."""
        for name, stats in other.rules.items():
            self[name].merge(stats)
        return self

    def as_dict(self) -> dict:
        return {name: stats.as_dict() for name, stats in self.rules.items()}


@dataclass(frozen=True)
class ChainResult:
    """A chain's verdict: the last rule's result, the dropping rule's name (None if kept), the counters."""

    result: RuleResult
    rule: str | None
    stats: ChainStats


class RuleChain:
    """Applies rules in order, each to the previous one's text, and stops at the first drop.

    A ``NonEmptyText`` check runs first, so whitespace-only input is dropped as ``empty_text`` by a
    counted step rather than left to each rule's edge cases. The chain holds no state: ``apply`` returns
    this document's counters and callers merge them (a retried Spark task must not count twice).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = (NonEmptyText(), *rules)
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique within a chain (counters are keyed by name): {duplicates}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)

    def apply(self, text: str) -> ChainResult:
        stats = ChainStats()
        result = kept(text)
        for rule in self.rules:
            result = rule.apply(result.text)
            stats[rule.name].record(result)
            if not result.keep:
                return ChainResult(result, rule.name, stats)
        return ChainResult(result, None, stats)
