"""Apply a parsed program to one document and take the keep/drop decision.

Semantics are the released ProX executor's (prox-reference.md §1.2–1.3), shared by both dialects:

- doc stage: ``drop_doc`` drops; anything else keeps.
- chunk stage: normalizations run first, in program order, each a global ``str.replace``; line removals
  (0-based, inclusive) are applied afterwards to the normalised text, whatever their position in the
  program. Out-of-range removals are counted once per *merged* interval, as the reference counts them.
- decision rules, in order: kept fraction ≤ 5% (with < 2 errors) → drop; ≤ 10 words left → drop;
  < 2 errors → processed text; else the original text (program ignored).

Unlike the reference, cost is O(lines + ops) rather than O(size of the ranges), and whitespace-only or
missing text is a defined ``empty_text`` drop instead of a ZeroDivisionError.

Bounded execution (``ExecutorConfig.max_growth``, ``max_ops``, ``max_program_chars``; both dialects): a
program longer than ``max_program_chars`` or ``max_ops`` lines is not parsed, and a ``normalize`` whose
result would exceed ``max_growth`` times the text's length (before the op, and at the start of the
program; any text may reach ``GROWTH_FLOOR_CHARS``) is not performed. Its result length is computed from
the match count first, so nothing large is ever allocated. Each of these is one ``too_large`` line
carrying ``error_fallback_at`` errors: the program is ignored as a whole, exactly as ProX ignores a
program with ≥2 errors (the original text is kept, or dropped by the ≤10-words rule that the reference
applies even then). A partly applied program is never returned. Inside the bounds both dialects behave
as before, and the reference dialect stays bit-exact with the released executor.
"""

from __future__ import annotations

from typing import Any, Literal

from prox_spark.programs.config import REFERENCE_CONFIG, ExecutorConfig
from prox_spark.programs.ops import (
    DropDoc,
    Normalize,
    OpStatus,
    ParsedLine,
    ParsedProgram,
    RemoveAllLines,
    RemoveLines,
)
from prox_spark.programs.reference import parse_reference_chunk, parse_reference_doc
from prox_spark.programs.result import ExecutionResult, Outcome, Reason
from prox_spark.programs.strict import parse_strict_chunk, parse_strict_doc
from prox_spark.text import coerce_text, count_lines

Stage = Literal["doc", "chunk"]
Dialect = Literal["reference", "strict"]

_TEXT_OPS = (Normalize, RemoveLines, RemoveAllLines)

#: below this many characters a text may grow freely: the bound is there to stop runaway memory and
#: time, which short texts cannot cause, and short documents keep the released executor's output exactly
GROWTH_FLOOR_CHARS = 1 << 12


_PARSERS = {
    ("reference", "doc"): parse_reference_doc,
    ("reference", "chunk"): parse_reference_chunk,
    ("strict", "doc"): parse_strict_doc,
    ("strict", "chunk"): parse_strict_chunk,
}


def parse(program: str, *, stage: Stage, dialect: Dialect = "reference") -> ParsedProgram:
    """Parse a program's text into typed ops with per-line status (nothing is applied)."""
    try:
        parser = _PARSERS[(dialect, stage)]
    except KeyError:
        raise ValueError(
            f"unknown stage/dialect {stage!r}/{dialect!r}: stage is 'doc' or 'chunk', dialect 'reference' or 'strict'"
        ) from None
    return parser(program)


def execute(
    text: Any,
    program: Any,
    *,
    stage: Stage,
    dialect: Dialect = "reference",
    config: ExecutorConfig | None = None,
) -> ExecutionResult:
    """Run ``program`` (model output, untrusted) on ``text`` and decide keep/drop. Never raises on bad input.

    The reference dialect always uses the released thresholds; ``config``'s thresholds apply to the strict
    dialect and its bounds (``max_growth``, ``max_ops``, ``max_program_chars``) to both.
    """
    _check_mode(stage, dialect)
    rules = REFERENCE_CONFIG if config is None else config.for_dialect(dialect)
    program_text, program_problem = _coerce_program(program)
    text_value = coerce_text(text)  # documents arrive from untrusted readers
    if text_value is None:
        return ExecutionResult("", Outcome.DROPPED, Reason.INVALID_TEXT)
    if program_problem is not None:
        parsed = _ignored(OpStatus.PARSE_ERROR, program_problem, rules)
    elif (size_problem := _size_problem(program_text, rules)) is not None:
        parsed = _ignored(OpStatus.TOO_LARGE, size_problem, rules)
    else:
        parsed = parse(program_text, stage=stage, dialect=dialect)
    if stage == "doc":
        return _execute_doc(text_value, parsed)
    return _execute_chunk(text_value, parsed, rules)


