"""Decision-rule thresholds of the executor.

Defaults are the released ProX values (``execute_meta_operations(threshold_1=0.0, threshold_2=0.95,
error_op=2)`` plus the hard-coded ≤10-words rule). The reference dialect always uses these defaults;
the strict dialect takes them from config.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutorConfig:
    """Thresholds for the chunk-stage decision rules and guards against pathological programs.

    - ``max_removed_fraction``: drop the document when kept words / original words ≤ 1 - this (0.95 → 5%).
    - ``min_kept_fraction``: keep the processed text only when the kept fraction ≥ this (0.0).
    - ``drop_at_or_below_words``: drop when the processed text has at most this many words (10).
    - ``error_fallback_at``: with at least this many errors the program is ignored and the original
      text is kept (2).
    - ``max_normalize_ops``: each ``normalize`` scans the whole document, so a runaway program on a
      huge document could take hours; lines past this cap are reported as errors instead of applied.
    """

    max_removed_fraction: float = 0.95
    min_kept_fraction: float = 0.0
    drop_at_or_below_words: int = 10
    error_fallback_at: int = 2
    max_normalize_ops: int = 2000

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_removed_fraction <= 1.0:
            raise ValueError(f"max_removed_fraction must be in [0, 1], got {self.max_removed_fraction}")
        if not 0.0 <= self.min_kept_fraction <= 1.0:
            raise ValueError(f"min_kept_fraction must be in [0, 1], got {self.min_kept_fraction}")
        if self.drop_at_or_below_words < 0:
            raise ValueError(f"drop_at_or_below_words must be ≥ 0, got {self.drop_at_or_below_words}")
        if self.error_fallback_at < 1:
            raise ValueError(f"error_fallback_at must be ≥ 1, got {self.error_fallback_at}")
        if self.max_normalize_ops < 0:
            raise ValueError(f"max_normalize_ops must be ≥ 0, got {self.max_normalize_ops}")


REFERENCE_CONFIG = ExecutorConfig()
