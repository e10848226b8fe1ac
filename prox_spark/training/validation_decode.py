"""Greedy decoding and doc keep margins in torch, for validating SFT checkpoints before they are exported.

The served decoder is ``prox_spark.inference.decode.GreedyDecoder`` over the exported ONNX graph. Training
cannot use it: a checkpoint would have to be exported (and, for the fused graph, checked against torch) at
every evaluation, which costs more than the evaluation itself. So ``prox_spark.training.sft`` scores its
validation sample with these torch twins: ``greedy_generate`` follows ``GreedyDecoder.generate``'s rules
(left-padded batches, positions counting real tokens only, argmax, stop at EOS), and ``doc_margins`` computes the
margin ``prox_spark.pipeline.model_stages.doc_keep_margins`` thresholds, so the keep threshold calibrated
here is the one the exported model is served with. ``tests/test_export_decode.py`` holds the ONNX
decoder to transformers' own ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LlamaForCausalLM

from prox_spark.prompts import encode_text


def _left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``position_ids`` (counting real tokens, 0 on padding) of a
    left-padded batch, so every row's last position is a real token."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt))
        attention[row, width - len(prompt) :] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention, positions


@torch.no_grad()
def greedy_generate(
    model: LlamaForCausalLM,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    batch_size: int = 32,
) -> list[tuple[list[int], bool]]:
    """Greedy continuations (tokens without EOS, stopped at EOS) with a KV cache, left-padded batches."""
    model.eval()
    results: dict[int, tuple[list[int], bool]] = {}
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        input_ids, attention, positions = _left_padded([prompts[i] for i in batch], pad_id)
        out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        generated = [[] for _ in batch]
        done = torch.zeros(len(batch), dtype=torch.bool)
        next_position = attention.sum(-1, keepdim=True)
        for _ in range(max_new_tokens):
            tokens = logits.argmax(-1)
            for row, token in enumerate(tokens.tolist()):
                if not done[row]:
                    if token == eos_id:
                        done[row] = True
                    else:
                        generated[row].append(token)
            if done.all():
                break
            attention = torch.cat([attention, torch.ones((len(batch), 1), dtype=torch.long)], dim=1)
            out = model(
                input_ids=tokens[:, None], attention_mask=attention, position_ids=next_position, past_key_values=past, use_cache=True
            )
            past, logits = out.past_key_values, out.logits[:, -1]
            next_position = next_position + 1
        for row, index in enumerate(batch):
            results[index] = (generated[row], bool(done[row]))
    return [results[i] for i in range(len(prompts))]



@torch.no_grad()
def doc_margins(model: LlamaForCausalLM, prompts: Sequence[Sequence[int]], tokenizer: Any, pad_id: int, batch_size: int = 32) -> list[float]:
    """logit(keep_doc) - logit(drop_doc) at the deciding token after each prompt: the torch twin of the
    serving side's ``prox_spark.pipeline.model_stages.doc_keep_margins``, for calibrating its threshold."""
    from prox_spark.pipeline.model_stages import DOC_CHOICES

    keep, drop = (encode_text(tokenizer, c, add_special_tokens=False) for c in DOC_CHOICES)
    common = 0
    while keep[common] == drop[common]:
        common += 1
    prefix, deciding = keep[:common], [keep[common], drop[common]]
    model.eval()
    margins: list[float] = []
    for start in range(0, len(prompts), batch_size):
        batch = [list(p) + prefix for p in prompts[start : start + batch_size]]
        input_ids, attention, positions = _left_padded(batch, pad_id)
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits[:, -1, deciding]
        margins.extend((logits[:, 0] - logits[:, 1]).float().tolist())
    return margins
