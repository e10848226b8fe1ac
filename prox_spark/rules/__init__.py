"""Heuristic document filters (Gopher, C4, FineWeb) as baselines next to ProX programs (stdlib only).

Public, stable API:

- ``RuleResult(keep, reason, text, lines_removed={})``: one rule's verdict; ``text`` may be edited.
- ``Rule``: protocol with ``name`` and ``apply(text) -> RuleResult``.
- ``RuleChain(rules).apply(text) -> ChainResult(result, rule, stats)``: rules in order, stop at the first
  drop; ``ChainStats`` counts per rule what was forwarded, dropped per reason and lines removed per reason.
- Rules: ``GopherQuality``, ``GopherRepetition``, ``C4Quality``, ``FineWebQuality`` (published thresholds
  as dataclass defaults).
- ``PRESETS`` / ``get_preset(name)``: ``gopher``, ``c4``, ``fineweb``, ``gopher_c4_fineweb`` (``DEFAULT_PRESET``).
- ``rules_stage_batch(texts, preset) -> pandas.DataFrame`` with ``RULES_STAGE_COLUMNS``: the chain as a
  refine-job stage (decision, program text and ops describing removed lines, counts; pandas is imported only
  when it is called);
  ``removed_line_ranges(before, after)``.
"""

from prox_spark.rules.base import (
    EMPTY_TEXT,
    ChainResult,
    ChainStats,
    NonEmptyText,
    Rule,
    RuleChain,
    RuleResult,
    RuleStats,
)
from prox_spark.rules.c4 import C4Quality
from prox_spark.rules.fineweb import FineWebQuality
from prox_spark.rules.gopher import GopherQuality, GopherRepetition
from prox_spark.rules.presets import DEFAULT_PRESET, PRESETS, PresetName, get_preset
from prox_spark.rules.stage import INVALID_TEXT, RULES_STAGE_COLUMNS, removed_line_ranges, rules_stage_batch

__all__ = [
    "C4Quality",
    "DEFAULT_PRESET",
    "ChainResult",
    "ChainStats",
    "EMPTY_TEXT",
    "FineWebQuality",
    "GopherQuality",
    "GopherRepetition",
    "INVALID_TEXT",
    "NonEmptyText",
    "PRESETS",
    "PresetName",
    "RULES_STAGE_COLUMNS",
    "Rule",
    "RuleChain",
    "RuleResult",
    "RuleStats",
    "get_preset",
    "removed_line_ranges",
    "rules_stage_batch",
]
