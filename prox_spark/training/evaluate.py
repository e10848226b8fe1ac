"""Evaluation of refining models: the paper's F1 metrics, program health, and cleaning quality end to end.

Metrics (prox-reference.md §4.3, paper A.3):

- **doc F1**: binary F1 with *keep* as the positive class; a program keeps unless it contains ``drop``
  (the reference executor's test, §1.2).
- **chunk line F1**: over the sets of removed line numbers, predicted against gold, summed over all
  chunks (micro: TP = lines in both, FP = predicted only, FN = gold only). Normalizations are not scored,
  as in the paper. ``remove_lines(all=True)`` removes every line of the document.
- **exact-program match**: the generated program equals the gold one (ends stripped).
- **execution-failure rate**: programs with at least one error in the reference executor (a parse error
  or a range past the document's last line, the errors its ≥2-errors fallback counts; §1.3). Errors
  depend only on the program and the document's line count, so they are counted on a stand-in document
  of that many lines.
- **cleaning** (shared trafilatura evaluation pages held out from training): the whole pipeline runs
  (doc model -> chunk model on line-numbered chunks -> reference executor) and we count the
  ``must_keep`` snippets still in the output and the ``must_remove`` snippets gone from it, the numbers
  ``trafilatura_eval_baselines.txt`` reports for extractors (snippets not verbatim in the page are not
  counted). A dropped page keeps nothing and removes everything. Beside the reference pipeline the
  report shows the chunk model with its removals clipped to its own chunk (the pipeline's chunk-range
  guard, ``prox_spark.pipeline.guard.clip_to_chunk``, ``models.clip_chunk_programs``), which the reference
  does not have, to show how much of the damage comes from line numbers outside the chunk.

Reports: ``write_report(report, path_stem)`` writes ``<stem>.json`` and ``<stem>.md``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prox_spark.chunking import chunk_document, token_counter
from prox_spark.pipeline.guard import clip_to_chunk
from prox_spark.programs import RemoveAllLines, RemoveLines, execute, parse
from prox_spark.prompts import Kind, encode_prompt

BASELINES_FILE = "cleaning/trafilatura_eval_baselines.txt"


# --- metrics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class F1:
    """Counts of a binary or set comparison and the scores derived from them."""

    tp: int
    fp: int
    fn: int
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


def binary_f1(gold: Sequence[bool], predicted: Sequence[bool]) -> F1:
    """F1 of the positive (True) class."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    tp = sum(g and p for g, p in zip(gold, predicted))
    fp = sum(p and not g for g, p in zip(gold, predicted))
    fn = sum(g and not p for g, p in zip(gold, predicted))
    return F1(tp, fp, fn, len(gold) - tp - fp - fn)


def doc_keeps(program: str) -> bool:
    """The reference doc executor's decision: keep unless ``drop`` occurs in the program."""
    return "drop" not in program.strip(" ")


def doc_f1(gold_programs: Sequence[str], predicted_programs: Sequence[str]) -> F1:
    """Doc-stage F1, keep = positive."""
    return binary_f1([doc_keeps(p) for p in gold_programs], [doc_keeps(p) for p in predicted_programs])


def calibrate_keep_threshold(margins: Sequence[float], gold_keep: Sequence[bool]) -> dict[str, Any]:
    """The keep threshold on logit margins (keep iff margin >= threshold) that maximises keep F1 on
    labelled (validation) documents; ties go to the threshold nearest 0.0, the uncalibrated argmax.

    Candidates lie midway between neighbouring margins (and one step beyond each end), never on a
    margin, so the few-ulp difference between torch and onnxruntime logits cannot flip a document.
    """
    if len(margins) != len(gold_keep) or not margins:
        raise ValueError(f"{len(margins)} margins for {len(gold_keep)} labels")
    values = sorted(set(margins))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1.0]

    def f1_at(threshold: float) -> float:
        return binary_f1(list(gold_keep), [m >= threshold for m in margins]).f1

    best = max(candidates, key=lambda t: (f1_at(t), -abs(t)))
    return {
        "threshold": round(best, 6),
        "validation_f1": f1_at(best),
        "validation_f1_at_zero": f1_at(0.0),
        "validation_examples": len(margins),
        "validation_keep_rate": sum(m >= best for m in margins) / len(margins),
    }


