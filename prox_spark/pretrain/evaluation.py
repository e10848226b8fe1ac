"""Held-out perplexity: the texts it is measured on, the exact measurement, and the record the loop keeps of it
(every ``eval.interval`` steps and at the end).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from prox_spark.pretrain.data import Encode, eval_blocks, read_texts_file
from prox_spark.pretrain.distributed import Dist
from prox_spark.pretrain.settings import EvalSettings

log = logging.getLogger("prox_spark.pretrain")


def held_out_blocks(
    settings: EvalSettings, eval_texts: Sequence[str] | None, encode: Encode, block_size: int
) -> list[np.ndarray]:
    """``eval_texts`` and the texts of ``eval.path``, cut into blocks (at most ``eval.max_blocks``)."""
    held_out = list(eval_texts or [])
    if settings.path:
        held_out += read_texts_file(settings.path)
    return eval_blocks(held_out, encode, block_size, max_blocks=settings.max_blocks)


@torch.no_grad()
def evaluate(model: torch.nn.Module, blocks: list, env: Dist, batch_size: int, autocast) -> dict[str, float]:
    """Mean next-token loss and perplexity over ``blocks`` (sharded over ranks, summed exactly)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=env.device)  # nll sum, predicted tokens
    mine = blocks[env.rank :: env.world]
    by_len: dict[int, list] = {}
    for block in mine:
        by_len.setdefault(len(block), []).append(block)
    for length, group in sorted(by_len.items()):
        for i in range(0, len(group), batch_size):
            batch = torch.as_tensor(
                [b.tolist() for b in group[i : i + batch_size]], dtype=torch.long, device=env.device
            )
            with autocast():
                logits = model(input_ids=batch[:, :-1], use_cache=False).logits
            nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="sum")
            totals[0] += nll.double()
            totals[1] += batch[:, 1:].numel()
    if env.ddp:
        dist.all_reduce(totals)
    model.train(was_training)
    loss = float(totals[0] / totals[1]) if totals[1] > 0 else float("nan")
    return {"loss": loss, "ppl": math.exp(loss) if loss == loss else float("nan"), "tokens": int(totals[1])}


@dataclass
class Evaluator:
    """Evaluates ``model`` on ``blocks`` at a step and appends the result to the metrics' ``eval`` list; does
    nothing without held-out blocks. Every rank calls it (each scores its share of the blocks)."""

    #: the unwrapped model (not compiled, not DDP)
    model: torch.nn.Module
    blocks: list
    env: Dist
    batch_size: int
    autocast: Callable[[], ContextManager]

    def run(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.blocks:
            return
        result = evaluate(self.model, self.blocks, self.env, self.batch_size, self.autocast)
        metrics["eval"].append({"step": step, **result})
        if self.env.main:
            log.info("eval step %d | loss %.4f | ppl %.2f | %d tokens", step, result["loss"], result["ppl"], result["tokens"])
