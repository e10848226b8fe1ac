"""Evaluation of refining models: exported models run on the seed splits and on the cleaning pages end to end.

The metrics are ``prox_spark.training.refiner_metrics`` (doc F1, chunk line F1, exact match, execution
failures); the report is ``prox_spark.training.refiner_report``. Here:

- **seed splits** (``evaluate_model_on_seed``): an exported model's programs for a held-out seed split,
  scored against the gold programs; ``doc_baselines`` gives trivial doc-stage references on the same split.
- **cleaning** (shared trafilatura evaluation pages held out from training): the whole pipeline runs
  (doc model -> chunk model on line-numbered chunks -> reference executor) and we count the
  ``must_keep`` snippets still in the output and the ``must_remove`` snippets gone from it, the numbers
  ``trafilatura_eval_baselines.txt`` reports for extractors (snippets not verbatim in the page are not
  counted). A dropped page keeps nothing and removes everything. Beside the reference pipeline the
  report shows the chunk model with its removals clipped to its own chunk (the pipeline's chunk-range
  guard, ``prox_spark.pipeline.guard.clip_to_chunk``, ``models.clip_chunk_programs``), which the reference
  does not have, to show how much of the damage comes from line numbers outside the chunk.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prox_spark.chunking import chunk_document, token_counter
from prox_spark.pipeline.guard import clip_to_chunk
from prox_spark.programs import execute
from prox_spark.prompts import Kind, encode_prompt
from prox_spark.training.refiner_metrics import chunk_metrics, doc_f1, doc_keeps, doc_metrics

BASELINES_FILE = "cleaning/trafilatura_eval_baselines.txt"


# --- running exported models -----------------------------------------------------------------------


def generate_programs(
    model_dir: str | Path,
    kind: Kind,
    inputs: Sequence[str],
    *,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    intra_op_threads: int = 0,
) -> list[tuple[str, bool]]:
    """Greedy programs of an exported model for raw documents (doc) or numbered chunks (chunk).

    Returns ``(program, stopped_at_eos)`` per input; ``stopped_at_eos`` False means cut off at the budget.
    """
    from prox_spark.inference import GreedyDecoder, load_model, map_in_length_buckets
    from prox_spark.models import load_tokenizer

    model = load_model(model_dir, provider="cpu", intra_op_threads=intra_op_threads)
    manifest = model.manifest
    if manifest.kind != kind:
        raise ValueError(f"{model_dir}: a {manifest.kind} model, asked for {kind} programs")
    tokenizer = load_tokenizer(Path(model_dir) / manifest.tokenizer_file)
    decoder = GreedyDecoder.from_model(model)
    budget = max_new_tokens or manifest.max_new_tokens
    prompts = [
        encode_prompt(manifest.prompt_template, kind, text, tokenizer, max_tokens=manifest.max_prompt_tokens)
        for text in inputs
    ]
    if not prompts:
        return []
    generations = map_in_length_buckets(prompts, batch_size, lambda batch: decoder.generate(batch, budget))
    return [(tokenizer.decode(g.tokens, skip_special_tokens=False), g.stopped_at_eos) for g in generations]


def score_doc_programs(model_dir: str | Path, texts: Sequence[str], *, batch_size: int = 16) -> list[str]:
    """Doc programs as the pipeline's default score mode writes them (the manifest's keep threshold)."""
    from prox_spark.pipeline import StageModel, write_doc_programs

    model = StageModel.load(model_dir, provider="cpu")
    return [p.program for p in write_doc_programs(model, texts, mode="score", batch_size=batch_size)]


@dataclass(frozen=True)
class PageResult:
    doc_program: str
    chunk_program: str
    text: str
    kept: bool
    reason: str | None
    errors: int


def refine_pages(
    texts: Sequence[str],
    *,
    doc_model: str | Path | None,
    chunk_model: str | Path | None,
    chunk_max_tokens: int,
    batch_size: int = 16,
    clip: bool = False,
) -> list[PageResult]:
    """The pipeline on raw pages: doc program, then chunk programs of kept pages, then the executor.

    ``doc_model=None`` skips the doc stage (every page goes to the chunk stage); ``chunk_model=None``
    skips the chunk stage; ``clip`` applies ``clip_to_chunk`` to every chunk program.
    """
    from prox_spark.models import load_tokenizer
    from prox_spark.inference import load_manifest

    doc_programs = ["keep_doc()"] * len(texts)
    if doc_model is not None:
        doc_programs = score_doc_programs(doc_model, texts, batch_size=batch_size)
    chunk_programs = [""] * len(texts)
    if chunk_model is not None:
        tokenizer = load_tokenizer(Path(chunk_model) / load_manifest(chunk_model).tokenizer_file)
        count = token_counter(tokenizer)
        owners, chunks = [], []
        for index, (text, program) in enumerate(zip(texts, doc_programs)):
            if text and doc_keeps(program):
                for chunk in chunk_document(text, count, chunk_max_tokens):
                    owners.append(index)
                    chunks.append(chunk)
        outputs = generate_programs(chunk_model, "chunk", [c.text for c in chunks], batch_size=batch_size)
        per_page: dict[int, list[str]] = {}
        for owner, chunk, (program, _) in zip(owners, chunks, outputs):
            if clip:
                program = clip_to_chunk(program, chunk.first_line, chunk.last_line).program
            per_page.setdefault(owner, []).append(program)
        chunk_programs = ["\n".join(per_page.get(i, [])) for i in range(len(texts))]
    results = []
    for text, doc_program, chunk_program in zip(texts, doc_programs, chunk_programs):
        doc = execute(text, doc_program, stage="doc", dialect="reference")
        if doc.dropped:
            results.append(PageResult(doc_program, chunk_program, "", False, doc.reason.value if doc.reason else None, 0))
            continue
        chunk = execute(text, chunk_program, stage="chunk", dialect="reference")
        results.append(
            PageResult(
                doc_program, chunk_program, chunk.text, chunk.kept, chunk.reason.value if chunk.reason else None, chunk.errors
            )
        )
    return results


# --- cleaning quality ------------------------------------------------------------------------------


def snippet_scores(outputs: Sequence[str], pages: Sequence[Any]) -> dict[str, Any]:
    """must_keep retained / must_remove removed over pages (objects with noisy_text, must_keep, must_remove)."""
    kept = keep_total = removed = remove_total = 0
    for output, page in zip(outputs, pages):
        for snippet in page.must_keep:
            if snippet and snippet in page.noisy_text:
                keep_total += 1
                kept += snippet in output
        for snippet in page.must_remove:
            if snippet and snippet in page.noisy_text:
                remove_total += 1
                removed += snippet not in output
    return {
        "must_keep_retained": kept / keep_total if keep_total else 0.0,
        "must_remove_removed": removed / remove_total if remove_total else 0.0,
        "must_keep": [kept, keep_total],
        "must_remove": [removed, remove_total],
        "pages": len(pages),
    }


def published_baselines(data_dir: str | Path) -> list[dict[str, Any]]:
    """The reference extractors' scores from ``trafilatura_eval_baselines.txt`` (all 990 pages)."""
    path = Path(data_dir) / BASELINES_FILE
    if not path.is_file():
        return []
    rows = []
    pattern = re.compile(
        r"^(?P<name>.+?): must_keep retained (?P<k>\d+)/(?P<kt>\d+)=(?P<kr>[\d.]+); "
        r"must_remove removed (?P<r>\d+)/(?P<rt>\d+)=(?P<rr>[\d.]+)"
    )
    for line in path.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line.strip())
        if match:
            rows.append(
                {
                    "name": match["name"],
                    "must_keep_retained": float(match["kr"]),
                    "must_remove_removed": float(match["rr"]),
                    "must_keep": [int(match["k"]), int(match["kt"])],
                    "must_remove": [int(match["r"]), int(match["rt"])],
                    "pages": "all",
                }
            )
    return rows


