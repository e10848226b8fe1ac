"""The chunk-range guard: a chunk program may only remove lines of the chunk its model was shown.

The reference merges every chunk's program into one document program and lets any ``remove_lines``
reach any line of the document. A small model's commonest error is a line number from outside its chunk
(the bundled tiny generative chunk model: 22% of the lines it removes on the held-out seed split lie outside
the chunk it saw, ``resources/models/reports/chunk.md``), and such a range removes good text of another
chunk or runs past the document's end, which the executor counts as an error. With
``models.clip_chunk_programs`` the pipeline clips each chunk's removals to its own line range before the
merge. Off by default: the reference behaviour. The guard rewrites program text only from parsed, validated
ops (``prox_spark.programs.parse``); model output is never evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from prox_spark.programs import RemoveAllLines, RemoveLines, parse


@dataclass(frozen=True)
class ClippedProgram:
    #: the program with every readable ``remove_lines`` limited to the chunk's lines (what is executed)
    program: str
    #: ``remove_lines`` ops the guard narrowed, or dropped because no line of them was in the chunk
    clipped_ops: int


def clip_to_chunk(program: str, first_line: int, last_line: int) -> ClippedProgram:
    """``program`` with each error-free ``remove_lines`` clipped to lines ``first_line..last_line``.

    A range wholly outside the chunk is dropped; ``remove_lines(all=True)`` becomes the chunk's whole
    range. Every other program line (``normalize``, ``keep_chunk``, unreadable lines, which the executor
    still counts as errors) is kept verbatim and in order.
    """
    kept: list[str] = []
    clipped = 0
    for line in parse(program, stage="chunk", dialect="reference").lines:
        op = line.op
        if isinstance(op, RemoveAllLines) and line.errors == 0:
            clipped += 1
            kept.append(_remove_lines(first_line, last_line))
            continue
        if isinstance(op, RemoveLines) and line.errors == 0:
            start, end = max(op.start, first_line), min(op.end, last_line)
            if (start, end) != (op.start, op.end):
                clipped += 1
                if start <= end:
                    kept.append(_remove_lines(start, end))
                continue
        kept.append(line.source_text)
    return ClippedProgram("\n".join(kept), clipped)


def _remove_lines(start: int, end: int) -> str:
    return f"remove_lines(line_start={start}, line_end={end})"
