"""Raw vs rules vs ProX: refine one corpus four ways, pre-train the same model on each, compare.

    python -m jobs.compare --conf conf/compare_local.yaml [key.sub=value ...]      (make compare)

Steps, all under ``out_dir``:

1. ``corpus/`` + ``held_out.jsonl`` from the shared data (``prox_spark.comparison.build_corpus``: noisy pages,
   WARC-extracted pages, DCLM documents; ``write_held_out``: human gold main text of pages outside the corpus
   and outside every bundled model's training data, or the JSONL ``heldout.path`` names).
2. ``<variant>/`` Delta tables: ``raw`` is the corpus as read (one kept row per document), the others are the
   refine job (``jobs.refine``) with ``pipeline.mode`` rules / prox-doc / prox and the refine config's models.
3. ``<variant>/pretrain/``: ``jobs.pretrain``'s loop on that table with the same model, seed and schedule
   and the same number of steps, i.e. an equal token budget (a variant with fewer tokens repeats epochs),
   the same tokenizer (trained on ``raw``), evaluated on the held-out texts.
4. ``comparison.{md,json}`` and ``loss_curves.png`` (``prox_spark.comparison.write_report``).

Each variant's folder is rebuilt from scratch on every run, so the table never mixes runs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.comparison import (
    VARIANTS, VariantResult, build_corpus, corpus_gold, main_text, shuffle_windows, write_held_out, write_report,
)
from prox_spark.training.seed_sources import read_jsonl_dicts
from prox_spark.config import ConfigError, build, load_config
from prox_spark.inference.manifest import ModelLoadError

if TYPE_CHECKING:
    from prox_spark.pretrain.settings import PretrainConfig

log = logging.getLogger("prox_spark.compare")

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CorpusSettings:
    #: the shared real-data folder (read in place)
    shared_data: str = str(REPO_ROOT.parent / "shared" / "data")
    #: noisy pages from the cleaning set (0: every page outside the held-out split)
    max_pages: int = 0
    #: DCLM documents (0: all 399)
    max_dclm: int = 0
    warc_pages: bool = True
    #: ISO 639-1 codes a document must be detected as (``prox_spark.language``); the held-out set's language,
    #: so no variant wins by dropping what the held-out texts lack. []: every language
    languages: tuple[str, ...] = ("en",)


@dataclass(frozen=True)
class HeldoutSettings:
    #: JSONL of held-out clean texts (``gold_text`` or ``text`` per record); empty: the human gold main text
    #: of the evaluation-only cleaning sets (``prox_spark.comparison.HELD_OUT_SETS``)
    path: str = ""


@dataclass(frozen=True)
class CompareConfig:
    out_dir: str = "out/compare"
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    heldout: HeldoutSettings = field(default_factory=HeldoutSettings)
    #: refine job config (models, serving settings); input/output/mode/run_id are set per variant
    refine_conf: str = "conf/local.yaml"
    #: extra refine overrides as a mapping of dotted keys (e.g. {"models.doc.batch_size": 32})
    refine: dict = field(default_factory=dict)
    #: a ``prox_spark.pretrain.settings.PretrainConfig`` mapping shared by all variants; out_dir, data.table,
    #: data.tokenizer and eval.path are set per variant
    pretrain: dict = field(default_factory=dict)


def _run_id(mode: str | None) -> str:
    """The run id of a variant's rows (``compare-raw`` for the unrefined table): pre-training reads that run."""
    return f"compare-{mode or 'raw'}"


def _variant_config(cfg: CompareConfig, corpus: Path, out: Path, mode: str):
    """The refine job's config for one variant: the shared refine settings plus its input, output and mode."""
    overrides = [f"{key}={value}" for key, value in cfg.refine.items()]
    overrides += [f"input.path={corpus}", f"output.path={out}", f"pipeline.mode={mode}", f"run_id={_run_id(mode)}"]
    return load_config(cfg.refine_conf, overrides)


