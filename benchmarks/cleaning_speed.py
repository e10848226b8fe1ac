"""Pages/s of the default pipeline beside the rule pipeline, and model time per page for each stage.

One process, the same whole pages for every variant (report pages of the human-gold sets: news, blogs
and portal pages as Common-Crawl-like text), each variant timed after a warm-up batch:

- ``rules``: ``pipeline.mode=rules`` (the Gopher + C4 + FineWeb preset), the baseline every ratio uses;
- ``default``: ``conf/local.yaml`` (doc model, then the line refiner), split into the doc stage, the line
  features, the line model, its decisions with the page cuts, and the executor;
- ``generative chunk`` (``--generative``): the tiny generative chunk model in place of the line refiner.

    python -m benchmarks.cleaning_speed [--pages 360] [--generative]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prox_spark.clean import load_models
from prox_spark.config import load_config
from prox_spark.evaluation.gold import all_pages
from prox_spark.lines.features import page_features
from prox_spark.pipeline import run_stages, settings_of, write_doc_programs
from prox_spark.pipeline.model_kinds.lines import write_line_programs
from prox_spark.programs import execute_batch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GENERATIVE = ["models.chunk.kind=generative", "models.chunk.path=prox_spark/resources/models/chunk",
              "models.max_chunk_tokens=128", "models.clip_chunk_programs=true"]


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=360)
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--generative", action="store_true", help="also time the tiny generative chunk model")
    args = parser.parse_args(argv)
    if not Path(args.data_dir, "cleaning", "gold").is_dir():
        print(f"cleaning_speed: no gold pages under {args.data_dir}: nothing to measure")
        return 0
    pages = [p for p in all_pages(args.data_dir) if p.split == "test" and p.set_name != "trafilatura"]
    texts = [p.noisy_text for p in pages[:: max(1, len(pages) // args.pages)]][: args.pages]
    n = len(texts)
    conf = ROOT / "conf" / "local.yaml"
    rules = load_config(conf, ["pipeline.mode=rules"])
    run_stages(texts[:16], ("rules",), settings_of(rules), rules_preset=rules.rules.preset)  # warm-up
    rules_s = _timed(run_stages, texts, ("rules",), settings_of(rules), rules_preset=rules.rules.preset)
    config = load_config(conf)
    settings = settings_of(config)
    models = load_models(config)
    doc, lines = models["doc"], models["chunk"]
    run_stages(texts[:16], ("doc", "chunk"), settings, models=models)  # warm-up
    default_s = _timed(run_stages, texts, ("doc", "chunk"), settings, models=models)
    doc_s = _timed(write_doc_programs, doc, texts, batch_size=settings.doc_batch_size, max_batch_tokens=settings.doc_max_batch_tokens)
    features_s = _timed(lambda: [page_features(t) for t in texts])
    features = [page_features(t) for t in texts]
    line_model_s = _timed(lines.score_features, features)
    scores = lines.score_features(features)
    decisions_s = _timed(lambda: [lines.decisions(t, s.tolist(), cuts=settings.page_cuts) for t, s in zip(texts, scores)])
    programs = [chunks[0].program for chunks in write_line_programs(lines, texts, cuts=settings.page_cuts)]
    executor_s = _timed(execute_batch, texts, programs, stage="chunk")
    rows = [("rules (baseline)", rules_s), ("default: doc model + line refiner", default_s)]
    if args.generative:
        generative = load_config(conf, GENERATIVE)
        generative_models = load_models(generative)
        rows.append(("doc model + generative chunk model",
                     _timed(run_stages, texts, ("doc", "chunk"), settings_of(generative), models=generative_models)))
    print(f"{n} whole pages, one process\n")
    print("| pipeline | pages/s | vs rules |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {n / seconds:.1f} | {rules_s / seconds:.2f}x |")
    print("\n| default pipeline part | ms/page |\n|---|---|")
    for name, seconds in (("doc stage (tokenize + score)", doc_s), ("line features", features_s),
                          ("line model (onnxruntime)", line_model_s), ("line decisions + page cuts", decisions_s),
                          ("chunk executor", executor_s)):
        print(f"| {name} | {seconds / n * 1000:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
