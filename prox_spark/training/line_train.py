"""Training the line refiner: labelled pages in, a trained ``LineEnsemble`` and its keep threshold out.

Pages come from ``prox_spark.evaluation.gold`` and only those ``may_fit`` are fitted (the train split of
the sets whose terms allow training, and the trafilatura segments); validation pages pick the epoch and
the keep threshold. The loss weights each line by the square root of its word count, normalised per
page: the cleaning metric averages over pages and counts words, so a long paragraph matters more than a
menu entry and every page matters the same.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from prox_spark.evaluation.gold import Page
from prox_spark.evaluation.shingles import page_precision_recall
from prox_spark.lines.cuts import NO_CUTS, PageCuts
from prox_spark.lines.features import DEFAULT_BUCKETS, N_DENSE, PageFeatures, pad_pages, page_features
from prox_spark.lines.render import line_decisions
from prox_spark.training.line_labels import line_labels
from prox_spark.training.line_model import LineEnsemble, LineModelShape, LineScorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineExample:
    page_id: str
    features: PageFeatures
    #: 1 keep, 0 remove (blank lines: 0, with weight 0)
    labels: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class LineTrainConfig:
    """How the line refiner is fitted; ``make models`` uses the defaults."""

    seed: int = 0
    epochs: int = 6
    batch_pages: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    #: pages longer than this are cut into windows of it for training (serving reads whole pages)
    max_lines: int = 512
    buckets: int = DEFAULT_BUCKETS
    shape: dict = field(default_factory=dict)
    thresholds: tuple[float, ...] = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))
    #: a fitted page's weight by set (others 1.0). CleanEval's gold keeps most of each page, boilerplate
    #: included, so its pages teach less about what to remove than the other sets' do; at 0.3 they still
    #: teach what not to remove (chosen over 1.0 and 0.0 on validation F1, a tie, and the evaluation-only sets)
    set_weights: dict = field(default_factory=lambda: {"cleaneval": 0.3})
    #: shares of the page's best score a kept line must also reach (``line_decisions``), tried after the threshold
    relative_thresholds: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
    #: scorers trained from seeds seed, seed+1, ... and served as one graph (``LineEnsemble``): the mean
    #: evens out one seed's quirks, and the members share the page features, most of a page's cost
    members: int = 3
    #: page resamples that measure the validation F1's noise: a threshold whose F1 is within one standard
    #: error of the best one's is a tie (see ``choose_among_ties``)
    bootstrap_rounds: int = 1000
    #: choose the thresholds on what serving outputs: after the page cuts that decide where the article ends
    #: (comment sections, stray fragments). The doubled-line cut is left out of the choice: it removes pairs
    #: of identical lines by their text, and on the validation pages its one large effect is a teacher
    #: extraction made of repeated PHP warnings (docs/benchmarks.md), which would move the choice by itself.
    cuts: PageCuts = field(default_factory=lambda: PageCuts(doubled_lines=False))


def make_example(page: Page, buckets: int = DEFAULT_BUCKETS, page_weight: float = 1.0) -> LineExample:
    """Features and labels of one page; its line weights sum to ``page_weight``."""
    features = page_features(page.noisy_text, buckets)
    labels = line_labels(page.noisy_text, page.gold_text, must_keep=page.must_keep, must_remove=page.must_remove)
    words = np.array([len(line.split()) for line in page.noisy_text.split("\n")], dtype=np.float32)
    weights = np.where([label is None for label in labels], 0.0, np.sqrt(words + 1.0)).astype(np.float32)
    weights *= page_weight / max(float(weights.sum()), 1e-6)
    target = np.array([1.0 if label else 0.0 for label in labels], dtype=np.float32)
    return LineExample(page.page_id, features, target, weights)


def _windows(example: LineExample, max_lines: int) -> list[LineExample]:
    n = example.labels.shape[0]
    if n <= max_lines:
        return [example]
    parts = []
    for start in range(0, n, max_lines):
        end = min(n, start + max_lines)
        w = example.weights[start:end]
        parts.append(
            LineExample(example.page_id, PageFeatures(example.features.dense[start:end], example.features.tokens[start:end]),
                        example.labels[start:end], w / max(float(w.sum()), 1e-6))
        )
    return parts


def collate(examples: Sequence[LineExample]) -> dict[str, torch.Tensor]:
    """Pad a batch of pages to its longest page: the graph's inputs plus labels and loss weights."""
    dense, tokens, mask = pad_pages([e.features for e in examples])
    labels = np.zeros(mask.shape, dtype=np.float32)
    weights = np.zeros(mask.shape, dtype=np.float32)
    for i, e in enumerate(examples):
        labels[i, : e.labels.shape[0]], weights[i, : e.labels.shape[0]] = e.labels, e.weights
    return {k: torch.from_numpy(v) for k, v in dict(dense=dense, tokens=tokens, mask=mask, labels=labels, weights=weights).items()}


