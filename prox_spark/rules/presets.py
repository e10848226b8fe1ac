"""Named rule chains: what ``rules.preset`` picks for the refine job's rules stage (``rules.stage``).

Presets:

- ``gopher``: GopherQuality → GopherRepetition (the paper's order; the cheap checks drop first).
- ``c4``: C4Quality with the published rules (removes lines, may drop the page).
- ``fineweb``: FineWebQuality alone.
- ``gopher_c4_fineweb``: FineWeb's published pipeline order and settings — GopherRepetition →
  GopherQuality → C4Quality without the per-line terminal-punctuation rule → FineWebQuality. FineWeb ran C4
  that way because its line-punctuation ratio replaces that rule; with the rule on, every surviving line
  would end in punctuation and FineWeb's ratio could never fire.

Chains are stateless and their rules frozen, so the module-level instances are shared safely by every task.
"""

from __future__ import annotations

import typing
from typing import Literal, Mapping

from prox_spark.rules.base import RuleChain
from prox_spark.rules.c4 import C4Quality
from prox_spark.rules.fineweb import FineWebQuality
from prox_spark.rules.gopher import GopherQuality, GopherRepetition

#: a preset's name (``rules.preset`` in the job config, which checks it against these)
PresetName = Literal["gopher", "c4", "fineweb", "gopher_c4_fineweb"]
#: the chain the rules stage runs unless told otherwise (``rules.preset``): FineWeb's published pipeline
DEFAULT_PRESET: PresetName = "gopher_c4_fineweb"

PRESETS: Mapping[str, RuleChain] = {
    "gopher": RuleChain([GopherQuality(), GopherRepetition()]),
    "c4": RuleChain([C4Quality()]),
    "fineweb": RuleChain([FineWebQuality()]),
    "gopher_c4_fineweb": RuleChain(
        [GopherRepetition(), GopherQuality(), C4Quality(filter_no_terminal_punct=False), FineWebQuality()]
    ),
}

if set(typing.get_args(PresetName)) != set(PRESETS):
    raise ImportError(f"PresetName {typing.get_args(PresetName)} does not name the presets {sorted(PRESETS)}")


def get_preset(name: str) -> RuleChain:
    """The chain named ``name``; unknown names list the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown rules preset {name!r}: expected one of {sorted(PRESETS)}") from None

