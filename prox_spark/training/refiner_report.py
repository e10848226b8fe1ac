"""The refiner evaluation report: ``write_report(report, path_stem)`` writes ``<stem>.json`` (everything) and
``<stem>.md`` (the tables a reader wants), from the dict ``jobs/evaluate_refiner.py`` assembles out of
``prox_spark.training.evaluate``'s results.

The cleaning evaluation of whole pipelines has its own report, ``prox_spark.evaluation.report``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
