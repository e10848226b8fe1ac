"""Checkpoints: where they go, the newest one to resume from, and what one holds.

A checkpoint (``<dir>/step-NNNNNNNN.pt``) carries everything a rerun needs to produce the same losses as an
uninterrupted run: the model, optimizer and scheduler states, the random generators, the step, every shard's data
cursor and the data's identity (table, version, run, tokenizer, packing settings; ``pretrain.resume`` checks
it), and the metrics so far. Written atomically, so a crash mid-write never leaves a truncated file to resume from.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from prox_spark.pretrain.distributed import Dist, gather_cursors
from prox_spark.pretrain.settings import PretrainConfig


def checkpoint_dir(cfg: PretrainConfig) -> Path:
    return Path(cfg.checkpoint.dir or Path(cfg.out_dir) / "checkpoints")


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*.pt")) if folder.is_dir() else []
    return found[-1] if found else None


def load_checkpoint(path: Path | None) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (None when there is none to resume from), on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True) if path else None


def atomic_write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Progress:
    """How far the run is: the optimizer step, the micro-batches drawn, each shard's data cursor and the metrics
    (loss curve, evaluations). The loop advances it; a checkpoint saves and restores it."""

    step: int = 0
    micro_batches: int = 0
    cursors: dict[int, list[int]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=lambda: {"loss_curve": [], "eval": []})


def restore_checkpoint(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    env: Dist,
) -> Progress:
    """Load a checkpoint's states into the freshly built model, optimizer and scheduler, and its random generators
    into this process; returns the progress it recorded."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    progress = Progress(
        step=int(state["step"]),
        micro_batches=int(state["data"]["micro_batches"]),
        cursors={int(k): list(v) for k, v in state["data"]["cursors"].items()},
        metrics=state["metrics"],
    )
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    if env.device.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], env.device)
    return progress


@dataclass
class Checkpointer:
    """Saves the run's checkpoints into ``folder``, keeping the newest ``keep``, and ``metrics.json`` beside them.

    Every rank calls ``save`` (the data cursors are gathered from all of them); rank 0 writes, and the others wait
    for it, so no rank runs ahead of a checkpoint that is not on disk yet."""

    folder: Path
    keep: int
    out_dir: Path
    env: Dist
    #: the unwrapped model (not compiled, not DDP), whose state dict loads into a fresh one
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    #: what ``pretrain.resume.check_resumable`` compares with the configuration of a rerun
    data_identity: dict[str, Any]

    def save(self, progress: Progress) -> None:
        env, ckpt_dir, step = self.env, self.folder, progress.step
        all_cursors = gather_cursors(env, progress.cursors)
        if env.main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            payload = {
                "step": step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"python": random.getstate(), "torch": torch.get_rng_state()}
                | ({"cuda": torch.cuda.get_rng_state(env.device)} if env.device.type == "cuda" else {}),
                "data": {**self.data_identity, "micro_batches": progress.micro_batches, "cursors": all_cursors},
                "metrics": progress.metrics,
            }
            path = ckpt_dir / f"step-{step:08d}.pt"
            tmp = path.with_suffix(".pt.tmp")
            torch.save(payload, tmp)
            os.replace(tmp, path)  # a crash mid-write never leaves a truncated step-*.pt
            for old in sorted(ckpt_dir.glob("step-*.pt"))[: -self.keep]:
                old.unlink(missing_ok=True)
            atomic_write_json(self.out_dir / "metrics.json", progress.metrics)
        if env.ddp:
            dist.barrier()
