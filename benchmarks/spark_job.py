"""Spark overhead and scaling of the refine job.

For each corpus size (documents resampled from the shared real pages), the same documents and the same
models run (a) through the Spark refine job on local[2] into Delta, and (b) through the same core
pipeline (``prox_spark.clean``) in two plain Python processes, one per core. Printed per size: docs/s of
each, the Spark overhead (spark/plain - 1, target ≤ 20%), the job's own stage timings from the ``runs``
table (read / model stages / Delta writes) so fixed per-run costs and per-document costs can be told
apart, cost per document across sizes (target flat within 20%), and peak memory: this driver process,
the JVM, and the Python workers under it (they must not grow with the corpus).

The Spark session is warmed first with a small job (JVM JIT, Python workers, model sessions), as a
long-running cluster is; that warm-up is printed, not counted. ``--mode rules`` runs the cheap rule
stage instead of the models (both sides), for the scaling of the job's own machinery at sizes the models
cannot reach on a laptop.

Each size runs once per ``spark.staging`` strategy (``--staging``, default both), side by side on the same
corpus and the same warm session: ``persist`` (Spark's DISK_ONLY storage) and ``delta`` (staging Delta
tables, what Databricks serverless needs). The last lines give what ``delta`` costs over ``persist`` per run
and per document. ``--repeat N`` runs each N times, the strategies in turn, and reports each one's fastest run
(on a machine shared with other work a single run's time can swing by 2x).

    python -m benchmarks.spark_job [--docs 1000,10000] [--shards 8 | --shards 8,32] [--conf conf/local.yaml]
                                   [--models DIR] [--mode prox|rules] [--plain-max-docs N]
                                   [--staging persist,delta] [--repeat N] [--set input.shards_per_commit=8 ...]
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
WARMUP_DOCS = 64
STAGINGS = ("persist", "delta")


def write_corpus(root: Path, n_docs: int, shards: int, seed: int = 0) -> list[Path]:
    """``n_docs`` pages resampled (with replacement, unique ids) from the shared set into ``shards`` files."""
    with gzip.open(SHARED, "rt", encoding="utf-8") as handle:
        pages = [row["noisy_text"] for row in map(json.loads, handle) if row["noisy_text"].strip()]
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"part-{i:03d}.jsonl" for i in range(shards)]
    outs = [open(p, "w", encoding="utf-8") for p in paths]
    for i in range(n_docs):
        outs[i % shards].write(json.dumps({"id": f"d{i}", "text": rng.choice(pages)}) + "\n")
    for out in outs:
        out.close()
    return paths


def model_overrides(args) -> list[str]:
    """``--models DIR`` (with doc/ and chunk/) replaces the config's models; default: the config's."""
    if not args.models:
        return []
    return [f"models.doc.path={Path(args.models) / 'doc'}", f"models.chunk.path={Path(args.models) / 'chunk'}"]


class PeakMemory:
    """Polls, every 0.5 s, the resident set of the JVM children of this process and of the Python workers
    under them (pyspark.daemon and its forks), keeping the peak of each (KiB)."""

    def __init__(self) -> None:
        self.jvm_kib = 0
        self.workers_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            procs = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    status = dict(
                        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line
                    )
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    procs[pid] = (status["PPid"].strip(), int(status.get("VmRSS", "0 kB").split()[0]), cmd)
                except (OSError, KeyError, ValueError):
                    continue
            jvms = {pid for pid, (ppid, _, cmd) in procs.items() if ppid == me and "java" in cmd}
            workers, frontier = set(), set(jvms)
            while frontier:  # every descendant of the JVM (the daemon and the workers it forks)
                frontier = {pid for pid, (ppid, _, _) in procs.items() if ppid in frontier} - workers
                workers |= frontier
            self.jvm_kib = max(self.jvm_kib, sum(procs[p][1] for p in jvms))
            self.workers_kib = max(self.workers_kib, sum(procs[p][1] for p in workers))
            self._stop.wait(0.5)


def run_spark(spark, conf: str | None, extra: list[str], corpus: Path, output: Path) -> tuple[float, dict, PeakMemory]:
    """Seconds for the refine job, its stage timings (``runs.stage_seconds_json``) and peak memory."""
    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.config import load_config

    config = load_config(conf, [f"input.path={corpus}", f"output.path={output}", "run_id=bench", *extra])
    with PeakMemory() as memory:
        started = time.perf_counter()
        summary = run_refine(spark, config, preflight(config))
        seconds = time.perf_counter() - started
    assert summary.balanced
    row = spark.read.format("delta").load(str(output / "runs")).select("stage_seconds_json").first()
    return seconds, json.loads(row.stage_seconds_json), memory


def _clean_one(args: tuple[list[str], str | None, list[str], str]) -> float:
    shard_paths, conf, extra, out_dir = args
    from prox_spark.clean import clean_file
    from prox_spark.config import load_config

    config = load_config(conf, [*extra, "models.intra_op_threads=1"])
    started = time.perf_counter()
    for path in shard_paths:
        with open(Path(out_dir) / (Path(path).name + ".out"), "w", encoding="utf-8") as out:
            clean_file(path, out, config)
    return time.perf_counter() - started


def run_plain(conf: str | None, extra: list[str], shards: list[Path], out_dir: Path) -> float:
    """Seconds for two plain Python processes, each cleaning half of the shards (start-up included)."""
    halves = [[str(p) for p in shards[0::2]], [str(p) for p in shards[1::2]]]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_clean_one, [(h, conf, extra, str(out_dir)) for h in halves])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", "--sizes", dest="docs", default="1000,10000", help="comma-separated corpus sizes")
    parser.add_argument("--shards", default="8",
                        help="input files per corpus: one count for every size, or one per --docs size (a large "
                        "corpus comes in more files, as it would in production)")
    parser.add_argument("--conf", default=str(REPO / "conf" / "local.yaml"),
                        help="job config (default conf/local.yaml: the committed default models, 128-token chunks)")
    parser.add_argument("--models", help="model root with doc/ and chunk/ (default: the config's models)")
    parser.add_argument("--mode", choices=("prox", "rules"), default="prox",
                        help="prox: the models; rules: the rule stage only (the job's own machinery at larger sizes)")
    parser.add_argument("--plain-max-docs", type=int, default=0,
                        help="run the plain side only for sizes up to this many documents (0: every size); "
                        "larger sizes then report the Spark side's scaling alone")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="job config override for both sides, e.g. input.shards_per_commit=8 (repeatable)")
    parser.add_argument("--staging", default=",".join(STAGINGS),
                        help="spark.staging strategies to run, side by side on each corpus (persist, delta)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Spark runs per size and strategy, in turn; the fastest is reported (default 1)")
    parser.add_argument("--event-log", help="write Spark's event log (per-task run, CPU and GC times) to this folder")
    args = parser.parse_args()
    stagings = [s.strip() for s in args.staging.split(",") if s.strip()]
    if not stagings or any(s not in STAGINGS for s in stagings):
        raise SystemExit(f"--staging: a comma-separated list of {', '.join(STAGINGS)}, not {args.staging!r}")
    if not SHARED.exists():
        raise SystemExit(f"shared data not found at {SHARED}")
    from prox_spark.udfs.session import build_local_session

    extra = [*model_overrides(args), "models.provider=cpu", f"pipeline.mode={args.mode}", *args.overrides]
    events = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(Path(args.event_log).resolve()),
              "spark.eventLog.compress": "false"} if args.event_log else {}
    if args.event_log:
        Path(args.event_log).mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.docs.split(",")]
    shard_counts = [int(s) for s in args.shards.split(",")]
    if len(shard_counts) == 1:
        shard_counts *= len(sizes)
    if len(shard_counts) != len(sizes):
        raise SystemExit(f"--shards: give one count or one per size ({len(sizes)}), not {args.shards!r}")
    spark = build_local_session("prox-bench", master="local[2]", shuffle_partitions=4, extra_conf=events)
    with tempfile.TemporaryDirectory(prefix="prox-bench-") as tmp:
        work = Path(tmp)
        write_corpus(work / "warmup", WARMUP_DOCS, 2)
        for staging in stagings:  # each strategy's first Delta writes warm up too
            warm_s, _, _ = run_spark(spark, args.conf, [*extra, f"spark.staging={staging}"], work / "warmup",
                                     work / f"warmup-{staging}")
            print(f"warm-up ({staging}): {WARMUP_DOCS} docs in {warm_s:.1f} s (not counted)", flush=True)
        rows = []
        for size, shard_count in zip(sizes, shard_counts):
            corpus = work / f"corpus-{size}"
            shards = write_corpus(corpus, size, shard_count)
            plain = None
            if not args.plain_max_docs or size <= args.plain_max_docs:
                plain_out = work / f"plain-{size}"
                plain_out.mkdir()
                plain = run_plain(args.conf, extra, shards, plain_out)
            fastest: dict[str, tuple] = {}
            for attempt in range(max(1, args.repeat)):
                for staging in stagings:
                    spark_s, stages, memory = run_spark(spark, args.conf, [*extra, f"spark.staging={staging}"],
                                                        corpus, work / f"{staging}-{size}-{attempt}")
                    driver_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                    print(f"{size} docs, {staging}, run {attempt + 1}: plain "
                          f"{size / plain if plain else float('nan'):.1f} docs/s, spark {size / spark_s:.1f} docs/s "
                          f"({spark_s:.1f} s), stages {stages}", flush=True)
                    if staging not in fastest or spark_s < fastest[staging][3]:
                        fastest[staging] = (size, staging, plain, spark_s, stages, driver_kib, memory)
            rows.extend(fastest[staging] for staging in stagings)
    spark.stop()
    report(rows, args)


def report(rows: list[tuple], args) -> None:
    """The table: one line per size and staging strategy, then what ``delta`` costs over ``persist``."""
    first = {}  # ms/doc of each strategy's first size
    print(f"\nmode {args.mode}, conf {args.conf}, fastest of {max(1, args.repeat)} run(s) per size and strategy")
    print(f"{'docs':>8s} {'staging':>8s} {'plain/s':>8s} {'spark/s':>8s} {'overhead':>9s} {'model stg':>10s} "
          f"{'fixed s':>8s} {'ms/doc':>7s} {'vs first':>9s} {'driver':>8s} {'JVM':>7s} {'workers':>8s}")
    for size, staging, plain, spark_s, stages, driver_kib, memory in rows:
        per_doc = spark_s / size
        base = first.setdefault(staging, per_doc)
        overhead = f"{spark_s / plain - 1:9.0%}" if plain else f"{'-':>9s}"
        # the model stages alone against the plain processes (which include their own start-up)
        stage_overhead = f"{stages['refine'] / plain - 1:10.0%}" if plain else f"{'-':>10s}"
        fixed = spark_s - stages["refine"]
        print(f"{size:8d} {staging:>8s} {size / plain if plain else float('nan'):8.1f} {size / spark_s:8.1f} "
              f"{overhead} {stage_overhead} {fixed:8.1f} {per_doc * 1000:7.1f} {per_doc / base:8.2f}x "
              f"{driver_kib / 1024:6.0f}MB {memory.jvm_kib / 1024:5.0f}MB {memory.workers_kib / 1024:6.0f}MB")
    by_size: dict[int, dict[str, float]] = {}
    for size, staging, _, spark_s, *_ in rows:
        by_size.setdefault(size, {})[staging] = spark_s
    for size, seconds in by_size.items():
        if {"persist", "delta"} <= seconds.keys():
            extra = seconds["delta"] - seconds["persist"]
            print(f"{size:8d} docs: delta staging {extra:+.1f} s over persist ({extra / size * 1000:+.2f} ms/doc, "
                  f"{seconds['delta'] / seconds['persist'] - 1:+.0%})")
    print("overhead: spark/plain - 1 end to end; model stg: the job's stage pass (the models, or the rules, and with "
          "delta staging the write of its results) vs plain; fixed: the rest (listing, read, Delta writes and "
          "commits)\ntargets: Spark overhead ≤ 20% from 10k up, for both staging strategies; ms/doc flat within "
          "20% across sizes; driver memory bounded")


if __name__ == "__main__":
    sys.exit(main())
