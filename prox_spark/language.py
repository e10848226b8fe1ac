"""A document's language (ISO 639-1 code), for setting up a corpus before it is refined.

Web crawls mix languages; pre-training corpora are built per language, and the language filter runs before
any quality filter (FineWeb, DCLM and the corpora the ProX paper refines all do this). The comparison
(``prox_spark.comparison``) needs it so that every variant starts from the held-out set's language: without
it, a variant wins by dropping other languages, not by cleaning better. py3langid's model ships inside the
package, so detection works offline; it is part of the ``train`` extra, which the comparison needs anyway (the
CLI names that extra when it is missing).
"""

from __future__ import annotations

from typing import Callable, Sequence

import py3langid


def language_filter(languages: Sequence[str]) -> Callable[[str], bool] | None:
    """A predicate that keeps texts detected as one of ``languages`` (e.g. ``["en"]``); ``None`` when the
    list is empty, i.e. no filter."""
    wanted = {code.strip().lower() for code in languages if code.strip()}
    if not wanted:
        return None

    def keeps(text: str) -> bool:
        language, _score = py3langid.classify(text)
        return language in wanted

    return keeps