def _preflight_variants(cfg: CompareConfig, corpus: Path, out_dir: Path) -> dict:
    """Every refine variant's config, checked (models, input, output) before the first one runs: a bad model
    path fails in seconds instead of after the raw and rules variants have trained. The corpus is a local
    folder this job has just written, so listing it needs no Spark session."""
    checked = {}
    for name, mode in VARIANTS.items():
        if mode is not None:
            config = _variant_config(cfg, corpus, out_dir / name, mode)
            checked[name] = (config, preflight(config))
    return checked


def _write_raw(spark, corpus: Path, out: Path) -> int:
    """The unrefined variant: every corpus document as a kept row of a Delta table (``doc_id``, ``text``,
    ``kept``, and ``run_id`` as a refine run's rows carry them)."""
    from pyspark.sql import functions as F

    docs = spark.read.json(str(corpus)).select(F.col("id").alias("doc_id"), "text").where(F.length(F.trim("text")) > 0)
    docs.withColumn("kept", F.lit(True)).withColumn("run_id", F.lit(_run_id(None))).write.format("delta").mode("overwrite").save(str(out / "refined"))
    return docs.count()


def _kept_texts(table: Path) -> dict[str, str]:
    """Document id → text of a refined table's latest version, for the rows pre-training reads (kept, not empty)."""
    from deltalake import DeltaTable

    frame = DeltaTable(str(table)).to_pandas(columns=["doc_id", "text", "kept"])
    return {i: t for i, t, k in zip(frame["doc_id"], frame["text"], frame["kept"]) if k and isinstance(t, str) and t}


def _kept_tokens(kept: dict[str, str], tokenizer_path: Path) -> tuple[int, int]:
    """(kept documents, their tokens + one EOS each), as pre-training sees them."""
    from prox_spark.models import load_tokenizer

    texts = list(kept.values())
    tokenizer = load_tokenizer(str(tokenizer_path))
    return len(texts), sum(len(enc.ids) + 1 for enc in tokenizer.encode_batch(texts, add_special_tokens=False))


def _pretrain_config(
    cfg: CompareConfig, table: Path, out: Path, tokenizer: Path, held_out: Path, first: bool, run_id: str
) -> PretrainConfig:
    """The shared ``pretrain`` mapping, pointed at one variant's table and output folder."""
    from prox_spark.pretrain.settings import PretrainConfig

    raw = {key: dict(value) if isinstance(value, dict) else value for key, value in cfg.pretrain.items()}
    raw["out_dir"] = str(out)
    raw.setdefault("data", {}).update(table=str(table / "refined"), tokenizer=str(tokenizer), version=-1, run_id=run_id)
    if not first:  # the tokenizer trained on the raw variant serves every variant
        raw["data"]["tokenizer_train_vocab"] = 0
    raw.setdefault("eval", {})["path"] = str(held_out)
    raw.setdefault("checkpoint", {}).update(resume=False)
    return build(PretrainConfig, raw, "pretrain")


