"""Reading the shared data files the seed is built from: the cleaning pages with their reference text,
and our own JSONL files.

The reference of a shared cleaning page (``cleaning_pages``) is its own ``teacher_trafilatura`` extraction
when the copy has one (this copy does), else the WARC-extracted files' ``trafilatura_text`` /
``resiliparse_main_text`` for the same URL, else ``heuristic_clean_text``. Derived this way, without the
snippets, the seed programs keep 0.950 of the must-keep snippets and remove 0.873 of the must-remove ones
over all 989 pages (the teacher itself: 0.947 / 0.880).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prox_spark.training.seed_labels import heuristic_clean_text

#: relative paths under the shared data folder
TRAFILATURA_SEGMENTS = "cleaning/trafilatura_eval_segments.jsonl.gz"
WARC_EXTRACTED = ("cleaning/dolma_warc_extracted.jsonl", "cleaning/resiliparse_warc_extracted.jsonl")
DCLM_LABELS = "quality/dclm_human_labels.jsonl"

Reference = Literal["trafilatura", "trafilatura_precision", "resiliparse", "heuristic"]


def read_jsonl_dicts(path: str | Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of one of our own ``.jsonl`` or ``.jsonl.gz`` data files, as dicts (blank lines skipped).

    Strict: a line that is not JSON raises ``ValueError`` naming the file and line, since a broken labelled
    or seed file must stop the build. Corpus input is read by ``prox_spark.readers.read_jsonl`` instead, which
    yields documents and quarantines every bad line without raising."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None


@dataclass(frozen=True)
class CleaningPage:
    """A noisy page with the reference it is labelled against."""

    page_id: str
    url: str
    noisy_text: str
    clean_text: str
    #: which reference ``clean_text`` is: teacher_trafilatura, warc:trafilatura_text, heuristic, ...
    reference: str
    source: str
    must_keep: tuple[str, ...] = ()
    must_remove: tuple[str, ...] = ()


_TEACHER_FIELDS: dict[str, tuple[str, ...]] = {
    "trafilatura": ("teacher_trafilatura", "trafilatura_text", "teacher_trafilatura_precision", "resiliparse_main_text"),
    "trafilatura_precision": ("teacher_trafilatura_precision", "teacher_trafilatura", "trafilatura_text", "resiliparse_main_text"),
    "resiliparse": ("resiliparse_main_text", "teacher_trafilatura", "trafilatura_text"),
    "heuristic": (),
}


def _pick_reference(record: dict[str, Any], extra: dict[str, Any] | None, preference: Reference) -> tuple[str, str]:
    for name in _TEACHER_FIELDS[preference]:
        for origin, holder in (("", record), ("warc:", extra or {})):
            value = holder.get(name)
            if isinstance(value, str) and value.strip():
                return value, origin + name
    return heuristic_clean_text(record["noisy_text"]), "heuristic"


def cleaning_pages(data_dir: str | Path, *, reference: Reference = "trafilatura", include_warc: bool = True) -> Iterator[CleaningPage]:
    """The shared cleaning pages with their reference text.

    The trafilatura evaluation pages use their own teacher extraction when the copy carries one
    (``teacher_trafilatura`` / ``teacher_trafilatura_precision``), else the WARC-extracted files'
    ``trafilatura_text`` / ``resiliparse_main_text`` for the same URL, else ``heuristic_clean_text``.
    With ``include_warc`` the WARC-extracted pages themselves (no snippets) follow.
    """
    data_dir = Path(data_dir)
    warc_records = []
    for relative in WARC_EXTRACTED:
        path = data_dir / relative
        if path.is_file():
            warc_records.extend((relative, r) for r in read_jsonl_dicts(path))
    by_url = {r.get("url"): r for _, r in warc_records if r.get("url")}
    segments = data_dir / TRAFILATURA_SEGMENTS
    if segments.is_file():
        for record in read_jsonl_dicts(segments):
            noisy = record.get("noisy_text") or ""
            if not noisy.strip():
                continue
            clean, origin = "", "heuristic"
            if reference != "heuristic":
                clean, origin = _pick_reference(record, by_url.get(record.get("url")), reference)
            else:
                clean = heuristic_clean_text(noisy)
            yield CleaningPage(
                page_id=str(record["id"]),
                url=record.get("url", ""),
                noisy_text=noisy,
                clean_text=clean,
                reference=origin,
                source="trafilatura_eval",
                must_keep=tuple(record.get("must_keep") or ()),
                must_remove=tuple(record.get("must_remove") or ()),
            )
    if include_warc:
        for relative, record in warc_records:
            noisy = record.get("noisy_text") or ""
            if not noisy.strip():
                continue
            if reference == "heuristic":
                clean, origin = heuristic_clean_text(noisy), "heuristic"
            else:
                clean, origin = _pick_reference(record, None, reference)
            yield CleaningPage(
                page_id=str(record.get("id") or record.get("url")),
                url=record.get("url", ""),
                noisy_text=noisy,
                clean_text=clean,
                reference=origin,
                source=Path(relative).name.split(".")[0],
            )
