"""What the doc stage's main-text guard (``models.doc_guard_words``) costs in quality judgement, and what it saves.

The guard keeps a page the doc model drops when the line refiner keeps enough of its words. It must not
turn the doc model's correct drops of low-quality documents into keeps, so this scores the doc stage's
decisions with the guard off and on, side by side, on the held-out DCLM human labels (doc F1, keep =
positive, the split the doc model never trained on) and counts the real articles it drops on each
human-gold set (every gold page is a keep).

    python -m benchmarks.doc_guard [--conf conf/local.yaml] [--words 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prox_spark.clean import load_models
from prox_spark.config import DEFAULT_DOC_GUARD_WORDS, load_config
from prox_spark.evaluation.harness import report_pages
from prox_spark.pipeline import settings_of, write_doc_programs
from prox_spark.pipeline.model_stages import DOC_CHOICES, spare_main_text_pages
from prox_spark.training.seed import doc_examples
from prox_spark.training.seed_sources import read_jsonl_dicts

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DCLM = "quality/dclm_human_labels.jsonl"


def doc_f1(kept: list[bool], gold: list[bool]) -> float:
    tp = sum(k and g for k, g in zip(kept, gold))
    wrong = sum(k != g for k, g in zip(kept, gold))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--words", type=int, default=DEFAULT_DOC_GUARD_WORDS, help="models.doc_guard_words to score")
    parser.add_argument("--data-dir", default=str(SHARED))
    args = parser.parse_args(argv)
    config = load_config(args.conf)
    models = load_models(config)
    doc_model, line_refiner = models["doc"], models["chunk"]
    settings = settings_of(config)

    def keeps(texts: list[str]) -> tuple[list[bool], list[bool]]:
        programs = write_doc_programs(doc_model, texts, mode=settings.doc_mode, batch_size=settings.doc_batch_size)
        guarded = spare_main_text_pages(
            programs, texts, line_refiner, args.words, cuts=settings.page_cuts
        )
        return [p.program != DOC_CHOICES[1] for p in programs], [p.program != DOC_CHOICES[1] for p in guarded]

    print(f"doc model {doc_model.model_id}, line refiner {line_refiner.model_id}, doc_guard_words {args.words}\n")
    print("| held-out DCLM labels | documents | doc F1, guard off | doc F1, guard on |\n|---|---|---|---|")
    examples = list(doc_examples(read_jsonl_dicts(Path(args.data_dir) / DCLM), source="dclm"))
    for split in ("validation", "test"):
        chosen = [e for e in examples if e.split == split]
        gold = [e.target == DOC_CHOICES[0] for e in chosen]
        off, on = keeps([e.input for e in chosen])
        print(f"| {split} | {len(chosen)} | {doc_f1(off, gold):.3f} | {doc_f1(on, gold):.3f} |")
    print("\n| gold set (report pages, all real articles) | pages | dropped, guard off | dropped, guard on |\n|---|---|---|---|")
    for set_name, pages in report_pages(args.data_dir).items():
        off, on = keeps([p.noisy_text for p in pages])
        print(f"| {set_name} | {len(pages)} | {off.count(False)} | {on.count(False)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
