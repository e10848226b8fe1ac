"""Seed programs: the gold chunk program written from line labels (``seed_labels``), and its check by execution.

Each chunk's program lists its removals (consecutive removed lines merged,
``remove_lines(line_start=a, line_end=b)``, global 0-based line numbers, inclusive) and normalizations in
line order, or ``keep_chunk()``. The chunk programs joined by ``\\n`` are the page's program, which is
**executed with the reference executor** (``verify_program``): it must give exactly the expected clean
lines (or the executor's own drop when the expected text falls under its ≤10-words / ≤5%-kept rules) with
no error. ``prox_spark.training.seed.derive_page`` runs this for one page and retries a failing page
without its normalizations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prox_spark.chunking import Chunk
from prox_spark.programs import OpStatus, Outcome, Reason, execute
from prox_spark.training.seed_labels import LineLabel, resolve_blanks

KEEP_CHUNK = "keep_chunk()"


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


@dataclass(frozen=True)
class ChunkSeed:
    chunk: Chunk
    program: str
    removed_lines: tuple[int, ...]


def page_programs(text: str, labels: list[LineLabel], chunks: list[Chunk]) -> tuple[list[ChunkSeed], str]:
    """The chunk programs of a chunked page and the page's program (theirs joined by newlines)."""
    seeds = []
    for chunk in chunks:
        program, removed = chunk_program(labels, chunk.first_line, chunk.last_line)
        seeds.append(ChunkSeed(chunk, program, tuple(removed)))
    return seeds, "\n".join(s.program for s in seeds)
