"""The raw / rules / ProX comparison without Spark or torch: its corpus, its held-out set, its report.

``jobs/compare.py`` refines one corpus four ways and pre-trains the same small model on each variant at an
equal token budget; this module builds the inputs and writes the result table, so both can be tested and
reused (notebooks) on their own.

Corpus (``build_corpus``) from the shared real data, read in place: the *noisy* page text (menus, footers,
cookie notices, as in Common Crawl WET extracts) of the trafilatura evaluation pages and of the trainable gold
sets' report pages (``CORPUS_GOLD_SETS``), the WARC-extracted pages, and the DCLM human-labelled documents
(good and bad alike: the refiner has to tell them apart). Only documents in the held-out set's languages
(``languages``, English by default) go in: the trafilatura pages are about half German, and a variant must not
win by dropping the languages the held-out set lacks (the rules' stop-word filter drops every German page).

Held-out set (``write_held_out``): human gold main text that neither the corpus nor any bundled refining
model contains: by default the gold of the evaluation-only cleaning sets (MSV chaos, then Dragnet;
``prox_spark.evaluation.gold``), or any JSONL with a ``gold_text`` or ``text`` field. Clean text is what a
refined corpus is meant to teach: a model trained on boilerplate-heavy text spends capacity on menus and share
links that never occur there, so lower perplexity on it is the paper's "better pre-training data" at our scale.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from prox_spark.evaluation.gold import gold_pages
from prox_spark.evaluation.shingles import shingle_counts
from prox_spark.language import language_filter
from prox_spark.training.seed import split_of
from prox_spark.training.seed_sources import DCLM_LABELS, TRAFILATURA_SEGMENTS, WARC_EXTRACTED, read_jsonl_dicts

#: variants in table order: name → refine ``pipeline.mode`` (None: the corpus as read, no refining).
#: ``rules+prox`` is the paper's own set-up: its corpora (C4, FineWeb, RedPajama) are rule-filtered before
#: ProX refines them, so ProX is measured against the rules on the documents the rules keep.
VARIANTS: dict[str, str | None] = {
    "raw": None, "rules": "rules", "prox-doc": "prox-doc", "prox": "prox", "rules+prox": "rules+prox",
}

#: gold sets whose report (``test``) pages join the corpus as noisy pages: no bundled model trained on them, and
#: they are English, as the trafilatura pages are only in part
CORPUS_GOLD_SETS = ("cleaneval", "readability", "cleanportaleval")

#: the default held-out sets: human gold of pages no bundled model trains on, the smaller set first (the
#: evaluation reads the first blocks of the held-out texts)
HELD_OUT_SETS = ("msv_chaos", "dragnet")


@dataclass(frozen=True)
class CorpusCounts:
    """How many documents of each source went into the corpus, and how many were left out for their language."""

    pages: int
    warc_pages: int
    dclm_docs: int
    other_languages: int

    @property
    def documents(self) -> int:
        return self.pages + self.warc_pages + self.dclm_docs


@dataclass(frozen=True)
class MainText:
    """How much of a variant's text on the corpus pages with human gold is main text, and how much of that gold
    it kept: tells a perplexity gap that comes from cleaner text from one that comes from which pages a variant
    keeps. Shares are of 4-gram shingles (``prox_spark.evaluation.shingles``), summed over the pages."""

    gold_pages: int
    pages_kept: int
    #: matched shingles / shingles of the kept text (None: no page kept)
    share: float | None
    #: matched shingles / shingles of every gold page, kept or not (None: no gold page)
    gold_kept: float | None


def _corpus_id(page_id: str) -> str:
    return f"page-{page_id}"


def corpus_gold(shared_data: str | Path, corpus_ids: Iterable[str]) -> dict[str, str]:
    """Human gold main text of the corpus documents that have one (the ``CORPUS_GOLD_SETS`` pages), by
    corpus id."""
    wanted = set(corpus_ids)
    return {
        _corpus_id(page.page_id): page.gold_text
        for set_name in CORPUS_GOLD_SETS for page in gold_pages(shared_data, set_name)
        if _corpus_id(page.page_id) in wanted
    }


def main_text(kept: Mapping[str, str], gold: Mapping[str, str]) -> MainText:
    """``MainText`` of the kept texts (document id → text; dropped documents absent) against ``gold``."""
    matched = predicted = total = pages_kept = 0
    for doc_id, gold_text in gold.items():
        text = kept.get(doc_id, "")
        tp, fp, fn = shingle_counts(gold_text, text)
        matched, predicted, total = matched + tp, predicted + tp + fp, total + tp + fn
        pages_kept += bool(text)
    return MainText(
        gold_pages=len(gold), pages_kept=pages_kept,
        share=matched / predicted if predicted else None, gold_kept=matched / total if total else None,
    )


def _write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def build_corpus(shared_data: str | Path, corpus_dir: str | Path, *, max_pages: int = 0, max_dclm: int = 0,
                 warc_pages: bool = True, languages: Sequence[str] = ()) -> CorpusCounts:
    """Write the corpus (``pages.jsonl``, ``warc.jsonl``, ``dclm.jsonl``: one input shard each, ``id`` +
    ``text``): the trafilatura pages outside their test split, the ``CORPUS_GOLD_SETS`` pages inside it.
    ``languages``: ISO 639-1 codes a document must be detected as (empty: any). ``max_*`` count the documents
    that pass; 0 means all."""
    shared, corpus = Path(shared_data), Path(corpus_dir)
    keeps = language_filter(languages) or (lambda text: True)
    left_out = 0

    def wanted(text: str) -> bool:
        nonlocal left_out
        if not text.strip():
            return False
        if keeps(text):
            return True
        left_out += 1
        return False

    pages = []
    for page in read_jsonl_dicts(shared / TRAFILATURA_SEGMENTS):
        if split_of(page["id"]) == "test" or (max_pages and len(pages) >= max_pages):
            continue
        if wanted(page["noisy_text"]):
            pages.append({"id": _corpus_id(page["id"]), "text": page["noisy_text"], "url": page.get("url")})
    for set_name in CORPUS_GOLD_SETS:
        for gold in gold_pages(shared, set_name):
            if gold.split != "test" or (max_pages and len(pages) >= max_pages):
                continue
            if wanted(gold.noisy_text):
                pages.append({"id": _corpus_id(gold.page_id), "text": gold.noisy_text, "url": gold.url or None})
    warc = []
    if warc_pages:
        for name in WARC_EXTRACTED:
            for i, page in enumerate(read_jsonl_dicts(shared / name)):
                if wanted(page.get("noisy_text") or ""):
                    warc.append({"id": f"{Path(name).stem}-{i}", "text": page["noisy_text"], "url": page.get("url")})
    dclm = []
    for doc in read_jsonl_dicts(shared / DCLM_LABELS):
        if (not max_dclm or len(dclm) < max_dclm) and wanted(doc["text"]):
            dclm.append({"id": f"dclm-{doc['id']}", "text": doc["text"]})
    return CorpusCounts(
        pages=_write_jsonl(corpus / "pages.jsonl", pages),
        warc_pages=_write_jsonl(corpus / "warc.jsonl", warc) if warc else 0,
        dclm_docs=_write_jsonl(corpus / "dclm.jsonl", dclm),
        other_languages=left_out,
    )


def write_held_out(shared_data: str | Path, held_out_path: str | Path, source: str | Path = "") -> tuple[int, str]:
    """Write the held-out clean texts (``id``, ``text``) to ``held_out_path``; returns (count, description).

    ``source``: a JSONL whose records carry ``gold_text`` (preferred) or ``text``; empty: the human gold of
    ``HELD_OUT_SETS``. A record with neither field, or no text at all, is a ``ValueError`` naming the file."""
    rows: list[dict] = []
    if source:
        for number, record in enumerate(read_jsonl_dicts(Path(source)), 1):
            text = record.get("gold_text") or record.get("text")
            if not isinstance(text, str):
                raise ValueError(f"{source}:{number}: a held-out record needs a 'gold_text' or 'text' string")
            if text.strip():
                rows.append({"id": str(record.get("id", number)), "text": text})
        described = f"clean texts of {source}"
    else:
        for set_name in HELD_OUT_SETS:
            rows += [{"id": p.page_id, "text": p.gold_text} for p in gold_pages(shared_data, set_name)]
        described = f"human gold main text of the {' and '.join(HELD_OUT_SETS)} pages (evaluation-only sets)"
    if not rows:
        raise ValueError(f"no held-out texts ({described}): the comparison needs a clean eval set")
    return _write_jsonl(Path(held_out_path), rows), described


@dataclass(frozen=True)
class VariantResult:
    """One variant's row of the comparison table."""

    name: str
    mode: str | None
    docs_in: int
    docs_kept: int
    tokens_kept: int
    tokens_trained: int
    epochs: float
    held_out_ppl: float | None
    final_train_loss: float | None
    loss_curve: list[dict]
    refine_seconds: float
    train_seconds: float
    #: shuffle windows one pass of the variant fills (``shuffle_windows``); 1: every step draws from all of it
    shuffle_windows: int
    #: its text on the corpus pages with human gold (``main_text``)
    main_text: MainText


