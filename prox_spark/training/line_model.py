"""The line refiner's network (torch), for training and ONNX export.

A page is a sequence of lines. Each line becomes one vector: its dense layout features
(``prox_spark.lines.features``) and the mean of its hashed-token embeddings. A stack of residual dilated
1-D convolutions then mixes each line with its neighbours (dilations 1, 2, 4, 8, 16 reach ±31 lines: a
menu, a comment block, a footer), and the page's mean state is added to every line so a line is judged
against the whole page. The head gives one keep logit per line. Convolutions, not attention: cost is
linear in the page's lines, any page length works, and the graph is plain ONNX that onnxruntime runs on
CPU and GPU alike.

Padded lines (``mask`` 0) are zeroed after every layer, so a page scores the same alone or padded in a
batch. ``LineEnsemble`` averages the keep probabilities of several scorers trained from different seeds
in one graph: the features, which cost most of a page's time, are computed once for all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LineModelShape:
    n_dense: int
    buckets: int
    embed: int = 32
    hidden: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    kernel: int = 3
    dropout: float = 0.1

    def as_dict(self) -> dict:
        return asdict(self)


class _Block(nn.Module):
    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # h: [batch, lines, hidden]; mask: [batch, lines, 1]
        update = self.conv(h.transpose(1, 2)).transpose(1, 2)
        return (h + self.drop(torch.nn.functional.gelu(self.norm(update)))) * mask


class LineScorer(nn.Module):
    """Keep logits for every line of a batch of pages."""

    def __init__(self, shape: LineModelShape) -> None:
        super().__init__()
        self.shape = shape
        self.embedding = nn.Embedding(shape.buckets, shape.embed, padding_idx=0)
        self.project = nn.Linear(shape.n_dense + shape.embed, shape.hidden)
        self.blocks = nn.ModuleList(_Block(shape.hidden, shape.kernel, d, shape.dropout) for d in shape.dilations)
        self.page = nn.Linear(shape.hidden, shape.hidden)
        self.head = nn.Sequential(nn.Linear(2 * shape.hidden, shape.hidden), nn.GELU(), nn.Linear(shape.hidden, 1))

    def forward(self, dense: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """dense [B, L, F] float, tokens [B, L, T] int64 (0 = pad), mask [B, L] float → logits [B, L]."""
        present = (tokens > 0).to(dense.dtype).unsqueeze(-1)
        counts = present.sum(dim=2).clamp(min=1.0)
        bag = (self.embedding(tokens) * present).sum(dim=2) / counts
        m = mask.unsqueeze(-1)
        h = torch.nn.functional.gelu(self.project(torch.cat([dense, bag], dim=-1))) * m
        for block in self.blocks:
            h = block(h, m)
        page = (h.sum(dim=1) / m.sum(dim=1).clamp(min=1.0)).unsqueeze(1)
        context = torch.tanh(self.page(page)).expand_as(h)
        return self.head(torch.cat([h, context], dim=-1)).squeeze(-1)


class LineEnsemble(nn.Module):
    """Several ``LineScorer`` members as one graph with the same inputs; its keep logit is the logit of the
    members' mean keep probability (a seed's quirks average out; the graph's interface is unchanged)."""

    #: probabilities are clipped to [EPS, 1 - EPS] before the logit, so the output stays finite
    EPS = 1e-6

    def __init__(self, members: list[LineScorer]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def shape(self) -> LineModelShape:
        return self.members[0].shape

    def forward(self, dense: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.sigmoid(member(dense, tokens, mask)) for member in self.members]).mean(dim=0)
        probs = probs.clamp(self.EPS, 1.0 - self.EPS)
        return torch.log(probs) - torch.log1p(-probs)