def _check_mode(stage: str, dialect: str) -> None:
    if (dialect, stage) not in _PARSERS:
        raise ValueError(
            f"unknown stage/dialect {stage!r}/{dialect!r}: stage is 'doc' or 'chunk', dialect 'reference' or 'strict'"
        )


def _coerce_program(program: Any) -> tuple[str, str | None]:
    """Programs are model output: None is an empty program; a non-string one is unreadable (≥2 errors)."""
    if program is None:
        return "", None
    if isinstance(program, str):
        return program, None
    if isinstance(program, (bytes, bytearray)):
        return bytes(program).decode("utf-8", errors="replace"), None
    return "", f"program is not a string ({type(program).__name__})"


def _ignored(status: OpStatus, detail: str, rules: ExecutorConfig) -> ParsedProgram:
    """A program that is not run at all: one line with enough errors for the fallback to the original."""
    return ParsedProgram([ParsedLine(0, "", None, status, rules.error_fallback_at, detail)])


def _size_problem(program: str, rules: ExecutorConfig) -> str | None:
    """Why a program is too big to parse, checked before parsing (counting costs no allocation): every
    program line becomes an audit record, and each op a scan of the document."""
    if len(program) > rules.max_program_chars:
        limit = rules.max_program_chars
        return f"program has {len(program)} characters, more than executor.max_program_chars={limit}: ignored"
    n_lines = program.count("\n") + 1
    if n_lines > rules.max_ops:
        return f"program has {n_lines} lines (one op each), more than executor.max_ops={rules.max_ops}: ignored"
    return None


def _execute_doc(text: str, parsed: ParsedProgram) -> ExecutionResult:
    words = len(text.split())
    lines = count_lines(text)
    if words == 0:
        return ExecutionResult("", Outcome.DROPPED, Reason.EMPTY_TEXT, parsed.lines, parsed.parse_errors, 0, 0, lines, 0)
    if any(isinstance(line.op, DropDoc) and line.status is OpStatus.APPLIED for line in parsed.lines):
        return ExecutionResult("", Outcome.DROPPED, Reason.DOC_PROGRAM_DROP, parsed.lines, parsed.parse_errors, words, 0, lines, 0)
    return ExecutionResult(text, Outcome.KEPT, None, parsed.lines, parsed.parse_errors, words, words, lines, lines)


def _execute_chunk(text: str, parsed: ParsedProgram, rules: ExecutorConfig) -> ExecutionResult:
    words_before = len(text.split())
    lines_before = count_lines(text)
    normalized = _apply_normalizations(text, parsed.lines, rules)
    if normalized is None:  # a normalize crossed max_growth: the program is ignored, as with ≥2 errors
        processed, lines_after = text, lines_before
    else:
        processed, lines_after = _remove_lines(normalized, parsed.lines)
        del normalized  # only the original and processed texts stay alive while the words are counted
    errors = sum(line.errors for line in parsed.lines)
    words_after = len(processed.split())
    stats = dict(ops=parsed.lines, errors=errors, words_before=words_before, lines_before=lines_before)

    if words_before == 0:
        return ExecutionResult("", Outcome.DROPPED, Reason.EMPTY_TEXT, **stats, words_after=0, lines_after=0)
    kept_fraction = words_after / words_before * 1.0
    too_many_errors = errors >= rules.error_fallback_at
    if kept_fraction <= (1 - rules.max_removed_fraction) and not too_many_errors:
        return ExecutionResult("", Outcome.DROPPED, Reason.KEPT_FRACTION_TOO_LOW, **stats, words_after=0, lines_after=0)
    if words_after <= rules.drop_at_or_below_words:
        # The reference applies this to the processed text even when the program is then ignored.
        return ExecutionResult("", Outcome.DROPPED, Reason.TOO_FEW_WORDS, **stats, words_after=0, lines_after=0)
    if kept_fraction >= rules.min_kept_fraction and not too_many_errors:
        return ExecutionResult(processed, Outcome.KEPT, None, **stats, words_after=words_after, lines_after=lines_after)
    return ExecutionResult(
        text, Outcome.KEPT_ORIGINAL, Reason.TOO_MANY_ERRORS, **stats, words_after=words_before, lines_after=lines_before
    )


