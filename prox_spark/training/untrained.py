"""Untrained (random-weight) refining models with a real tokenizer, exported like trained ones.

They exercise every part of the serving path (tokenizer, prompts, ONNX session, decoding, chunking,
executor, Spark UDFs) in seconds, so tests and benchmarks do not depend on a training run. Their
programs are arbitrary: the executor's rules decide what such output does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

from prox_spark.models import TOKENIZER_FILE, build_model, llama_config, save_tokenizer, train_tokenizer
from prox_spark.training.export import export_model


def build_untrained_refiners(
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    shape: str = "tiny",
    vocab_size: int = 512,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_new_tokens: int = 24,
) -> dict[str, Path]:
    """Train a tokenizer on ``texts``, build random doc and chunk models of ``shape``, export both.

    Returns ``{"doc": dir, "chunk": dir}`` under ``out_dir`` (each a verified model directory).
    """
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size)
    dirs = {}
    for offset, kind in enumerate(("doc", "chunk")):
        with tempfile.TemporaryDirectory() as hf_dir:
            config = llama_config(shape, tokenizer=tokenizer, max_position_embeddings=max_prompt_tokens + max_new_tokens + 8)
            build_model(config, seed=seed + offset).save_pretrained(hf_dir)
            save_tokenizer(tokenizer, hf_dir)
            target = out_dir / kind
            export_model(
                hf_dir,
                target,
                model_id=f"untrained-{shape}-{kind}-seed{seed + offset}",
                kind=kind,
                tokenizer_file=TOKENIZER_FILE,
                prompt_template="compact",
                max_prompt_tokens=max_prompt_tokens,
                max_new_tokens=max_new_tokens,
            )
            dirs[kind] = target
    return dirs


def main(argv: list[str] | None = None) -> int:
    """``python -m prox_spark.training.untrained OUT_DIR``: untrained models from the bundled sample corpus."""
    import argparse
    import json
    from importlib import resources

    parser = argparse.ArgumentParser(description="Build random-weight tiny doc and chunk models (serving-path fixtures).")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-prompt-tokens", type=int, default=512,
                        help="the models' prompt budget (tests/conftest.py's fixture models: 192)")
    args = parser.parse_args(argv)
    sample = resources.files("prox_spark.resources").joinpath("sample_corpus.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in sample.splitlines() if line.strip()]
    built = build_untrained_refiners(args.out_dir, texts * 4, seed=args.seed, max_prompt_tokens=args.max_prompt_tokens)
    for kind, path in built.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