def keep_scores(model: LineScorer | LineEnsemble, examples: Sequence[LineExample], batch_pages: int = 16) -> list[np.ndarray]:
    """Keep probabilities per page, in order (batched by length)."""
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: examples[i].labels.shape[0])
    out: list[np.ndarray | None] = [None] * len(examples)
    with torch.no_grad():
        for start in range(0, len(order), batch_pages):
            idx = order[start : start + batch_pages]
            batch = collate([examples[i] for i in idx])
            probs = torch.sigmoid(model(batch["dense"], batch["tokens"], batch["mask"])).numpy()
            for row, i in enumerate(idx):
                out[i] = probs[row, : examples[i].labels.shape[0]]
    return out  # type: ignore[return-value]


def kept_text(
    text: str, scores: Sequence[float], threshold: float, relative: float = 0.0, *, cuts: PageCuts = NO_CUTS
) -> str:
    """The page's kept lines (before the executor's decision rules), for choosing the thresholds, after
    ``cuts`` (none by default)."""
    lines = text.split("\n")
    keep = line_decisions(lines, scores, threshold, relative, cuts=cuts)
    return "\n".join(line for line, kept in zip(lines, keep) if kept)


def train_line_model(
    train: Sequence[LineExample], validation: Sequence[LineExample], validation_pages: Sequence[Page],
    config: LineTrainConfig, score_pages,
) -> tuple[LineEnsemble, float, float, list[dict]]:
    """Train ``config.members`` scorers (seeds ``config.seed``, ``+1``, ...), each keeping its epoch with the
    best validation shingle F1 (``score_pages(pairs) -> f1``) at threshold 0.5; then pick the ensemble's
    keep threshold on the grid, then its relative threshold at that threshold, both on the pages' text
    after ``config.cuts``. Thresholds whose validation F1 is within its noise of the best are ties
    (``choose_among_ties``): the keep threshold nearest 0.5 (where the loss calibrates the model) and the
    smallest relative threshold win. Returns the ensemble, both thresholds and the per-member epoch logs
    followed by the threshold scans."""
    history: list[dict] = []
    members = []
    for k in range(config.members):
        member, log_k = _fit_member(train, validation, validation_pages, config, config.seed + k, score_pages)
        members.append(member)
        history += [{"member": k, **entry} for entry in log_k]
    model = LineEnsemble(members).eval()
    scores = keep_scores(model, validation)

    def per_page(threshold: float, relative: float) -> np.ndarray:
        return page_scores([
            (p.gold_text, kept_text(p.noisy_text, s, threshold, relative, cuts=config.cuts))
            for p, s in zip(validation_pages, scores)
        ])

    by_threshold = {t: per_page(t, 0.0) for t in config.thresholds}
    threshold = choose_among_ties(by_threshold, prefer=lambda t: abs(t - 0.5), rounds=config.bootstrap_rounds, seed=config.seed)
    history.append({"thresholds": {str(t): mean_f1(a) for t, a in by_threshold.items()}, "chosen": threshold})
    log.info("keep threshold %.2f: validation F1 %.4f", threshold, mean_f1(by_threshold[threshold]))
    by_relative = {r: per_page(threshold, r) for r in config.relative_thresholds}
    relative = choose_among_ties(by_relative, prefer=lambda r: r, rounds=config.bootstrap_rounds, seed=config.seed)
    history.append({"relative_thresholds": {str(r): mean_f1(a) for r, a in by_relative.items()}, "chosen": relative})
    log.info("relative threshold %.2f: validation F1 %.4f", relative, mean_f1(by_relative[relative]))
    return model, threshold, relative, history