def removed_lines(program: str, n_doc_lines: int) -> set[int]:
    """Line numbers (0-based, of a document of ``n_doc_lines`` lines) a chunk program removes."""
    removed: set[int] = set()
    for line in parse(program, stage="chunk", dialect="reference").lines:
        if isinstance(line.op, RemoveAllLines):
            return set(range(n_doc_lines))
        if isinstance(line.op, RemoveLines) and line.errors == 0:
            removed.update(range(max(line.op.start, 0), min(line.op.end, n_doc_lines - 1) + 1))
    return removed


def line_f1(gold: Sequence[set[int]], predicted: Sequence[set[int]]) -> F1:
    """Micro line-level F1 of removed lines over all chunks."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sets but {len(predicted)} predictions")
    tp = sum(len(g & p) for g, p in zip(gold, predicted))
    fp = sum(len(p - g) for g, p in zip(gold, predicted))
    fn = sum(len(g - p) for g, p in zip(gold, predicted))
    return F1(tp, fp, fn)


def program_errors(program: str, n_doc_lines: int, *, stage: Kind = "chunk") -> int:
    """Errors the reference executor counts for ``program`` on a document of ``n_doc_lines`` lines."""
    stand_in = "\n".join(["x y z"] * max(n_doc_lines, 1))
    return execute(stand_in, program, stage=stage, dialect="reference").errors


def exact_match(gold: str, predicted: str) -> bool:
    return gold.strip() == predicted.strip()


def doc_metrics(gold_programs: Sequence[str], predicted_programs: Sequence[str]) -> dict[str, Any]:
    """Doc F1 (keep positive), accuracy, exact match and the share of outputs that are not a doc program."""
    n = len(gold_programs)
    scores = doc_f1(gold_programs, predicted_programs)
    malformed = sum(p.strip() not in ("keep_doc()", "drop_doc()") for p in predicted_programs)
    return {
        "n": n,
        "doc_f1": scores.f1,
        "doc": scores.as_dict(),
        "accuracy": (scores.tp + scores.tn) / n if n else 0.0,
        "exact_match": sum(map(exact_match, gold_programs, predicted_programs)) / n if n else 0.0,
        "malformed_rate": malformed / n if n else 0.0,
        "predicted_keep_rate": sum(map(doc_keeps, predicted_programs)) / n if n else 0.0,
        "gold_keep_rate": sum(map(doc_keeps, gold_programs)) / n if n else 0.0,
    }


def chunk_metrics(
    gold_programs: Sequence[str],
    predicted_programs: Sequence[str],
    n_doc_lines: Sequence[int],
    *,
    truncated: Sequence[bool] | None = None,
    chunk_ranges: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Line F1, exact match and execution-failure rate of chunk programs; with ``chunk_ranges`` (first,
    last line of each chunk) also the line F1 when removals are clipped to their chunk and the share of
    predicted removed lines outside it."""
    n = len(gold_programs)
    gold_sets = [removed_lines(g, k) for g, k in zip(gold_programs, n_doc_lines)]
    pred_sets = [removed_lines(p, k) for p, k in zip(predicted_programs, n_doc_lines)]
    scores = line_f1(gold_sets, pred_sets)
    failures = sum(program_errors(p, k) > 0 for p, k in zip(predicted_programs, n_doc_lines))
    clipped = None
    if chunk_ranges is not None:
        clipped = line_f1(
            gold_sets, [{n for n in p if first <= n <= last} for p, (first, last) in zip(pred_sets, chunk_ranges)]
        )
    result = {
        "n": n,
        "line_f1": scores.f1,
        "lines": scores.as_dict(),
        "exact_match": sum(map(exact_match, gold_programs, predicted_programs)) / n if n else 0.0,
        "execution_failure_rate": failures / n if n else 0.0,
        "keep_chunk_gold": sum(g.strip() == "keep_chunk()" for g in gold_programs) / n if n else 0.0,
        "keep_chunk_predicted": sum(p.strip() == "keep_chunk()" for p in predicted_programs) / n if n else 0.0,
    }
    if truncated is not None:
        result["truncated_rate"] = sum(truncated) / n if n else 0.0
    if clipped is not None:
        result["line_f1_clipped_to_chunk"] = clipped.f1
        result["removed_outside_chunk"] = 1 - sum(
            len({x for x in p if first <= x <= last}) for p, (first, last) in zip(pred_sets, chunk_ranges)  # type: ignore[arg-type]
        ) / max(1, sum(len(p) for p in pred_sets))
    return result


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


