"""Decision-rule thresholds and resource bounds of the executor.

Threshold defaults are the released ProX values (``execute_meta_operations(threshold_1=0.0,
threshold_2=0.95, error_op=2)`` plus the hard-coded ≤10-words rule). The reference dialect always uses
these defaults; the strict dialect takes them from config. The resource bounds (``max_growth``,
``max_ops``, ``max_program_chars``) apply to both dialects: the released executor has none, so without
them one runaway program could exhaust a worker's memory or time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

#: thresholds the reference dialect fixes at the released values (config can only change them for strict)
STRICT_ONLY_FIELDS = ("max_removed_fraction", "min_kept_fraction", "drop_at_or_below_words", "error_fallback_at")


@dataclass(frozen=True)
class ExecutorConfig:
    """Thresholds for the chunk-stage decision rules and bounds against pathological programs.

    Decision rules (strict dialect only; the reference dialect keeps the released values):

    - ``max_removed_fraction``: drop the document when kept words / original words ≤ 1 - this (0.95 → 5%).
    - ``min_kept_fraction``: keep the processed text only when the kept fraction ≥ this (0.0).
    - ``drop_at_or_below_words``: drop when the processed text has at most this many words (10).
    - ``error_fallback_at``: with at least this many errors the program is ignored and the original
      text is kept (2).

    Bounds (both dialects; a program past one is ignored, never cut short — see ``executor``):

    - ``max_growth``: no ``normalize`` may make the text longer than this factor times its length before
      the op, nor times the original length (short texts may always reach 4,096 characters,
      ``executor.GROWTH_FLOOR_CHARS``). The released executor's real outputs grow by a few percent at
      most, while a chain of ``normalize("e", "ee")`` doubles the text per op.
    - ``max_ops``: most lines (one op each in ProX's grammar, blank ones included) in one program. Each
      ``normalize`` scans the whole document and each line is an audit record, so the cost is lines ×
      document size. ProX writes a handful of ops per chunk and the document's program joins its chunks'
      programs, so 1024 lines leave room for documents of a few hundred chunks (megabytes of text).
    - ``max_program_chars``: longest program text that is parsed at all. Chunk programs are at most 256
      generated tokens per chunk, so 1 MiB covers every document with fewer than ~1000 chunks.
    """

    max_removed_fraction: float = 0.95
    min_kept_fraction: float = 0.0
    drop_at_or_below_words: int = 10
    error_fallback_at: int = 2
    max_growth: float = 2.0
    max_ops: int = 1024
    max_program_chars: int = 1 << 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_removed_fraction <= 1.0:
            raise ValueError(f"max_removed_fraction must be in [0, 1], got {self.max_removed_fraction}")
        if not 0.0 <= self.min_kept_fraction <= 1.0:
            raise ValueError(f"min_kept_fraction must be in [0, 1], got {self.min_kept_fraction}")
        if self.drop_at_or_below_words < 0:
            raise ValueError(f"drop_at_or_below_words must be ≥ 0, got {self.drop_at_or_below_words}")
        if self.error_fallback_at < 1:
            raise ValueError(f"error_fallback_at must be ≥ 1, got {self.error_fallback_at}")
        if not (math.isfinite(self.max_growth) and self.max_growth >= 1.0):
            raise ValueError(f"max_growth must be a finite factor ≥ 1 (1: no growth), got {self.max_growth}")
        if self.max_ops < 1:
            raise ValueError(f"max_ops must be ≥ 1, got {self.max_ops}")
        if self.max_program_chars < 1:
            raise ValueError(f"max_program_chars must be ≥ 1, got {self.max_program_chars}")

    def strict_only_overrides(self) -> dict[str, float | int]:
        """The decision thresholds set away from the released values: the reference dialect ignores them,
        so a job config that sets them with ``dialect: reference`` is a mistake worth reporting."""
        return {
            name: getattr(self, name)
            for name in STRICT_ONLY_FIELDS
            if getattr(self, name) != getattr(REFERENCE_CONFIG, name)
        }

    def check_dialect(self, dialect: str) -> None:
        """Refuse thresholds ``dialect`` would ignore: the reference dialect runs the released ones
        (``for_dialect``), so one set away from them with it is reported (ValueError naming the field) instead
        of silently doing nothing. The job config (``executor.*``) and ``RefineSettings`` both check here."""
        ignored = self.strict_only_overrides()
        if dialect == "reference" and ignored:
            key, value = next(iter(ignored.items()))
            raise ValueError(
                f"{key}: {value!r} only applies to dialect 'strict'; dialect 'reference' always uses the released "
                f"{getattr(REFERENCE_CONFIG, key)!r}. Set the dialect to strict, or leave {key} at its default"
            )

    def for_dialect(self, dialect: str) -> ExecutorConfig:
        """The settings a dialect runs with: the reference keeps the released thresholds but honours the
        bounds, the strict dialect takes everything from this config."""
        if dialect == "reference":
            return dataclasses.replace(self, **{name: getattr(REFERENCE_CONFIG, name) for name in STRICT_ONLY_FIELDS})
        return self


REFERENCE_CONFIG = ExecutorConfig()
