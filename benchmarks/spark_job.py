"""Spark overhead and scaling of the refine job.

For each corpus size (documents resampled from the shared real pages), the same documents and the same
models run (a) through the Spark refine job on local[2] into Delta, and (b) through the same core
pipeline (``prox_spark.clean``) in two plain Python processes, one per core. Printed: docs/s of each, the
Spark overhead (b/a - 1, target ≤ 20%), cost per document across sizes (target flat within 20%), and the
driver's peak memory (Python RSS and JVM resident set), which must not grow with the corpus.

    python -m benchmarks.spark_job [--sizes 1000,10000,100000] [--models DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cleaning" / "trafilatura_eval_segments.jsonl.gz"
REPO = Path(__file__).resolve().parents[1]


def write_corpus(root: Path, n_docs: int, shards: int, seed: int = 0) -> list[Path]:
    """``n_docs`` pages resampled (with replacement, unique ids) from the shared set into ``shards`` files."""
    with gzip.open(SHARED, "rt", encoding="utf-8") as handle:
        pages = [row["noisy_text"] for row in map(json.loads, handle) if row["noisy_text"].strip()]
    rng = random.Random(seed)
    paths = [root / f"part-{i:03d}.jsonl" for i in range(shards)]
    outs = [open(p, "w", encoding="utf-8") for p in paths]
    for i in range(n_docs):
        outs[i % shards].write(json.dumps({"id": f"d{i}", "text": rng.choice(pages)}) + "\n")
    for out in outs:
        out.close()
    return paths


def models_dir(args, work: Path) -> dict[str, str]:
    if args.models:
        return {"doc": str(Path(args.models) / "doc"), "chunk": str(Path(args.models) / "chunk")}
    from prox_spark.training.untrained import build_untrained_refiners

    with gzip.open(SHARED, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["noisy_text"] for _, line in zip(range(300), handle)]
    built = build_untrained_refiners(work / "models", texts, max_prompt_tokens=1024, max_new_tokens=16)
    return {k: str(v) for k, v in built.items()}


def overrides(models: dict[str, str], corpus: Path, output: Path) -> list[str]:
    return [
        f"input.path={corpus}", f"output.path={output}", f"models.doc.path={models['doc']}",
        f"models.chunk.path={models['chunk']}", "models.provider=cpu", "run_id=bench",
    ]


def _jvm_peak_kib(stop: threading.Event, peak: list[int]) -> None:
    """Poll the JVM children of this process for their resident set (VmRSS), keeping the peak."""
    me = os.getpid()
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                if f"PPid:\t{me}\n" in status and "java" in Path(f"/proc/{pid}/cmdline").read_text():
                    rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1])
                    peak[0] = max(peak[0], rss)
            except (OSError, StopIteration, ValueError):
                continue
        stop.wait(0.5)


def run_spark(models, corpus: Path, output: Path) -> tuple[float, int]:
    """Seconds for the refine job (session already warm) and the JVM's peak RSS in KiB."""
    from jobs.refine import preflight, run_refine
    from jobs.spark import build_local_session
    from prox_spark.config import load_config

    spark = build_local_session("prox-bench", master="local[2]", shuffle_partitions=4)
    config = load_config(None, overrides(models, corpus, output))
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_jvm_peak_kib, args=(stop, peak), daemon=True)
    watcher.start()
    started = time.perf_counter()
    summary = run_refine(spark, config, preflight(config))
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    assert summary.balanced
    return seconds, peak[0]


def _clean_one(args: tuple[list[str], str, str]) -> None:
    shard_paths, models_json, out_dir = args
    from prox_spark.clean import clean_file
    from prox_spark.config import load_config

    models = json.loads(models_json)
    config = load_config(None, [f"models.doc.path={models['doc']}", f"models.chunk.path={models['chunk']}",
                                "models.provider=cpu", "models.intra_op_threads=1"])
    for path in shard_paths:
        with open(Path(out_dir) / (Path(path).name + ".out"), "w", encoding="utf-8") as out:
            clean_file(path, out, config)


def run_plain(models, shards: list[Path], out_dir: Path) -> float:
    """Seconds for two plain Python processes, each cleaning half of the shards."""
    halves = [[str(p) for p in shards[0::2]], [str(p) for p in shards[1::2]]]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_clean_one, [(h, json.dumps(models), str(out_dir)) for h in halves])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--models", help="model root with doc/ and chunk/ (default: untrained tiny models)")
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"shared data not found at {SHARED}")
    with tempfile.TemporaryDirectory(prefix="prox-bench-") as tmp:
        work = Path(tmp)
        models = models_dir(args, work)
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            corpus = work / f"corpus-{size}"
            corpus.mkdir()
            shards = write_corpus(corpus, size, args.shards)
            plain_out = work / f"plain-{size}"
            plain_out.mkdir()
            plain = run_plain(models, shards, plain_out)
            spark_s, jvm_kib = run_spark(models, corpus, work / f"delta-{size}")
            driver_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows.append((size, plain, spark_s, driver_kib, jvm_kib))
            print(f"{size} docs: plain {size / plain:.1f} docs/s, spark {size / spark_s:.1f} docs/s", flush=True)
    base = rows[0][2] / rows[0][0]
    print(f"\n{'docs':>8s} {'plain docs/s':>13s} {'spark docs/s':>13s} {'overhead':>9s} {'ms/doc':>8s} "
          f"{'vs first':>9s} {'driver RSS':>11s} {'JVM RSS':>9s}")
    for size, plain, spark_s, driver_kib, jvm_kib in rows:
        per_doc = spark_s / size
        print(f"{size:8d} {size / plain:13.1f} {size / spark_s:13.1f} {spark_s / plain - 1:8.0%} "
              f"{per_doc * 1000:8.1f} {per_doc / base:8.2f}x {driver_kib / 1024:9.0f}MB {jvm_kib / 1024:7.0f}MB")
    print("targets: Spark overhead ≤ 20%; ms/doc flat within 20% across sizes; driver memory bounded")


if __name__ == "__main__":
    sys.exit(main())
