"""A plain per-document Python transcription of the released ProX executor rules (prox-reference.md §1.3).

It is the baseline of ``benchmarks/executor.py`` and the oracle that tests compare the ``reference``
dialect against. It keeps the reference's shape on purpose, including the O(size of range) line set,
so only call it with small line numbers. It returns the final text only (no per-op audit).
"""

from __future__ import annotations


def _args_of(op: str) -> tuple[str | None, int]:
    if "(" not in op:
        return None, 1
    begin = op.index("(") + 1
    if ")" in op:
        return op[begin : op.index(")")], 0
    return op[begin:-1], 1


def _apply(text: str, program_lines: list[str]) -> tuple[str, int]:
    n_lines = len(text.split("\n"))
    to_remove: set[int] = set()
    intervals: list[tuple[int, int]] = []
    errors = 0
    for op in program_lines:
        if op.startswith("remove_lines") and "all=True" in op:
            to_remove = set(range(n_lines))
        elif op.startswith("remove_lines"):
            args, err = _args_of(op)
            errors += err
            if args is None:
                continue
            parts = args.split(",")
            try:
                first, last = int(parts[0].split("=")[1]), int(parts[1].split("=")[1])
            except (IndexError, ValueError):
                errors += 1
                continue
            intervals.append((first, last))
            to_remove.update(range(first, last + 1))
        elif op.startswith("normalize"):
            args, err = _args_of(op)
            errors += err
            if args is None:
                continue
            parts = args.split(",")
            try:
                if len(parts) == 1:
                    text = text.replace(parts[0].split("=")[1].strip('"'), "")
                elif len(parts) == 2:
                    source = parts[0].split("=")[1].strip('"')
                    target = parts[1].split("=")[1].strip('"')
                    if source not in ("", " "):
                        text = text.replace(source, target)
            except IndexError:
                errors += 1
    lines = text.split("\n")
    kept = [line for i, line in enumerate(lines) if i not in to_remove]
    merged: list[tuple[int, int]] = []
    for first, last in sorted(intervals, key=lambda pair: pair[0]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    errors += sum(1 for first, last in merged if first >= len(lines) or last >= len(lines))
    return "\n".join(kept), errors


def execute_chunk_program(text: str, program: str) -> str:
    """The reference ``execute_meta_operations`` (chunk stage), with a guard for word-less text."""
    processed, errors = _apply(text, program.strip(" ").split("\n"))
    words_after, words_before = len(processed.split()), len(text.split())
    if words_before == 0:
        return ""
    if words_after / words_before <= 1 - 0.95 and errors < 2:
        return ""
    if words_after <= 10:
        return ""
    if words_after / words_before >= 0.0 and errors < 2:
        return processed
    return text


def execute_doc_program(text: str, program: str) -> str:
    """The reference doc-stage executor: any ``drop`` substring drops the document."""
    return "" if "drop" in program.strip(" ") else text
