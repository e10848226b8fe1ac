"""Seed (SFT) data for the refining models: gold programs derived from reference texts, verified by execution.

The paper's seed programs come from a 70B annotator (prox-reference.md §3). Without one we derive them:

**Chunk stage**: a noisy page and a *clean reference* of the same page (``seed_sources.cleaning_pages``:
a trafilatura or resiliparse extraction, snippets a person marked, or a documented heuristic) give every
noisy line a keep / remove / blank label (``seed_labels.label_lines``). The page is chunked exactly as at
inference (``prox_spark.chunking.chunk_document``, global line numbers), each chunk gets its gold program
(``seed_programs.chunk_program``), and the page's program is executed with the reference executor
(``seed_programs.verify_program``). ``derive_page`` does this for one page: a page whose normalizations
break the check is retried without them; a page that still fails is left out and counted.

**Doc stage**: labelled documents (``{"id", "text", "label"}``, label 1/true/"keep" or 0/false/"drop")
give ``keep_doc()`` / ``drop_doc()``.

**Doc stage, in-distribution keeps** (``cleaning_keep_examples``): the shared cleaning pages carry
must-keep snippets a person marked, so each has real main content and is labelled ``keep_doc()``. The
DCLM labels alone are English; without these a doc model drops most of the noisy multilingual pages the
chunk stage is built for. Only train-split pages are written (``doc_cleaning.jsonl``, its own file so
``doc.jsonl`` stays the DCLM-only evaluation set); the doc training config decides how many to mix in.

**Splits** are by page id: ``split_of(id)`` hashes the id (sha256 with a salt), so a page and all its
chunks land in one split on every machine and run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from prox_spark.chunking import CountTokens, chunk_document
from prox_spark.prompts import Kind, render_prompt
from prox_spark.training.seed_labels import LineLabel, label_lines
from prox_spark.training.seed_programs import ChunkSeed, expected_text, page_programs, verify_program
from prox_spark.training.seed_sources import DCLM_LABELS, CleaningPage, Reference, cleaning_pages, read_jsonl_dicts

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
DEFAULT_SALT = "prox-seed-v1"

KEEP_DOC, DROP_DOC = "keep_doc()", "drop_doc()"

#: the file names ``build_seed`` writes
DOC_FILE, CHUNK_FILE, STATS_FILE = "doc.jsonl", "chunk.jsonl", "stats.json"
#: train-split cleaning pages as ``keep_doc()`` examples (``cleaning_keep_examples``)
DOC_CLEANING_FILE = "doc_cleaning.jsonl"


# --- splits ----------------------------------------------------------------------------------------


def split_of(key: str, *, validation: float = 0.1, test: float = 0.1, salt: str = DEFAULT_SALT) -> Split:
    """Deterministic split of a page or document id: sha256(salt:key) read as a fraction in [0, 1)."""
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError(f"validation={validation} and test={test} must be >= 0 and sum to < 1")
    digest = hashlib.sha256(f"{salt}:{key}".encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    if fraction < test:
        return "test"
    if fraction < test + validation:
        return "validation"
    return "train"


# --- pages -----------------------------------------------------------------------------------------


@dataclass
class PageSeed:
    """One page's derivation: labels, chunks with their programs, and whether execution confirmed them."""

    page_id: str
    source: str
    split: Split
    text: str
    labels: list[LineLabel]
    chunks: list[ChunkSeed]
    program: str
    verified: bool
    detail: str = ""
    #: the normalizations were dropped because the program with them failed verification
    normalize_dropped: bool = False

    @property
    def removed_lines(self) -> list[int]:
        return [n for c in self.chunks for n in c.removed_lines]


