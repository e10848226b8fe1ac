"""Named rule chains and their batch form, the entry point the refine job runs as a stage.

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

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from prox_spark.rules.base import RuleChain, count_lines
from prox_spark.rules.c4 import C4Quality
from prox_spark.rules.fineweb import FineWebQuality
from prox_spark.rules.gopher import GopherQuality, GopherRepetition

if TYPE_CHECKING:
    import pandas as pd

PRESETS: Mapping[str, RuleChain] = {
    "gopher": RuleChain([GopherQuality(), GopherRepetition()]),
    "c4": RuleChain([C4Quality()]),
    "fineweb": RuleChain([FineWebQuality()]),
    "gopher_c4_fineweb": RuleChain(
        [GopherRepetition(), GopherQuality(), C4Quality(filter_no_terminal_punct=False), FineWebQuality()]
    ),
}

#: Columns of ``apply_rules_batch``'s frame, in order (line/word counts as the program executor counts them).
RULES_BATCH_COLUMNS = ("text", "kept", "reason", "rule", "lines_before", "lines_after", "words_before", "words_after")

#: Reason for a value that is neither text, bytes nor missing (a reader bug upstream, not an empty page).
INVALID_TEXT = "invalid_text"


def get_preset(name: str) -> RuleChain:
    """The chain named ``name``; unknown names list the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown rules preset {name!r}: expected one of {sorted(PRESETS)}") from None


def apply_rules_batch(texts: Iterable[Any], preset: str | RuleChain = "gopher_c4_fineweb") -> pd.DataFrame:
    """Run a chain over a batch (list, pandas Series or Arrow array); one row per input, never raises per row.

    Returns a ``pandas.DataFrame`` with ``RULES_BATCH_COLUMNS``. Dropped rows have ``text == ""`` and zero
    ``*_after`` counts, as the program executor's rows do. Missing values (None, NaN, NA) are ``empty_text``
    drops by the chain's ``non_empty`` step; non-text values are ``invalid_text`` drops with ``rule`` None.
    """
    # Imported here so the rules package stays importable (and testable) with the stdlib alone.
    import pandas as pd

    chain = get_preset(preset) if isinstance(preset, str) else preset
    if isinstance(texts, pd.Series):  # NaN / pd.NA become None
        texts = texts.astype(object).where(texts.notna(), None)
    elif hasattr(texts, "to_pylist"):  # pyarrow Array / ChunkedArray
        texts = texts.to_pylist()
    records = [_apply_one(chain, value) for value in texts]
    return pd.DataFrame.from_records(records, columns=list(RULES_BATCH_COLUMNS))


def _coerce_text(value: Any) -> str | None:
    """Text as str; None/NaN are empty; bytes are decoded leniently; anything else is invalid (None)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return None


def _apply_one(chain: RuleChain, value: Any) -> dict:
    text = _coerce_text(value)
    if text is None:
        return dict(
            text="",
            kept=False,
            reason=INVALID_TEXT,
            rule=None,
            lines_before=0,
            lines_after=0,
            words_before=0,
            words_after=0,
        )
    verdict = chain.apply(text)
    out = verdict.result.text if verdict.result.keep else ""
    return dict(
        text=out,
        kept=verdict.result.keep,
        reason=verdict.result.reason,
        rule=verdict.rule,
        lines_before=count_lines(text),
        lines_after=count_lines(out) if verdict.result.keep else 0,
        words_before=len(text.split()),
        words_after=len(out.split()),
    )