def shuffle_windows(tokens: int, block_size: int, window: int) -> int:
    """How many shuffle windows of ``window`` blocks one pass of ``tokens`` tokens fills.

    Pre-training reads a table's files in a seeded order and shuffles only within a window of consecutive
    blocks. When a pass fills more than one window, which source a part-epoch budget covers, and which one it
    ends on at the lowest learning rate, depends on the file order, that is on the seed: the variants then
    differ by their curriculum as well as by their text. At 1 every block of the pass is drawn in one
    permutation."""
    blocks = tokens // (block_size + 1)
    return max(1, -(-blocks // max(window, 1)))


def write_report(results: list[VariantResult], out_dir: str | Path, meta: dict) -> dict[str, Path]:
    """``comparison.md``, ``comparison.json`` and ``loss_curves.png`` under ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = next((r for r in results if r.name == "raw"), None)
    rows = []
    for r in results:
        vs_raw = (r.held_out_ppl / raw.held_out_ppl - 1.0) if raw and raw.held_out_ppl and r.held_out_ppl else None
        rows.append({**asdict(r), "ppl_vs_raw": vs_raw})
    paths = {"json": out / "comparison.json", "md": out / "comparison.md", "png": out / "loss_curves.png"}
    paths["json"].write_text(json.dumps({"meta": meta, "variants": rows}, indent=2), encoding="utf-8")
    paths["md"].write_text(_markdown(rows, meta), encoding="utf-8")
    _plot(results, paths["png"])
    return paths


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "| variant | docs kept | tokens kept | epochs at budget | shuffle windows per pass | gold pages kept "
        "| main-text share | gold text kept | held-out ppl | vs raw | final train loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["main_text"]
        lines.append(
            f"| {r['name']} | {r['docs_kept']:,} / {r['docs_in']:,} | {r['tokens_kept']:,} | {_fmt(r['epochs'], '.2f')} "
            f"| {r['shuffle_windows']} | {m['pages_kept']} / {m['gold_pages']} | {_fmt(m['share'], '.3f')} "
            f"| {_fmt(m['gold_kept'], '.3f')} | {_fmt(r['held_out_ppl'], '.2f')} | {_fmt(r['ppl_vs_raw'], '+.1%')} "
            f"| {_fmt(r['final_train_loss'], '.3f')} |"
        )
    budget = meta.get("token_budget")
    head = [f"# Raw vs rules vs ProX at an equal token budget ({budget:,} training tokens per variant)", ""]
    foot = [
        "", "Main-text share: of the variant's text on the corpus pages with human gold, the part that is gold main "
        "text; gold text kept: of those pages' gold, the part the variant kept (4-gram shingles, summed over the "
        "pages). A variant can lower the perplexity with cleaner text or by keeping different pages: these two "
        "columns tell which.",
        "", "Loss curves: `loss_curves.png`; everything above and the curves: `comparison.json`.", "",
    ]
    foot += [f"- {k}: {v}" for k, v in meta.items()]
    return "\n".join(head + lines + foot) + "\n"


def _plot(results: list[VariantResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on workers or CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        label = f"{r.name} (held-out ppl {_fmt(r.held_out_ppl, '.1f')})"
        ax.plot([p["tokens"] for p in r.loss_curve], [p["loss"] for p in r.loss_curve], label=label)
    ax.set_xlabel("training tokens")
    ax.set_ylabel("training loss")
    ax.set_title(f"Same model, same token budget, {len(results)} versions of one corpus")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