def derive_page(
    page_id: str,
    noisy_text: str,
    clean_text: str,
    count_tokens: CountTokens,
    max_chunk_tokens: int,
    *,
    must_keep: Sequence[str] = (),
    must_remove: Sequence[str] = (),
    source: str = "",
    split: Split | None = None,
    allow_normalize: bool = True,
    short_line_chars: int = 20,
    min_partial_chars: int = 20,
) -> PageSeed:
    """Label, chunk, write and verify the gold program of one page."""
    labels = label_lines(
        noisy_text,
        clean_text,
        must_keep=must_keep,
        must_remove=must_remove,
        short_line_chars=short_line_chars,
        min_partial_chars=min_partial_chars,
        allow_normalize=allow_normalize,
    )
    chunks = chunk_document(noisy_text, count_tokens, max_chunk_tokens)
    split = split or split_of(page_id)
    seeds, program = page_programs(noisy_text, labels, chunks)
    removed = {n for s in seeds for n in s.removed_lines}
    check = verify_program(noisy_text, program, expected_text(noisy_text, labels, removed))
    dropped_normalize = False
    if not check.ok and any(label.normalize for label in labels):
        labels = [LineLabel(lb.action, (), lb.why) for lb in labels]
        seeds, program = page_programs(noisy_text, labels, chunks)
        check = verify_program(noisy_text, program, expected_text(noisy_text, labels, removed))
        dropped_normalize = True
    return PageSeed(page_id, source, split, noisy_text, labels, seeds, program, check.ok, check.detail, dropped_normalize)


# --- examples --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedExample:
    """One SFT example: the model input (``input``, rendered as ``prompt``) and the target program."""

    id: str
    kind: Kind
    split: Split
    #: what goes into the prompt template: the raw document (doc) or the numbered chunk (chunk)
    input: str
    #: ``render_prompt(template, kind, input)`` - for reading; training encodes ``input`` itself so the
    #: prompt can be truncated the way inference truncates it
    prompt: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SeedExample:
        return cls(**{k: record[k] for k in ("id", "kind", "split", "input", "prompt", "target")}, meta=record.get("meta", {}))


def chunk_examples(page: PageSeed, template: str = "compact") -> list[SeedExample]:
    """One chunk-stage example per chunk of a verified page."""
    n_lines = len(page.labels)
    out = []
    for seed in page.chunks:
        chunk = seed.chunk
        out.append(
            SeedExample(
                id=f"{page.page_id}#{chunk.chunk_index}",
                kind="chunk",
                split=page.split,
                input=chunk.text,
                prompt=render_prompt(template, "chunk", chunk.text),
                target=seed.program,
                meta={
                    "page_id": page.page_id,
                    "source": page.source,
                    "chunk_index": chunk.chunk_index,
                    "n_chunks": len(page.chunks),
                    "first_line": chunk.first_line,
                    "last_line": chunk.last_line,
                    "n_doc_lines": n_lines,
                    "n_tokens": chunk.n_tokens,
                    "oversize": chunk.oversize,
                    "removed_lines": list(seed.removed_lines),
                },
            )
        )
    return out


