"""The rules as a refine-job stage: one row per document saying what the chain did, in the programs' terms.

The refine job records every stage in the same tables, so a rule chain's verdict is written like a
program's: the kept/dropped decision with the reason naming the rule (``c4_too_few_sentences``), the text
after the rules, word/line counts as the program executor counts them, and the line edits as ProX ops.
Rules only ever *remove* whole lines (C4 keeps the surviving lines verbatim, see ``prox_spark.rules.c4``),
so an edit is written as ``remove_lines(line_start=a, line_end=b)`` ranges over the input's
``\\n``-separated lines (0-based, inclusive): executing that program with the chunk executor gives back
the rules' text, and audits of removed lines read rule rows and model rows alike.

pandas is imported when a batch is run, so ``prox_spark.rules`` stays importable with the stdlib alone.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

from prox_spark.rules.base import ChainStats, RuleChain
from prox_spark.rules.presets import DEFAULT_PRESET, get_preset
from prox_spark.text import coerce_text, count_lines

if TYPE_CHECKING:
    import pandas as pd

#: Columns of ``rules_stage_batch``'s frame, in order; ``ops`` entries use the executor's op fields.
RULES_STAGE_COLUMNS = (
    "text",
    "kept",
    "outcome",
    "reason",
    "rule",
    "program",
    "ops",
    "words_before",
    "words_after",
    "lines_before",
    "lines_after",
    "latency_ms",
)

#: Reason for a value that is neither text, bytes nor missing (a reader bug upstream, not an empty page).
INVALID_TEXT = "invalid_text"

#: Detail of an op for an edit that is not a pure line removal (no current rule does this; kept so a
#: future in-line rule is reported, not mis-described as removed lines).
UNALIGNED_EDIT = "rules edited text inside lines: not expressible as removed lines"


def removed_line_ranges(before: str, after: str) -> list[tuple[int, int]] | None:
    """Inclusive ``(start, end)`` ranges of ``before``'s lines missing from ``after``.

    ``after``'s lines must be a subsequence of ``before``'s; each is matched to its earliest possible
    source line, so for repeated lines the ranges may name a different copy than the rule did, but removing
    them gives exactly ``after``. Returns None when ``after`` is not such a subsequence.
    """
    source, kept_lines = before.split("\n"), after.split("\n")
    removed: list[int] = []
    j = 0
    for i, line in enumerate(source):
        if j < len(kept_lines) and line == kept_lines[j]:
            j += 1
        else:
            removed.append(i)
    if j != len(kept_lines):
        return None
    ranges: list[tuple[int, int]] = []
    for i in removed:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1] = (ranges[-1][0], i)
        else:
            ranges.append((i, i))
    return ranges


def _op(line: int, op: str, start: int | None, end: int | None, status: str, detail: str) -> dict:
    return dict(line=line, op=op, start=start, end=end, source=None, target=None, status=status, errors=0,
                detail=detail)


def _dropped(reason: str, rule: str | None, before: str) -> dict:
    return dict(text="", kept=False, outcome="dropped", reason=reason, rule=rule, program="drop_doc()",
                ops=[_op(0, "drop_doc", None, None, "applied", reason)], words_before=len(before.split()),
                words_after=0, lines_before=count_lines(before) if before else 0, lines_after=0)


def _stage_row(chain: RuleChain, value: Any) -> dict:
    started = time.perf_counter()
    before = coerce_text(value)
    if before is None:
        row = _dropped(INVALID_TEXT, None, "")
    else:
        verdict = chain.apply(before)
        if not verdict.result.keep:
            row = _dropped(verdict.result.reason, verdict.rule, before)
        else:
            after = verdict.result.text
            program, ops = _edits(before, after, _editors(verdict.stats))
            row = dict(text=after, kept=True, outcome="kept", reason=None, rule=None, program=program, ops=ops,
                       words_before=len(before.split()), words_after=len(after.split()),
                       lines_before=count_lines(before), lines_after=count_lines(after))
    row["latency_ms"] = (time.perf_counter() - started) * 1000.0
    return row


def _edits(before: str, after: str, editors: str) -> tuple[str, list[dict]]:
    """The program text and ops that describe a kept document's line removals."""
    if after == before:
        return "keep_doc()", []
    ranges = removed_line_ranges(before, after)
    if ranges is None:
        return "", [_op(0, "edit", None, None, "applied", UNALIGNED_EDIT)]
    program = "\n".join(f"remove_lines(line_start={a}, line_end={b})" for a, b in ranges)
    return program, [_op(k, "remove_lines", a, b, "applied", editors) for k, (a, b) in enumerate(ranges)]


def _editors(stats: ChainStats) -> str:
    """Names of the rules that removed lines, with per-reason line counts (``c4: c4_line_empty=3``)."""
    parts = []
    for name, rule_stats in stats.rules.items():
        if rule_stats.lines_removed:
            counts = ", ".join(f"{reason}={n}" for reason, n in sorted(rule_stats.lines_removed.items()))
            parts.append(f"{name}: {counts}")
    return "; ".join(parts)


def rules_stage_batch(texts: Iterable[Any], preset: str | RuleChain = DEFAULT_PRESET) -> pd.DataFrame:
    """Run a rule chain as a refine stage over a batch; one row per input with ``RULES_STAGE_COLUMNS``.

    Never raises per row: missing text is an ``empty_text`` drop, a non-text value an ``invalid_text``
    drop. Dropped rows have ``text == ""`` and program ``drop_doc()``.
    """
    import pandas as pd

    chain = get_preset(preset) if isinstance(preset, str) else preset
    if isinstance(texts, pd.Series):
        texts = texts.astype(object).where(texts.notna(), None)
    elif hasattr(texts, "to_pylist"):
        texts = texts.to_pylist()
    rows = [_stage_row(chain, value) for value in texts]
    return pd.DataFrame.from_records(rows, columns=list(RULES_STAGE_COLUMNS))
