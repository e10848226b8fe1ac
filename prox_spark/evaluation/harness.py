"""Score cleaners on the report pages of every gold set: the core of ``jobs.evaluate_cleaning`` (no Spark).

A *variant* is a named cleaner: either a ``RefineConfig``, run through the very code ``prox-spark clean``
runs (``load_models`` once, then ``refine_batch`` with ``settings_of(config)`` on batches of
``models.udf_batch_rows`` pages), so any ``pipeline.mode`` and any exported models are scored the way
they would refine a corpus; or a plain text function, for baselines that are no pipeline at all. Each
page's final text ("" when dropped) is scored against its gold text per set: shingle F1 / P / R
(``prox_spark.evaluation.shingles``), pages dropped, and on the trafilatura set the must-keep /
must-remove snippet rates (``prox_spark.training.evaluate.snippet_scores``, snippets not verbatim in the
page are not counted). Only ``test``-split pages are scored (``prox_spark.evaluation.gold``).

Speed is wall clock around the cleaner alone (model loading and scoring excluded) in this one process,
so pages/s of two variants compare only within one run on one machine.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from prox_spark.clean import load_models
from prox_spark.config import PipelineConfig, RefineConfig
from prox_spark.evaluation.gold import GOLD_SETS, TRAFILATURA_SET, Page, all_pages, gold_pages, trafilatura_pages
from prox_spark.evaluation.shingles import shingle_f1
from prox_spark.pipeline import ServedModel, refine_batch, settings_of
from prox_spark.pipeline.stage_pass import NO_MODELS
from prox_spark.training.evaluate import snippet_scores

log = logging.getLogger(__name__)

#: every set a report can cover, in report order
REPORT_SETS: tuple[str, ...] = (*GOLD_SETS, TRAFILATURA_SET)
#: the baseline every variant's speed is compared with
RULES_VARIANT = "rules"
#: the line-length baseline's threshold (whitespace words per line)
MIN_LINE_WORDS = 12

TextCleaner = Callable[[str], str]


@dataclass(frozen=True)
class Variant:
    """A named cleaner: a pipeline config, or a function from page text to cleaned text."""

    name: str
    cleaner: RefineConfig | TextCleaner


@dataclass(frozen=True)
class SetScore:
    """One variant on one set's report pages."""

    pages: int
    f1: float
    precision: float
    recall: float
    #: pages whose final text is empty (dropped, or nothing left)
    dropped: int
    #: wall-clock seconds of the cleaner alone
    seconds: float
    pages_per_s: float
    #: snippet rates (trafilatura set only, else None): ``snippet_scores``' fields
    must_keep_retained: float | None = None
    must_remove_removed: float | None = None
    must_keep: tuple[int, int] | None = None
    must_remove: tuple[int, int] | None = None


def no_cleaning(text: str) -> str:
    """The page as it is: the recall ceiling and the precision floor."""
    return text


def long_lines(text: str, min_words: int = MIN_LINE_WORDS) -> str:
    """The lines of at least ``min_words`` whitespace-separated words, joined by newlines: the classic
    boilerplate rule (menus, footers and link lists are short lines) that any model has to beat."""
    return "\n".join(line for line in text.splitlines() if len(line.split()) >= min_words)


def baseline_variants(config: RefineConfig) -> list[Variant]:
    """No cleaning, the line-length rule, and ``config`` with ``pipeline.mode=rules`` (its rules preset)."""
    return [
        Variant("none", no_cleaning),
        Variant(f"lines>={MIN_LINE_WORDS} words", long_lines),
        Variant(RULES_VARIANT, dataclasses.replace(config, pipeline=PipelineConfig(mode="rules"))),
    ]


def report_pages(
    data_dir: str | Path, sets: Sequence[str] | None = None, max_pages: int | None = None
) -> dict[str, list[Page]]:
    """The ``test`` pages of each set (all sets present under ``data_dir`` when ``sets`` is None), in file
    order, at most ``max_pages`` per set; a named set that is unknown or has no test page raises."""
    if sets is None:
        pages: Iterable[Page] = all_pages(data_dir)
    else:
        unknown = [s for s in sets if s not in REPORT_SETS]
        if unknown:
            raise ValueError(f"unknown set(s) {unknown}: expected some of {list(REPORT_SETS)}")
        pages = chain.from_iterable(
            trafilatura_pages(data_dir) if s == TRAFILATURA_SET else gold_pages(data_dir, s) for s in sets
        )
    grouped: dict[str, list[Page]] = {}
    for page in pages:
        if page.split != "test":
            continue
        bucket = grouped.setdefault(page.set_name, [])
        if max_pages is None or len(bucket) < max_pages:
            bucket.append(page)
    missing = [s for s in sets or () if not grouped.get(s)]
    if missing:
        raise ValueError(f"no test pages for set(s) {missing} under {data_dir}")
    return {s: grouped[s] for s in REPORT_SETS if s in grouped}