# --- reports ---------------------------------------------------------------------------------------


def write_report(report: dict[str, Any], stem: str | Path) -> tuple[Path, Path]:
    """``<stem>.json`` (everything) and ``<stem>.md`` (the tables a reader wants)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}/{value[1]}"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """A readable report: model, training, seed-split metrics, cleaning table with published figures."""
    lines = [f"# Evaluation: {report.get('model_id', '?')} ({report.get('kind', '?')} model)", ""]
    if report.get("model"):
        lines += ["## Model", ""] + [f"- {k}: {_fmt(v)}" for k, v in report["model"].items()] + [""]
    if report.get("training"):
        lines += ["## Training", ""] + [f"- {k}: {_fmt(v)}" for k, v in report["training"].items() if k != "history"] + [""]
    seed = report.get("seed_eval")
    if seed:
        lines += [f"## Seed split `{seed.get('split')}` ({seed.get('n')} examples)", ""]
        keys = [k for k in ("doc_f1", "doc_keep_threshold", "doc_f1_at_threshold_0", "line_f1", "line_f1_clipped_to_chunk", "removed_outside_chunk", "accuracy", "exact_match", "execution_failure_rate", "malformed_rate",
                            "truncated_rate", "predicted_keep_rate", "gold_keep_rate", "keep_chunk_gold",
                            "keep_chunk_predicted", "seconds") if k in seed]
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(seed[k])} |" for k in keys] + [""]
        detail = seed.get("doc") or seed.get("lines")
        if detail:
            lines += ["counts: " + ", ".join(f"{k}={_fmt(v)}" for k, v in detail.items()), ""]
        if seed.get("baselines"):
            lines += ["| reference rule (same split) | doc F1 | accuracy |", "|---|---|---|"]
            lines += [f"| {b['name']} | {_fmt(b['doc_f1'])} | {_fmt(b['accuracy'])} |" for b in seed["baselines"]] + [""]
        if seed.get("samples"):
            lines += ["Samples (gold → predicted):", ""]
            for s in seed["samples"]:
                lines += [f"- `{s['id']}`: `{s['gold'][:120]!r}` → `{s['predicted'][:120]!r}`"]
            lines += [""]
    cleaning = report.get("cleaning")
    if cleaning:
        lines += [
            f"## Cleaning: shared trafilatura evaluation pages, split `{cleaning['split']}` ({cleaning['pages']} pages)",
            "",
            "| system | pages | must-keep retained | must-remove removed | dropped pages |",
            "|---|---|---|---|---|",
        ]
        for row in cleaning["rows"]:
            lines.append(
                f"| {row['name']} | {row['pages']} | {_fmt(row['must_keep_retained'])} ({_fmt(row['must_keep'])}) "
                f"| {_fmt(row['must_remove_removed'])} ({_fmt(row['must_remove'])}) | {_fmt(row.get('dropped_rate', '-'))} |"
            )
        for row in cleaning.get("published", []):
            lines.append(
                f"| published: {row['name']} | all 990 | {_fmt(row['must_keep_retained'])} ({_fmt(row['must_keep'])}) "
                f"| {_fmt(row['must_remove_removed'])} ({_fmt(row['must_remove'])}) | - |"
            )
        lines += ["", "Targets: must-keep retained ≥ 0.95, must-remove removed ≥ 0.92.", ""]
    for note in report.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"
