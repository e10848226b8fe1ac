"""Train the line refiner on the shared cleaning pages and export it (``prox-spark train-line-refiner``).

Fits the pages whose terms allow training (``prox_spark.evaluation.gold.may_fit``: the train split of the
cleaneval / readability / cleanportaleval gold sets and of the trafilatura segments), picks the epoch and
the keep threshold on their validation split, exports the graph with its manifest and writes
``training.json`` beside it (data counts, the per-epoch validation log, the chosen threshold). Evaluation
only sets (dragnet, msv_chaos) are never read here. Seeded: the same data gives the same model.

    python -m jobs.train_line_refiner --data-dir ../shared/data --out prox_spark/resources/models/lines
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch

from prox_spark.evaluation.gold import all_pages, may_fit
from prox_spark.evaluation.shingles import shingle_f1
from prox_spark.training.line_export import export_line_model
from prox_spark.training.line_train import LineTrainConfig, make_example, train_line_model

log = logging.getLogger("prox_spark.train_line_refiner")
MODEL_ID = "prox-lines-v1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prox-spark train-line-refiner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data", help="the shared data folder (read in place)")
    parser.add_argument("--out", required=True, help="model directory to write (replaced)")
    parser.add_argument("--epochs", type=int, default=LineTrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data_dir = Path(args.data_dir)
    if not (data_dir / "cleaning").is_dir():
        print(f"train-line-refiner: no cleaning data under {data_dir}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pages = [p for p in all_pages(data_dir) if may_fit(p) or p.split == "validation"]
    fit = [p for p in pages if may_fit(p)]
    validation = [p for p in pages if p.split == "validation"]
    log.info("%d pages to fit, %d validation pages", len(fit), len(validation))
    config = LineTrainConfig(epochs=args.epochs, seed=args.seed)
    model, threshold, relative, history = train_line_model(
        [make_example(p, config.buckets, config.set_weights.get(p.set_name, 1.0)) for p in fit],
        [make_example(p, config.buckets) for p in validation],
        validation, config, lambda pairs: shingle_f1(pairs).f1,
    )
    check = [make_example(p, config.buckets).features for p in validation[:8]]
    manifest = export_line_model(
        model, args.out, model_id=MODEL_ID, keep_threshold=threshold, relative_threshold=relative, check_pages=check
    )
    report = {
        "model_id": manifest.model_id,
        "keep_threshold": threshold,
        "relative_threshold": relative,
        "parameters": sum(p.numel() for p in model.parameters()),
        "fit_pages": dict(Counter(p.set_name for p in fit)),
        "validation_pages": dict(Counter(p.set_name for p in validation)),
        "config": asdict(config),
        "shape": model.shape.as_dict(),
        "epochs": history,
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out, "training.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("exported %s (thresholds %.2f, relative %.2f) to %s in %.0fs", manifest.model_id, threshold, relative, args.out, report["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
