"""Executor throughput: documents/s on one core, both dialects, beside a plain per-document loop.

Inputs are the shared cleaning set's real pages (../shared/data/cleaning/trafilatura_eval_segments.jsonl.gz)
with realistic chunk programs of 3–4 ops (navigation removed at the top, a footer at the bottom, an inline
string normalised, a no-op). The baseline is ``benchmarks/plain_reference.py``: the released executor's
rules as a plain Python loop, returning only the final text. Figures are printed as ratios to it.

    python benchmarks/executor.py [--docs N] [--repeat R]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path
from typing import Callable

from benchmarks.plain_reference import execute_chunk_program
from prox_spark.programs import execute, execute_batch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cleaning" / "trafilatura_eval_segments.jsonl.gz"
_UNSAFE = set('"(),=\n')


def realistic_program(text: str, must_remove: list[str]) -> str:
    """3–4 ops as a chunk model writes them: nav lines, an inline normalize, footer lines, a no-op."""
    n_lines = len(text.split("\n"))
    ops = [f"remove_lines(line_start=0, line_end={min(2, n_lines - 1)})"]
    snippet = next((s for s in must_remove if s in text and not (_UNSAFE & set(s)) and len(s) < 80), None)
    if snippet:
        ops.append(f'normalize(source_str="{snippet}", target_str="")')
    ops.append(f"remove_lines(line_start={max(n_lines - 3, 0)}, line_end={n_lines - 1})")
    ops.append("keep_chunk()")
    return "\n".join(ops)


def load(limit: int) -> tuple[list[str], list[str]]:
    texts, programs = [], []
    with gzip.open(SHARED, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["noisy_text"])
            programs.append(realistic_program(row["noisy_text"], row.get("must_remove") or []))
            if len(texts) >= limit:
                break
    return texts, programs


def docs_per_second(run: Callable[[], object], n_docs: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return n_docs / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=990)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"shared data not found at {SHARED}")
    texts, programs = load(args.docs)
    n = len(texts)
    mean_bytes = sum(len(t.encode()) for t in texts) / n
    print(f"{n} real pages, mean {mean_bytes / 1024:.1f} KiB, {sum(p.count(chr(10)) + 1 for p in programs) / n:.1f} ops/program, 1 core")

    baseline = docs_per_second(lambda: [execute_chunk_program(t, p) for t, p in zip(texts, programs)], n, args.repeat)
    rows = [("plain reference loop (baseline)", baseline)]
    for dialect in ("reference", "strict"):
        rows.append((f"execute() {dialect}", docs_per_second(
            lambda d=dialect: [execute(t, p, stage="chunk", dialect=d) for t, p in zip(texts, programs)], n, args.repeat)))
        rows.append((f"execute_batch() {dialect} (DataFrame out)", docs_per_second(
            lambda d=dialect: execute_batch(texts, programs, stage="chunk", dialect=d), n, args.repeat)))
    rows.append(("execute_batch() doc stage reference", docs_per_second(
        lambda: execute_batch(texts, ["keep_doc()"] * n, stage="doc"), n, args.repeat)))
    print(f"{'implementation':45s} {'docs/s':>10s} {'vs baseline':>12s}")
    for name, rate in rows:
        print(f"{name:45s} {rate:10.0f} {rate / baseline:11.2f}x")


if __name__ == "__main__":
    main()
