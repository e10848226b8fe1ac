"""SFT data: seed examples encoded as inference encodes them, length-bucketed batches, and the loss.

- **Prompts exactly as at inference**: ``encode_prompt(template, kind, input, max_tokens=...)``, so a
  long document is truncated the way the exported model will see it (content cut, closing frame kept).
  The target is the program plus EOS.
- **Length-bucketed batches**: examples are shuffled (seeded), sorted by length inside windows of
  ``50 * batch_size`` and batched, so a batch pads little; batch order is shuffled again.
- **Loss on program tokens only**: ``collate`` labels every prompt and padding position -100, and
  ``sft_loss`` runs the LM head only on the positions that have a label (the program's few tokens), not on
  all ~400 prompt positions, which saves most of the vocabulary projection's cost on CPU.
  ``prompt_loss_weight > 0`` adds next-token loss on (a sample of) the prompt positions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

from prox_spark.prompts import encode_prompt, encode_text
from prox_spark.training.seed import SeedExample

IGNORE = -100


@dataclass
class Encoded:
    prompt: list[int]
    target: list[int]
    example: SeedExample

    def __len__(self) -> int:
        return len(self.prompt) + len(self.target)



def encode_examples(
    examples: Sequence[SeedExample], tokenizer: Any, *, template: str, max_prompt_tokens: int, eos_id: int
) -> list[Encoded]:
    """Prompt ids (truncated as inference truncates) and target ids + EOS per example."""
    encoded = []
    for example in examples:
        prompt = encode_prompt(template, example.kind, example.input, tokenizer, max_tokens=max_prompt_tokens)
        target = encode_text(tokenizer, example.target, add_special_tokens=False) + [eos_id]
        encoded.append(Encoded(prompt, target, example))
    return encoded


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, window: int = 50) -> list[list[int]]:
    """Shuffled indices, sorted by length inside windows of ``window * batch_size``, cut into batches,
    batch order shuffled: little padding, still a random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = window * batch_size
    batches = []
    for start in range(0, len(order), span):
        block = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
    width = max(len(item) for item in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, item in enumerate(items):
        ids = item.prompt + item.target
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, len(item.prompt) : len(ids)] = torch.tensor(item.target)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def sft_loss(
    model: LlamaForCausalLM,
    batch: dict[str, torch.Tensor],
    prompt_loss_weight: float = 0.0,
    prompt_loss_sample: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over program tokens; the LM head runs on labelled positions only.

    With ``prompt_loss_weight`` the mean next-token loss over a ``prompt_loss_sample`` share of the
    prompt positions is added, weighted (the sample keeps the LM head's cost down).
    """
    hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    hidden, labels = hidden[:, :-1], batch["labels"][:, 1:]
    mask = labels != IGNORE
    loss = F.cross_entropy(model.lm_head(hidden[mask]).float(), labels[mask])
    if prompt_loss_weight > 0:
        inputs = batch["input_ids"][:, 1:]
        prompt_mask = (batch["attention_mask"][:, 1:] == 1) & ~mask
        if prompt_loss_sample < 1.0:
            prompt_mask &= torch.rand(prompt_mask.shape, generator=generator) < prompt_loss_sample
        if prompt_mask.any():
            lm = F.cross_entropy(model.lm_head(hidden[prompt_mask]).float(), inputs[prompt_mask])
            loss = loss + prompt_loss_weight * lm
    return loss

