"""A document's text as every layer reads it: missing values, bytes, line counts and the empty-text reason.

The readers, the rules, the executor and the stage pass all meet untrusted values where a text should be
(None, pandas' NaN, bytes, numbers). They read them the one way written here, so a value is empty, text or
invalid alike in every table. Stdlib only: ``prox_spark.rules`` stays importable without pandas.
"""

from __future__ import annotations

from typing import Any

#: the reason a document without text (missing, or whitespace only) is dropped or quarantined, in every table
EMPTY_TEXT = "empty_text"


def is_missing(value: Any) -> bool:
    """None, or a float NaN (what pandas puts where an object column has no value)."""
    return value is None or (isinstance(value, float) and value != value)


def coerce_text(value: Any) -> str | None:
    """``value`` as text: a str as it is, bytes decoded as UTF-8 (undecodable bytes replaced), a missing value
    (``is_missing``) as ``""``; None for anything else, which callers report as invalid text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if is_missing(value):
        return ""
    return None


def count_lines(text: str) -> int:
    """Lines as programs address them: ``text.split("\\n")``, so ``""`` is one (empty) line."""
    return text.count("\n") + 1
