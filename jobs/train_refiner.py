"""Fine-tune a refining model on seed data and export it (ONNX + tokenizer + prox_model.json).

    python -m jobs.train_refiner --conf conf/training/chunk_tiny.yaml [key=value ...]

``key=value`` overrides any ``SFTConfig`` field (``max_steps=50 export_dir=``). Prints the training log
summary; the full log is ``<work_dir>/train_log.json``. See ``prox_spark.training.sft``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from prox_spark.config import ConfigError, load_config
from prox_spark.training.sft import SFTConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --conf like every other job; --config is the name this job took first (kept for existing scripts)
    parser.add_argument("--conf", "--config", dest="conf", required=True, help="YAML file of SFTConfig fields")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("optimum", "torch.onnx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(args.conf, args.overrides, cls=SFTConfig)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    result = train(config)
    summary = {k: v for k, v in result.as_dict().items() if k != "history"}
    print(json.dumps(summary, indent=2))
    for entry in result.history:
        print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
