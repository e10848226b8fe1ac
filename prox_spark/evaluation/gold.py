"""The shared human-gold cleaning sets and the trafilatura segments, with the one split rule every
trainer and every report uses.

Each gold page is a whole page as Common-Crawl-WET-like text (``noisy_text``) and the main text a person
marked (``gold_text``, one paragraph per line). A set's terms decide its use:

- ``cleaneval``, ``readability``, ``cleanportaleval``: training and evaluation. Pages are split by id
  (``gold_split``): ``train`` pages may be fitted, ``validation`` pages choose among candidates, and only
  ``test`` pages are reported.
- ``dragnet`` (AGPL-3.0) and ``msv_chaos`` (research use only): evaluation only. No committed model
  fits them; every page is a report page.

The trafilatura segments carry extractor ("teacher") texts and human must-keep / must-remove snippets;
their split is the seed builder's (``prox_spark.training.seed.split_of``), so the chunk model's held-out
pages stay held out here too.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from prox_spark.training.seed import Split, split_of
from prox_spark.training.seed_sources import TRAFILATURA_SEGMENTS

Use = Literal["training", "evaluation"]

#: set name -> what its terms allow
GOLD_SETS: dict[str, Use] = {
    "cleaneval": "training",
    "readability": "training",
    "cleanportaleval": "training",
    "dragnet": "evaluation",
    "msv_chaos": "evaluation",
}
GOLD_DIR = "cleaning/gold"
#: the trafilatura segments' name in reports
TRAFILATURA_SET = "trafilatura"
#: gold training sets are small (70-731 pages): a larger test share keeps their reported figures stable
GOLD_VALIDATION, GOLD_TEST = 0.1, 0.3


@dataclass(frozen=True)
class Page:
    """One whole page and what a cleaner should make of it."""

    page_id: str
    set_name: str
    split: Split
    noisy_text: str
    #: human main text (gold sets) or the trafilatura teacher's extraction (segments)
    gold_text: str
    #: human snippets (trafilatura segments only)
    must_keep: tuple[str, ...] = ()
    must_remove: tuple[str, ...] = ()
    url: str = ""


def gold_split(page_id: str) -> Split:
    """The split of a gold page; evaluation-only pages are always ``test``."""
    set_name = page_id.split(":", 1)[0]
    if GOLD_SETS.get(set_name) == "evaluation":
        return "test"
    return split_of(page_id, validation=GOLD_VALIDATION, test=GOLD_TEST)


def may_fit(page: Page) -> bool:
    """Whether a committed model may train on ``page``: a train-split page of a set whose terms allow it."""
    allowed = page.set_name == TRAFILATURA_SET or GOLD_SETS.get(page.set_name) == "training"
    return allowed and page.split == "train"


def gold_pages(data_dir: str | Path, set_name: str) -> Iterator[Page]:
    """The pages of one gold set (``GOLD_SETS``); a missing file raises ``FileNotFoundError``."""
    if set_name not in GOLD_SETS:
        raise ValueError(f"unknown gold set {set_name!r}: expected one of {sorted(GOLD_SETS)}")
    path = Path(data_dir) / GOLD_DIR / f"{set_name}.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            page_id = str(record["id"])
            yield Page(
                page_id=page_id, set_name=set_name, split=gold_split(page_id),
                noisy_text=record["noisy_text"], gold_text=record["gold_text"], url=record.get("url") or "",
            )


def trafilatura_pages(data_dir: str | Path, *, teacher: str = "teacher_trafilatura") -> Iterator[Page]:
    """The trafilatura segments with ``teacher`` as gold text (pages without it are skipped)."""
    path = Path(data_dir) / TRAFILATURA_SEGMENTS
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            noisy, gold = record.get("noisy_text") or "", record.get(teacher) or ""
            if not noisy.strip() or not gold.strip():
                continue
            page_id = str(record["id"])
            yield Page(
                page_id=page_id, set_name=TRAFILATURA_SET, split=split_of(page_id), noisy_text=noisy,
                gold_text=gold, must_keep=_snippets(record.get("must_keep")),
                must_remove=_snippets(record.get("must_remove")), url=record.get("url") or "",
            )


def all_pages(data_dir: str | Path) -> Iterator[Page]:
    """Every gold set present under ``data_dir``, then the trafilatura segments."""
    for set_name in GOLD_SETS:
        if (Path(data_dir) / GOLD_DIR / f"{set_name}.jsonl.gz").is_file():
            yield from gold_pages(data_dir, set_name)
    if (Path(data_dir) / TRAFILATURA_SEGMENTS).is_file():
        yield from trafilatura_pages(data_dir)


def _snippets(value: object) -> tuple[str, ...]:
    """A snippet list as a tuple of its non-blank strings."""
    if isinstance(value, list):
        return tuple(str(v) for v in value if str(v).strip())
    return ()