def evaluate_cleaning(
    data_dir: str | Path,
    *,
    doc_model: str | Path | None,
    chunk_model: str | Path,
    chunk_max_tokens: int,
    split: str = "test",
    max_pages: int | None = None,
    batch_size: int = 16,
    salt: str | None = None,
) -> dict[str, Any]:
    """Snippet scores on the held-out trafilatura pages for: the pipeline (doc + chunk models), the chunk
    model alone, the gold seed programs derived from the teacher extraction *without* the snippets (the
    ceiling this seed data teaches) and from the precision teacher when the pages carry it, the teacher
    extraction itself, and no cleaning; plus the published extractor figures (all 990 pages)."""
    from prox_spark.models import load_tokenizer
    from prox_spark.inference import load_manifest
    from prox_spark.training.seed import DEFAULT_SALT, derive_page, split_of
    from prox_spark.training.seed_sources import cleaning_pages

    pages = [
        p
        for p in cleaning_pages(data_dir, include_warc=False)
        if split_of(p.page_id, salt=salt or DEFAULT_SALT) == split and (p.must_keep or p.must_remove)
    ]
    pages.sort(key=lambda p: p.page_id)
    if max_pages is not None:
        pages = pages[:max_pages]
    texts = [p.noisy_text for p in pages]
    rows: list[dict[str, Any]] = []
    rows.append({"name": "no cleaning", **snippet_scores(texts, pages)})
    rows.append({"name": f"teacher extraction ({pages[0].reference if pages else '-'})", **snippet_scores([p.clean_text for p in pages], pages)})
    tokenizer = load_tokenizer(Path(chunk_model) / load_manifest(chunk_model).tokenizer_file)
    count = token_counter(tokenizer)

    def seed_outputs(references: Sequence[Any]) -> list[str]:
        outputs = []
        for page in references:
            seed = derive_page(page.page_id, page.noisy_text, page.clean_text, count, chunk_max_tokens)
            outputs.append(execute(page.noisy_text, seed.program, stage="chunk").text)
        return outputs

    rows.append({"name": "seed programs (teacher lines, no snippets) + executor", **snippet_scores(seed_outputs(pages), pages)})
    # the other teacher's lines, for the ceiling: what a student imitating either teacher could reach
    precision = {p.page_id: p for p in cleaning_pages(data_dir, reference="trafilatura_precision", include_warc=False)}
    if pages and all(precision[p.page_id].reference != pages[0].reference for p in pages):
        rows.append({
            "name": f"seed programs from {precision[pages[0].page_id].reference} instead (no snippets) + executor",
            **snippet_scores(seed_outputs([precision[p.page_id] for p in pages]), pages),
        })
    timings = {}
    started = time.perf_counter()
    chunk_only = refine_pages(texts, doc_model=None, chunk_model=chunk_model, chunk_max_tokens=chunk_max_tokens, batch_size=batch_size)
    timings["chunk_only_s"] = time.perf_counter() - started
    rows.append({"name": "chunk model + executor", **snippet_scores([r.text for r in chunk_only], pages), **_page_stats(chunk_only)})
    clipped = refine_pages(texts, doc_model=None, chunk_model=chunk_model, chunk_max_tokens=chunk_max_tokens, batch_size=batch_size, clip=True)
    rows.append(
        {"name": "chunk model, removals clipped to their chunk (models.clip_chunk_programs)", **snippet_scores([r.text for r in clipped], pages), **_page_stats(clipped)}
    )
    if doc_model is not None:
        # the chunk programs do not depend on the doc decision: the pipeline reuses them for kept pages
        started = time.perf_counter()
        doc_programs = score_doc_programs(doc_model, texts, batch_size=batch_size)
        timings["doc_stage_s"] = time.perf_counter() - started
        full = [
            r if doc_keeps(program) else PageResult(program, "", "", False, "doc_program_drop", 0)
            for r, program in zip(chunk_only, doc_programs)
        ]
        rows.append({"name": "doc + chunk models + executor", **snippet_scores([r.text for r in full], pages), **_page_stats(full)})
        guarded = [
            r if doc_keeps(program) else PageResult(program, "", "", False, "doc_program_drop", 0)
            for r, program in zip(clipped, doc_programs)
        ]
        rows.append(
            {"name": "doc + chunk models, chunk removals clipped (conf/local.yaml)", **snippet_scores([r.text for r in guarded], pages), **_page_stats(guarded)}
        )
    return {"split": split, "pages": len(pages), "rows": rows, "published": published_baselines(data_dir), "timings": timings}