def describe(variant: Variant, models: Mapping[str, ServedModel] = NO_MODELS) -> dict[str, Any]:
    """What a variant is, for the report: the function's name, or the config's mode, rules preset, models
    (ids and config sections) and the settings that change what the models see."""
    if not isinstance(variant.cleaner, RefineConfig):
        return {"kind": "function", "function": variant.cleaner.__name__}
    config = variant.cleaner
    stages = config.pipeline.stages
    described: dict[str, Any] = {"kind": "config", "pipeline_mode": config.pipeline.mode}
    if "rules" in stages:
        described["rules_preset"] = config.rules.preset
    for stage, model in models.items():
        # the stage's whole config section, so a setting added later (a new model kind) shows up too
        described[f"{stage}_model"] = {"id": model.model_id, **dataclasses.asdict(config.models.stage(stage))}
    if "doc" in stages:
        described["doc_mode"] = config.models.doc_mode
        if "chunk" in stages:
            described["doc_guard_words"] = config.models.doc_guard_words
    if "chunk" in stages:
        described["max_chunk_tokens"] = config.models.max_chunk_tokens
        described["clip_chunk_programs"] = config.models.clip_chunk_programs
        described["drop_comment_sections"] = config.models.drop_comment_sections
        described["drop_doubled_lines"] = config.models.drop_doubled_lines
        described["drop_stray_fragments"] = config.models.drop_stray_fragments
    if stages != ("rules",):
        described["provider"] = config.models.provider
    return described


def score_set(pages: Sequence[Page], outputs: Sequence[str], seconds: float) -> SetScore:
    """The metrics of one set from its pages' final texts."""
    shingle = shingle_f1((page.gold_text, output) for page, output in zip(pages, outputs))
    snippets: dict[str, Any] = {}
    if pages and pages[0].set_name == TRAFILATURA_SET:
        scores = snippet_scores(outputs, pages)
        snippets = {
            "must_keep_retained": scores["must_keep_retained"],
            "must_remove_removed": scores["must_remove_removed"],
            "must_keep": tuple(scores["must_keep"]),
            "must_remove": tuple(scores["must_remove"]),
        }
    return SetScore(
        pages=len(pages), f1=shingle.f1, precision=shingle.precision, recall=shingle.recall,
        dropped=sum(not output.strip() for output in outputs), seconds=seconds,
        pages_per_s=len(pages) / seconds if seconds > 0 else 0.0, **snippets,
    )


def evaluate_variant(variant: Variant, pages_by_set: dict[str, list[Page]]) -> tuple[dict[str, Any], dict[str, SetScore]]:
    """Run one variant over every set; returns (its description, per-set scores)."""
    if isinstance(variant.cleaner, RefineConfig):
        config = variant.cleaner
        started = time.perf_counter()
        models = load_models(config)
        description = {**describe(variant, models), "model_load_s": round(time.perf_counter() - started, 3)}
        clean, batch = _pipeline(config, models), config.models.udf_batch_rows
    else:
        description = describe(variant)
        text_cleaner = variant.cleaner

        def clean(texts: list[str]) -> list[str]:
            return [text_cleaner(text) for text in texts]

        batch = max([1, *(len(pages) for pages in pages_by_set.values())])  # a function needs no batches
    scores = {}
    for set_name, pages in pages_by_set.items():
        outputs: list[str] = []
        seconds = 0.0
        for start in range(0, len(pages), batch):
            texts = [page.noisy_text for page in pages[start:start + batch]]
            started = time.perf_counter()
            outputs.extend(clean(texts))
            seconds += time.perf_counter() - started
            log.info("%s on %s: %d/%d pages cleaned", variant.name, set_name, len(outputs), len(pages))
        scores[set_name] = score_set(pages, outputs, seconds)
        log.info(
            "%s on %s: %d pages, F1 %.3f, %d dropped, %.1f pages/s", variant.name, set_name, len(pages),
            scores[set_name].f1, scores[set_name].dropped, scores[set_name].pages_per_s,
        )
    return description, scores


def evaluate(variants: Sequence[Variant], pages_by_set: dict[str, list[Page]]) -> dict[str, Any]:
    """Every variant on every set: the report's data (``prox_spark.evaluation.report`` renders it)."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    described, results = {}, {}
    for variant in variants:
        described[variant.name], scores = evaluate_variant(variant, pages_by_set)
        results[variant.name] = {s: dataclasses.asdict(score) for s, score in scores.items()}
    return {
        "sets": {s: len(pages) for s, pages in pages_by_set.items()},
        "variants": described,
        "results": results,
    }


def _pipeline(config: RefineConfig, models: Mapping[str, ServedModel]) -> Callable[[list[str]], list[str]]:
    """``config``'s stages on a batch of texts with ``models`` (``load_models``), as ``prox-spark clean`` runs them;
    "" for a dropped page."""
    settings = settings_of(config)

    def clean(texts: list[str]) -> list[str]:
        frame, _ = refine_batch(
            list(range(len(texts))), texts, models, settings,
            stages=config.pipeline.stages, rules_preset=config.rules.preset,
        )
        return [text if kept else "" for text, kept in zip(frame["text"], frame["kept"])]

    return clean
