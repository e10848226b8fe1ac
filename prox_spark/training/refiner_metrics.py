"""The refining models' metrics (prox-reference.md §4.3, paper A.3), on programs as text.

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

Used both while training (``prox_spark.training.sft`` scores its validation decodes) and on exported
models (``prox_spark.training.evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prox_spark.programs import RemoveAllLines, RemoveLines, execute, parse
from prox_spark.prompts import Kind


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