def run_compare(cfg: CompareConfig, spark=None) -> dict[str, Path]:
    """Run every variant and write the report; returns the report's paths."""
    out_dir = Path(cfg.out_dir).resolve()
    corpus_dir, held_out = out_dir / "corpus", out_dir / "held_out.jsonl"
    counts = build_corpus(cfg.corpus.shared_data, corpus_dir, max_pages=cfg.corpus.max_pages,
                          max_dclm=cfg.corpus.max_dclm, warc_pages=cfg.corpus.warc_pages,
                          languages=cfg.corpus.languages)
    held_out_count, held_out_source = write_held_out(cfg.corpus.shared_data, held_out, cfg.heldout.path)
    log.info("corpus: %s; held out: %d texts", counts, held_out_count)
    gold = corpus_gold(cfg.corpus.shared_data, (row["id"] for row in read_jsonl_dicts(corpus_dir / "pages.jsonl")))
    refine_variants = _preflight_variants(cfg, corpus_dir, out_dir)
    if spark is None:
        from prox_spark.udfs.session import get_session

        session = load_config(cfg.refine_conf, [f"{k}={v}" for k, v in cfg.refine.items()]).spark
        spark = get_session("prox-spark-compare", master=session.master,
                            shuffle_partitions=session.shuffle_partitions, extra_conf=session.conf)
    tokenizer = out_dir / "tokenizer.json"
    tokenizer.unlink(missing_ok=True)
    results, parameters = [], None
    for name, mode in VARIANTS.items():
        folder = out_dir / name
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        if mode is None:
            docs_in = _write_raw(spark, corpus_dir, folder)
        else:
            summary = run_refine(spark, *refine_variants[name])
            if summary.quarantined:
                log.warning("%s: %d records quarantined: %s", name, summary.quarantined, summary.quarantine_reasons)
            docs_in = summary.kept + summary.dropped
        refine_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        kept_texts = _kept_texts(folder / "refined")
        # raw comes first and trains the tokenizer; a later variant that kept nothing cannot be trained on
        kept = _kept_tokens(kept_texts, tokenizer) if tokenizer.exists() else None
        metrics = {}
        pretrain = _pretrain_config(cfg, folder, folder / "pretrain", tokenizer, held_out, first=mode is None,
                                    run_id=_run_id(mode))
        if kept is None or kept[1]:
            from prox_spark.pretrain.train import train

            metrics = train(pretrain).metrics
        else:
            log.warning("%s kept no text: not trained, no perplexity", name)
        train_seconds = time.perf_counter() - t0
        docs_kept, tokens_kept = kept or _kept_tokens(kept_texts, tokenizer)
        windows = shuffle_windows(tokens_kept, pretrain.data.block_size, pretrain.data.shuffle_buffer)
        if windows > 1:
            log.warning("%s: one pass fills %d shuffle windows of %d blocks: the seeded file order decides which "
                        "documents a part-epoch sees and which come last; raise pretrain.data.shuffle_buffer "
                        "to at least %d blocks", name, windows, pretrain.data.shuffle_buffer,
                        tokens_kept // (pretrain.data.block_size + 1))
        curve = metrics.get("loss_curve", [])
        results.append(VariantResult(
            name=name, mode=mode, docs_in=docs_in, docs_kept=docs_kept, tokens_kept=tokens_kept,
            tokens_trained=int(metrics.get("tokens_seen", 0)),
            epochs=metrics["tokens_seen"] / tokens_kept if metrics else 0.0,
            held_out_ppl=metrics.get("final_eval_ppl"), final_train_loss=curve[-1]["loss"] if curve else None,
            loss_curve=curve, refine_seconds=round(refine_seconds, 1), train_seconds=round(train_seconds, 1),
            shuffle_windows=windows, main_text=main_text(kept_texts, gold),
        ))
        parameters = metrics.get("parameters", parameters)
        log.info("%s: %s", name, results[-1].__dict__ | {"loss_curve": "..."})
    meta = {
        "token_budget": results[0].tokens_trained,
        "gold_pages": f"{len(gold)} corpus pages with human gold main text (the main-text columns)",
        "corpus": counts.__dict__ | {"documents": counts.documents},
        "held_out": f"{held_out_count} texts ({held_out.name}): {held_out_source}",
        "parameters": parameters,
        "refine_conf": cfg.refine_conf,
        "refine_overrides": cfg.refine,
        "pretrain": cfg.pretrain,
    }
    return write_report(results, out_dir, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--conf", required=True, help="YAML config (conf/compare_local.yaml)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. pretrain.train.max_steps=20")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stdout)
    try:
        cfg = load_config(args.conf, args.overrides, cls=CompareConfig)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        paths = run_compare(cfg)
    except (ConfigError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(paths["md"].read_text(encoding="utf-8"))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
