"""Build the SFT seed data: chunk programs derived from the shared cleaning pages, doc labels, splits.

    python -m jobs.build_seed --out out/seed --tokenizer out/models/tokenizer/tokenizer.json \\
        [--data-dir ../shared/data] [--train-tokenizer-vocab 4096] [--chunk-max-tokens 384] \\
        [--reference trafilatura] [--no-normalize] [--doc-labels my_labels.jsonl ...]

Writes ``doc.jsonl``, ``chunk.jsonl`` (one record per example: id, kind, split, input, prompt, target,
meta), ``doc_cleaning.jsonl`` (train-split cleaning pages as keep_doc(), for the doc config's
``extra_train_file``) and ``stats.json`` under ``--out``. Chunk boundaries depend on the tokenizer, so the chunk model
must be trained and served with the same ``tokenizer.json`` and chunk budget. With
``--train-tokenizer-vocab N`` and no tokenizer at ``--tokenizer``, one is trained on the shared texts
first (deterministic: the same data gives the same file). See ``prox_spark.training.seed``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from prox_spark.chunking import token_counter
from prox_spark.models import load_tokenizer, save_tokenizer, train_tokenizer, training_texts
from prox_spark.training.seed import build_seed

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="shared data folder (read in place)")
    parser.add_argument("--out", required=True, help="output folder for doc.jsonl, chunk.jsonl, stats.json")
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json (or its folder)")
    parser.add_argument("--train-tokenizer-vocab", type=int, default=0, help="train a tokenizer of this size if --tokenizer is absent")
    parser.add_argument("--chunk-max-tokens", type=int, default=384)
    parser.add_argument("--reference", default="trafilatura", choices=["trafilatura", "trafilatura_precision", "resiliparse", "heuristic"])
    parser.add_argument("--no-normalize", action="store_true", help="derive programs with remove_lines only")
    parser.add_argument("--no-dclm", action="store_true", help="leave the shared DCLM labels out of doc.jsonl")
    parser.add_argument("--doc-labels", nargs="*", default=[], help="extra JSONL files of {text, label[, id]}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"error: shared data folder {data_dir} not found (--data-dir)", file=sys.stderr)
        return 2
    tokenizer_path = Path(args.tokenizer)
    if tokenizer_path.suffix != ".json":
        tokenizer_path = tokenizer_path / "tokenizer.json"
    if not tokenizer_path.is_file():
        if not args.train_tokenizer_vocab:
            print(f"error: {tokenizer_path} not found; pass --train-tokenizer-vocab N to train one", file=sys.stderr)
            return 2
        started = time.perf_counter()
        tokenizer = train_tokenizer(training_texts(data_dir), args.train_tokenizer_vocab)
        save_tokenizer(tokenizer, tokenizer_path.parent)
        logging.info("trained a %d-token tokenizer in %.1f s -> %s", tokenizer.get_vocab_size(), time.perf_counter() - started, tokenizer_path)
    tokenizer = load_tokenizer(tokenizer_path)

    started = time.perf_counter()
    stats = build_seed(
        data_dir,
        args.out,
        token_counter(tokenizer),
        max_chunk_tokens=args.chunk_max_tokens,
        reference=args.reference,
        extra_doc_labels=args.doc_labels,
        include_dclm=not args.no_dclm,
        allow_normalize=not args.no_normalize,
    )
    summary = {k: v for k, v in stats.__dict__.items() if k != "failures"}
    print(json.dumps(summary, indent=2))
    print(f"seed data in {args.out} ({time.perf_counter() - started:.1f} s); pages failing verification: {stats.pages_failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
