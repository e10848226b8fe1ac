"""The cleaning report as markdown and JSON: one table per metric, rows = variants, columns = sets.

Takes ``prox_spark.evaluation.harness.evaluate``'s dict plus the run's context (``generated_at``,
``command``, ``data_dir``, ``max_pages``, ``machine``) and writes ``<out>/cleaning.md`` and
``<out>/cleaning.json`` with the same numbers, so a reader and a script see one result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prox_spark.evaluation.gold import TRAFILATURA_SET
from prox_spark.evaluation.harness import RULES_VARIANT
from prox_spark.pipeline.stages import STAGE_ORDER, model_stages

REPORT_STEM = "cleaning"
ALL_SETS = "all"


def speed_by_set(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Pages/s per variant and set, plus ``all``: every page over the summed seconds."""
    speeds = {}
    for variant, per_set in report["results"].items():
        row = {s: score["pages_per_s"] for s, score in per_set.items()}
        seconds = sum(score["seconds"] for score in per_set.values())
        row[ALL_SETS] = sum(score["pages"] for score in per_set.values()) / seconds if seconds > 0 else 0.0
        speeds[variant] = row
    return speeds


def render_markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables (see the module docstring)."""
    sets = list(report["sets"])
    results = report["results"]
    lines = ["# Cleaning evaluation", ""]
    context = [
        f"`{report['command']}`" if report.get("command") else "",
        f"generated {report['generated_at']}" if report.get("generated_at") else "",
        f"data `{report['data_dir']}`" if report.get("data_dir") else "",
        f"at most {report['max_pages']} pages per set" if report.get("max_pages") else "",
    ]
    if any(context):
        lines += ["; ".join(c for c in context if c) + ".", ""]
    lines += [
        "Report pages only (`test` split, `prox_spark.evaluation.gold`). Shingle F1 / precision / recall as the "
        "article-extraction benchmark defines them (`prox_spark.evaluation.shingles`); a dropped page outputs \"\". "
        "Speed is wall clock of the cleaner alone (model loading and scoring excluded) in one process"
        + (f" on {report['machine']}" if report.get("machine") else "")
        + ": compare it only within this report.",
        "",
        _table(["set", *sets], [["report pages", *(str(report["sets"][s]) for s in sets)]]),
        "",
        "## Variants",
        "",
        _table(["variant", "what"], [[name, _describe(d)] for name, d in report["variants"].items()]),
    ]
    for title, field in (("Shingle F1", "f1"), ("Shingle precision", "precision"), ("Shingle recall", "recall")):
        rows = [[name, *(f"{per_set[s][field]:.3f}" for s in sets)] for name, per_set in results.items()]
        lines += ["", f"## {title}", "", _table(["variant", *sets], rows)]
    rows = [[name, *(f"{per_set[s]['dropped']}/{per_set[s]['pages']}" for s in sets)] for name, per_set in results.items()]
    lines += ["", "## Pages dropped (final text empty)", "", _table(["variant", *sets], rows)]
    if TRAFILATURA_SET in sets:
        rows = [
            [name, _rate(per_set[TRAFILATURA_SET], "must_keep"), _rate(per_set[TRAFILATURA_SET], "must_remove")]
            for name, per_set in results.items()
        ]
        lines += [
            "", f"## Snippets ({TRAFILATURA_SET} set; only snippets verbatim in the page count)", "",
            _table(["variant", "must-keep retained", "must-remove removed"], rows),
        ]
    speeds = speed_by_set(report)
    columns = [*sets, ALL_SETS]
    rows = [[name, *(_number(row[s]) for s in columns)] for name, row in speeds.items()]
    lines += ["", "## Pages per second", "", _table(["variant", *columns], rows)]
    if RULES_VARIANT in speeds:
        base = speeds[RULES_VARIANT]
        rows = [
            [name, *(f"{_number(row[s] / base[s])}×" if base[s] else "-" for s in columns)] for name, row in speeds.items()
        ]
        lines += ["", f"## Pages per second ÷ the `{RULES_VARIANT}` variant's", "", _table(["variant", *columns], rows)]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``cleaning.md`` and ``cleaning.json`` into ``out_dir`` (created); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"{REPORT_STEM}.md", out / f"{REPORT_STEM}.json"
    md.write_text(render_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]
    )


def _number(value: float) -> str:
    """Three significant digits without an exponent (a plain function runs 10^6 pages/s, a model 10)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _rate(score: dict[str, Any], field: str) -> str:
    counted, total = score[field]
    return f"{counted / total:.3f} ({counted}/{total})" if total else "-"


def _describe(described: dict[str, Any]) -> str:
    """One line per variant: the function, or the config's mode, models and the settings that matter."""
    if described["kind"] == "function":
        return f"function `{described['function']}`"
    parts = [f"pipeline.mode={described['pipeline_mode']}"]
    if "rules_preset" in described:
        parts.append(f"rules.preset={described['rules_preset']}")
    for stage in (s.name for s in model_stages(STAGE_ORDER)):
        if f"{stage}_model" in described:
            model = described[f"{stage}_model"]
            parts.append(f"{stage} model {model['id']} (`{model['path']}`)")
    settings = (
        "doc_mode", "doc_guard_words", "max_chunk_tokens", "clip_chunk_programs", "drop_comment_sections",
        "drop_doubled_lines", "drop_stray_fragments", "provider",
    )
    parts += [f"{key}={described[key]}" for key in settings if key in described]
    return ", ".join(parts)