def _apply_normalizations(text: str, lines: list[ParsedLine], rules: ExecutorConfig) -> str | None:
    """Global replacements in program order; a later one sees earlier results (as the reference).

    Returns None when a replacement would grow the text past ``rules.max_growth`` times the length
    before the op, and times the original length (a text may always reach ``GROWTH_FLOOR_CHARS``):
    that op is marked ``too_large`` with ``error_fallback_at`` errors and every text op not yet run is
    marked ``skipped``. The result length is computed from the match count, so an oversized text is
    never built.
    """
    original_length = len(text)
    for position, line in enumerate(lines):
        if not isinstance(line.op, Normalize) or line.status is not OpStatus.APPLIED:
            continue
        source, target = line.op.source, line.op.target
        growth = len(target) - len(source)
        # Only a growing replacement needs the match count; the others stop at the first match.
        matches = text.count(source) if source and growth > 0 else None
        if not source or matches == 0 or (matches is None and source not in text):
            line.status = OpStatus.NOT_FOUND
            continue
        if matches is not None:
            new_length = len(text) + matches * growth
            limit = max(rules.max_growth * min(len(text), original_length), GROWTH_FLOOR_CHARS)
            if new_length > limit:
                line.status, line.errors = OpStatus.TOO_LARGE, line.errors + rules.error_fallback_at
                line.detail = (
                    f"{matches} replacements would grow the text from {len(text)} to {new_length} characters, "
                    f"more than executor.max_growth={rules.max_growth} allows ({int(limit)}): program ignored"
                )
                _skip_rest(lines[position + 1 :])
                return None
        text = text.replace(source, target)
    return text


def _skip_rest(lines: list[ParsedLine]) -> None:
    """Mark the text ops a growth failure leaves unrun, so the audit does not claim they were applied."""
    for line in lines:
        if isinstance(line.op, _TEXT_OPS) and line.status is OpStatus.APPLIED:
            line.status = OpStatus.SKIPPED
            line.detail = "not run: an earlier normalize crossed executor.max_growth"


def _remove_lines(text: str, lines: list[ParsedLine]) -> tuple[str, int]:
    """The text without the removed lines, and how many lines are left."""
    text_lines = text.split("\n")
    removed = _removal_mask(lines, len(text_lines))
    kept_lines = [line for line, gone in zip(text_lines, removed) if not gone]
    return "\n".join(kept_lines), len(kept_lines)


def _removal_mask(lines: list[ParsedLine], n_lines: int) -> list[bool]:
    """Which of the ``n_lines`` lines go, and the reference's out-of-range errors, in O(lines + ops)."""
    removals = [line for line in lines if isinstance(line.op, RemoveLines) and line.status is OpStatus.APPLIED]
    _count_out_of_range(removals, n_lines)
    if any(isinstance(line.op, RemoveAllLines) and line.status is OpStatus.APPLIED for line in lines):
        return [True] * n_lines
    delta = [0] * (n_lines + 1)
    for line in removals:
        first, last = max(line.op.start, 0), min(line.op.end, n_lines - 1)
        if first <= last:
            delta[first] += 1
            delta[last + 1] -= 1
    mask, depth = [], 0
    for step in delta[:n_lines]:
        depth += step
        mask.append(depth > 0)
    return mask


def _count_out_of_range(removals: list[ParsedLine], n_lines: int) -> None:
    """Merge intervals as the reference does (sorted by start, touching ones merge) and charge one
    error per merged interval that starts past the end or runs past it, to its first offending op."""
    ordered = sorted(removals, key=lambda line: line.op.start)
    groups: list[tuple[int, int, list[ParsedLine]]] = []
    for line in ordered:
        start, end = line.op.start, line.op.end
        if groups and start <= groups[-1][1] + 1:
            g_start, g_end, members = groups[-1]
            members.append(line)
            groups[-1] = (g_start, max(g_end, end), members)
        else:
            groups.append((start, end, [line]))
    for g_start, g_end, members in groups:
        if g_start < n_lines and g_end < n_lines:
            continue
        offenders = [m for m in members if m.op.end >= n_lines] or members
        for member in offenders:
            member.status = OpStatus.OUT_OF_RANGE
            member.detail = f"range {member.op.start}..{member.op.end} past the last line ({n_lines - 1})"
        offenders[0].errors += 1
