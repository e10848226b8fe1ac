"""One process or a torchrun group: which rank this is, on which device, and the two collective steps the loop
needs (the data cursors of every rank for a checkpoint, a loss averaged over ranks). Everything here is a no-op
between ranks when the run is a single process, so the loop reads the same either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from prox_spark.config import ConfigError


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        return self.world > 1


def setup_distributed(device: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: DDP with nccl on GPUs, gloo on CPU; else one process."""
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda requested but torch sees no GPU")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), local_rank, dist.get_world_size(), torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"))


def gather_cursors(env: Dist, mine: dict[int, list[int]]) -> dict[int, list[int]]:
    """Every rank's data cursors (shard -> position), merged: each rank reads its own shards only."""
    if not env.ddp:
        return dict(mine)
    parts: list[Any] = [None] * env.world
    dist.all_gather_object(parts, mine)
    merged: dict[int, list[int]] = {}
    for part in parts:
        merged.update(part)
    return merged


def mean_across_ranks(env: Dist, value: torch.Tensor) -> float:
    """``value`` averaged over all ranks (what the loss curve records), as a float."""
    if env.ddp:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.AVG if env.device.type == "cuda" else dist.ReduceOp.SUM)
        if env.device.type != "cuda":  # gloo has no AVG
            value /= env.world
    return float(value)