def _page_stats(results: Sequence[PageResult]) -> dict[str, Any]:
    n = len(results) or 1
    return {
        "dropped_rate": sum(not r.kept for r in results) / n,
        "doc_dropped_rate": sum(r.reason == "doc_program_drop" for r in results) / n,
        "program_ignored_rate": sum(r.reason == "too_many_errors" for r in results) / n,
    }


# --- model-level evaluation on seed splits ---------------------------------------------------------


def evaluate_model_on_seed(
    model_dir: str | Path,
    seed_file: str | Path,
    *,
    split: str = "test",
    max_examples: int | None = None,
    batch_size: int = 16,
    samples: int = 5,
) -> dict[str, Any]:
    """Programs of an exported model for a seed split, scored against the gold programs."""
    from prox_spark.inference import load_manifest
    from prox_spark.training.seed import read_seed

    kind = load_manifest(model_dir).kind
    examples = read_seed(seed_file, split)  # type: ignore[arg-type]
    if max_examples is not None:
        examples = examples[:max_examples]
    started = time.perf_counter()
    gold = [e.target for e in examples]
    if kind == "doc":
        # score mode, as the pipeline runs by default: the logit margin against the manifest's threshold
        from prox_spark.pipeline import StageModel
        from prox_spark.pipeline.model_stages import DOC_CHOICES, doc_keep_margins

        model = StageModel.load(model_dir, provider="cpu")
        margins = doc_keep_margins(model, [e.input for e in examples], batch_size=batch_size)
        threshold = model.manifest.doc_keep_threshold
        predicted = [DOC_CHOICES[0] if m >= threshold else DOC_CHOICES[1] for m in margins]
        elapsed = time.perf_counter() - started
        metrics = doc_metrics(gold, predicted)
        metrics["doc_keep_threshold"] = threshold
        metrics["doc_f1_at_threshold_0"] = doc_f1(gold, [DOC_CHOICES[0] if m >= 0 else DOC_CHOICES[1] for m in margins]).f1
    else:
        outputs = generate_programs(model_dir, kind, [e.input for e in examples], batch_size=batch_size)
        elapsed = time.perf_counter() - started
        predicted = [p for p, _ in outputs]
        metrics = chunk_metrics(
            gold,
            predicted,
            [e.meta["n_doc_lines"] for e in examples],
            truncated=[not s for _, s in outputs],
            chunk_ranges=[(e.meta["first_line"], e.meta["last_line"]) for e in examples],
        )
    metrics["seconds"] = elapsed
    metrics["split"] = split
    metrics["samples"] = [
        {"id": e.id, "gold": g, "predicted": p} for e, g, p in list(zip(examples, gold, predicted))[:samples]
    ]
    return metrics


def doc_baselines(seed_file: str | Path, split: str = "test") -> list[dict[str, Any]]:
    """Trivial doc-stage references on a seed split: keep everything, and a length rule (keep documents
    longer than the character threshold that maximises F1 on the train split)."""
    from prox_spark.training.seed import read_seed

    train = read_seed(seed_file, "train")  # type: ignore[arg-type]
    examples = read_seed(seed_file, split)  # type: ignore[arg-type]
    gold_train = [e.target for e in train]
    threshold = max(
        range(0, 5001, 50),
        key=lambda n: (doc_f1(gold_train, ["keep_doc()" if len(e.input) > n else "drop_doc()" for e in train]).f1, -n),
    )
    gold = [e.target for e in examples]
    rules = {
        "keep every document": ["keep_doc()"] * len(examples),
        f"keep documents over {threshold} characters (tuned on train)": [
            "keep_doc()" if len(e.input) > threshold else "drop_doc()" for e in examples
        ],
    }
    return [{"name": name, **doc_metrics(gold, predicted)} for name, predicted in rules.items()]