def doc_label(value: Any) -> bool:
    """A keep (True) / drop (False) label from 1/0, true/false, "keep"/"drop", "1"/"0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "0", "keep", "drop", "true", "false", "keep_doc()", "drop_doc()"):
        return value.strip().lower() in ("1", "keep", "true", "keep_doc()")
    raise ValueError(f"label {value!r}: expected 1/0, true/false or keep/drop")


def doc_examples(
    records: Iterable[dict[str, Any]], *, source: str, template: str = "compact", salt: str = DEFAULT_SALT
) -> Iterator[SeedExample]:
    """``keep_doc()`` / ``drop_doc()`` examples from ``{text, label[, id]}`` records (id: hash of the text)."""
    for number, record in enumerate(records):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{source} record {number}: 'text' must be a non-empty string")
        if "label" not in record:
            raise ValueError(f"{source} record {number}: no 'label'")
        keep = doc_label(record["label"])
        doc_id = str(record.get("id") or hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
        yield SeedExample(
            id=doc_id,
            kind="doc",
            split=split_of(doc_id, salt=salt),
            input=text,
            prompt=render_prompt(template, "doc", text),
            target=KEEP_DOC if keep else DROP_DOC,
            meta={"source": source, "label": int(keep)},
        )


def cleaning_keep_examples(
    pages: Iterable[CleaningPage], *, template: str = "compact", salt: str = DEFAULT_SALT
) -> Iterator[SeedExample]:
    """``keep_doc()`` examples from the cleaning pages with must-keep snippets, train split only.

    The split is the chunk model's (``split_of(page_id)``), so the held-out cleaning pages the
    evaluation scores are never trained on; a train page whose URL is also a non-train page's is
    left out too (the same page under another id).
    """
    pages = list(pages)
    held_out_urls = {p.url for p in pages if p.url and split_of(p.page_id, salt=salt) != "train"}
    for page in pages:
        if split_of(page.page_id, salt=salt) != "train" or page.url in held_out_urls or not page.must_keep:
            continue
        yield SeedExample(
            id=page.page_id,
            kind="doc",
            split="train",
            input=page.noisy_text,
            prompt=render_prompt(template, "doc", page.noisy_text),
            target=KEEP_DOC,
            meta={"source": page.source, "label": 1, "why": "cleaning page with must-keep snippets"},
        )


# --- the builder -----------------------------------------------------------------------------------


@dataclass
class SeedStats:
    pages: int = 0
    pages_verified: int = 0
    pages_failed: int = 0
    pages_normalize_dropped: int = 0
    references: dict[str, int] = field(default_factory=dict)
    chunk_examples: dict[str, int] = field(default_factory=dict)
    doc_examples: dict[str, int] = field(default_factory=dict)
    #: train-split cleaning pages written to ``doc_cleaning.jsonl``
    doc_cleaning_examples: int = 0
    chunk_programs: dict[str, int] = field(default_factory=dict)
    line_labels: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def build_seed(
    data_dir: str | Path,
    out_dir: str | Path,
    count_tokens: CountTokens,
    *,
    max_chunk_tokens: int = 384,
    reference: Reference = "trafilatura",
    extra_doc_labels: Sequence[str | Path] = (),
    include_dclm: bool = True,
    allow_normalize: bool = True,
    template: str = "compact",
    salt: str = DEFAULT_SALT,
) -> SeedStats:
    """Write ``doc.jsonl``, ``doc_cleaning.jsonl``, ``chunk.jsonl`` (one ``SeedExample`` record per line)
    and ``stats.json``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = SeedStats()
    references: Counter[str] = Counter()
    chunk_counts: Counter[str] = Counter()
    program_counts: Counter[str] = Counter()
    label_counts: Counter[str] = Counter()
    with open(out_dir / CHUNK_FILE, "w", encoding="utf-8") as handle:
        for page in cleaning_pages(data_dir, reference=reference):
            stats.pages += 1
            references[page.reference] += 1
            seed = derive_page(
                page.page_id,
                page.noisy_text,
                page.clean_text,
                count_tokens,
                max_chunk_tokens,
                must_keep=page.must_keep,
                must_remove=page.must_remove,
                source=page.source,
                split=split_of(page.page_id, salt=salt),
                allow_normalize=allow_normalize,
            )
            stats.pages_normalize_dropped += seed.normalize_dropped
            if not seed.verified:
                stats.pages_failed += 1
                stats.failures.append(f"{page.page_id}: {seed.detail}")
                continue
            stats.pages_verified += 1
            label_counts.update(label.why for label in seed.labels)
            for example in chunk_examples(seed, template):
                chunk_counts[example.split] += 1
                for op in example.target.split("\n"):
                    program_counts[op.split("(", 1)[0]] += 1
                handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    doc_counts: Counter[str] = Counter()
    with open(out_dir / DOC_FILE, "w", encoding="utf-8") as handle:
        sources: list[tuple[str, Path]] = []
        if include_dclm and (data_dir / DCLM_LABELS).is_file():
            sources.append(("dclm_human_labels", data_dir / DCLM_LABELS))
        sources.extend((Path(p).name, Path(p)) for p in extra_doc_labels)
        for name, path in sources:
            for example in doc_examples(read_jsonl_dicts(path), source=name, template=template, salt=salt):
                doc_counts[f"{example.split}:{example.target}"] += 1
                handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    with open(out_dir / DOC_CLEANING_FILE, "w", encoding="utf-8") as handle:
        pages = cleaning_pages(data_dir, reference=reference, include_warc=False)
        for example in cleaning_keep_examples(pages, template=template, salt=salt):
            stats.doc_cleaning_examples += 1
            handle.write(json.dumps(example.as_record(), ensure_ascii=False) + "\n")
    stats.references = dict(references)
    stats.chunk_examples = dict(chunk_counts)
    stats.doc_examples = dict(sorted(doc_counts.items()))
    stats.chunk_programs = dict(program_counts)
    stats.line_labels = dict(label_counts)
    (out_dir / STATS_FILE).write_text(json.dumps(asdict(stats), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def read_seed(path: str | Path, split: Split | None = None) -> list[SeedExample]:
    """The examples of a seed file, optionally of one split."""
    return [
        example
        for example in (SeedExample.from_record(r) for r in read_jsonl_dicts(path))
        if split is None or example.split == split
    ]
