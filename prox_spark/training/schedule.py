"""The learning-rate schedule every trainer here uses (SFT, pre-training): linear warmup, then cosine decay."""

from __future__ import annotations

import math


def warmup_cosine_factor(step: int, *, warmup_steps: int, max_steps: int, peak: float = 1.0, floor: float) -> float:
    """Multiplier of the ``peak`` rate at optimizer step ``step`` (0-based), for ``LambdaLR``: ``(step + 1) /
    warmup_steps`` during warmup, then cosine from ``peak`` down to ``floor`` at ``max_steps`` (held after it)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return (floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)) / peak
