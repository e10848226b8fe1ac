"""Pre-train a LLaMA on the refined Delta table (torch; no Spark). torchrun-compatible.

    python -m jobs.pretrain --conf conf/pretrain_local.yaml [key.sub=value ...]
    torchrun --nproc_per_node 8 -m jobs.pretrain --conf conf/<env>.yaml data.version=42

Trains on ONE refine run: ``data.run_id``, else the latest succeeded run in the refine job's ``runs``
table (``data.runs_table``, default: ``runs`` beside ``data.table``); metrics.json records the run id and
the table version.

DDP when WORLD_SIZE > 1 (nccl on GPUs, gloo on CPU); a rerun with the same checkpoint.dir resumes.
Exit codes: 0 done, 2 configuration or data error (the message names the key / table / version).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from prox_spark.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--conf", required=True, help="YAML config (see prox_spark/pretrain/settings.py PretrainConfig)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.max_steps=20")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    from prox_spark.pretrain.data import DataError
    from prox_spark.pretrain.settings import PretrainConfig
    from prox_spark.pretrain.train import train

    try:
        cfg = load_config(args.conf, args.overrides, cls=PretrainConfig)
        result = train(cfg)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    metrics = result.metrics
    if rank == 0:
        ppl = metrics.get("final_eval_ppl")
        print(
            f"pretrain: {metrics['steps']} steps, {metrics['tokens_seen']} tokens, table {metrics['table']} "
            f"v{metrics['table_version']} run {metrics['run_id']}, final loss {metrics['loss_curve'][-1]['loss']:.4f}"
            + (f", eval ppl {ppl:.2f}" if ppl is not None else "")
            + f" -> {os.path.join(cfg.out_dir, 'metrics.json')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