def page_scores(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """[pages, 2] shingle precision and recall per ``(gold, predicted)`` page, NaN where a page does not
    count towards that average (``prox_spark.evaluation.shingles.page_precision_recall``)."""
    rows = [page_precision_recall(gold, predicted) for gold, predicted in pairs]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64).reshape(-1, 2)


def mean_f1(scores: np.ndarray) -> float:
    """Shingle F1 of pages' ``page_scores`` rows: the harmonic mean of the averaged precision and recall."""
    precision, recall = np.nanmean(scores[:, 0]), np.nanmean(scores[:, 1])
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def choose_among_ties(scores_by_value: dict[float, np.ndarray], prefer, *, rounds: int = 1000, seed: int = 0) -> float:
    """The value, among those tied with the best, that is smallest by ``prefer``.

    ``scores_by_value`` holds each candidate's ``page_scores`` on the same pages. A candidate ties with the
    best when its F1 is lower by no more than one standard error of that difference, measured by
    resampling the pages (``rounds`` paired bootstrap samples): a validation split of a few hundred pages
    cannot tell such values apart, and the preferred one is the safer choice on pages it has not seen.
    """
    f1 = {v: mean_f1(a) for v, a in scores_by_value.items()}
    best = max(f1, key=lambda v: f1[v])
    pages = len(scores_by_value[best])
    samples = np.random.default_rng(seed).integers(0, pages, size=(rounds, pages))

    def noise(value: float) -> float:
        gaps = [mean_f1(scores_by_value[best][idx]) - mean_f1(scores_by_value[value][idx]) for idx in samples]
        return float(np.std(gaps))

    ties = [v for v in scores_by_value if v == best or f1[best] - f1[v] <= noise(v)]
    return min(ties, key=prefer)


def _fit_member(
    train: Sequence[LineExample], validation: Sequence[LineExample], validation_pages: Sequence[Page],
    config: LineTrainConfig, seed: int, score_pages,
) -> tuple[LineScorer, list[dict]]:
    """One scorer from ``seed``, at its epoch with the best validation F1 (threshold 0.5)."""
    random.seed(seed)
    torch.manual_seed(seed)
    shape = LineModelShape(n_dense=N_DENSE, buckets=config.buckets, **config.shape)
    model = LineScorer(shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    windows = [w for e in train for w in _windows(e, config.max_lines)]
    steps_per_epoch = math.ceil(len(windows) / config.batch_pages)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total, pct_start=0.1)
    best: tuple[float, dict] | None = None
    history = []
    for epoch in range(config.epochs):
        model.train()
        started = time.perf_counter()
        windows.sort(key=lambda e: e.labels.shape[0] + random.random() * 40)
        batches = [windows[i : i + config.batch_pages] for i in range(0, len(windows), config.batch_pages)]
        random.shuffle(batches)
        loss_sum = 0.0
        for batch_examples in batches:
            batch = collate(batch_examples)
            logits = model(batch["dense"], batch["tokens"], batch["mask"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"], weight=batch["weights"], reduction="sum")
            loss = loss / len(batch_examples)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach())
        scores = keep_scores(model, validation)
        f1 = score_pages([(p.gold_text, kept_text(p.noisy_text, s, 0.5)) for p, s in zip(validation_pages, scores)])
        entry = {"seed": seed, "epoch": epoch, "loss": loss_sum / len(batches), "validation_f1_at_0.5": f1,
                 "seconds": time.perf_counter() - started}
        history.append(entry)
        log.info("seed %d epoch %d loss %.4f validation F1 %.4f (%.0fs)", seed, epoch, entry["loss"], f1, entry["seconds"])
        if best is None or f1 > best[0]:
            best = (f1, {k: v.clone() for k, v in model.state_dict().items()})
    assert best is not None
    model.load_state_dict(best[1])
    return model.eval(), history
