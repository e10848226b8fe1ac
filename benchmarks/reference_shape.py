"""The released ProX-xs refiners' shape (0.3B) through the project's export and runtime: it exports, loads and runs.

Builds ``llama_config("prox_xs_0_3b")`` (hidden 1280, 24 layers, 16 heads, 1 KV head, vocabulary 32000,
354.3M parameters) with random weights, exports it with ``export_model`` (fp32, last-position logits),
loads it with ``load_model`` and runs one batch through ``GreedyDecoder``; the tokens are compared with
transformers ``generate`` on the same weights. A released checkpoint converted to transformers format goes
through exactly these calls, so this shows such a model would load and run once exported.

The tokenizer is a stand-in (a 32000-entry word-level table: the export copies a tokenizer file, the run
feeds token ids); the released models use the Llama-2 tokenizer. Needs about 8 GB of free memory and 4 GB
of disk for a few minutes; everything is written into a temporary directory that is removed afterwards.

    python -m benchmarks.reference_shape [--prompts 2] [--prompt-tokens 64] [--new-tokens 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: peak resident memory of this script was 6.3 GB here (the optimum export holds the model more than once)
MIN_AVAILABLE_GB = 8.0


def available_memory_gb() -> float:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op and torch threads")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this path")
    parser.add_argument("--force", action="store_true", help=f"run even with less than {MIN_AVAILABLE_GB} GB available")
    args = parser.parse_args(argv)

    free_gb = available_memory_gb()
    disk_gb = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    print(f"memory available {free_gb:.1f} GB, free disk in {tempfile.gettempdir()} {disk_gb:.0f} GB, 1-min load {os.getloadavg()[0]:.2f}")
    if free_gb < MIN_AVAILABLE_GB and not args.force:
        raise SystemExit(f"only {free_gb:.1f} GB memory available, the export needs about {MIN_AVAILABLE_GB} GB (--force to try)")
    if disk_gb < 6:
        raise SystemExit(f"only {disk_gb:.1f} GB free in {tempfile.gettempdir()}, the export writes about 4 GB")

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    import torch
    import transformers
    from tokenizers import Tokenizer, models

    from prox_spark.inference import GreedyDecoder, load_model
    from prox_spark.models import build_model, llama_config, parameter_count
    from prox_spark.training.export import export_model

    transformers.logging.set_verbosity_error()
    for name in ("optimum", "onnxruntime", "prox_spark", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)

    config = llama_config("prox_xs_0_3b")
    figures: dict = {
        "shape": "prox_xs_0_3b",
        "hidden_size": config.hidden_size,
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "kv_heads": config.num_key_value_heads,
        "vocab_size": config.vocab_size,
        "parameters": parameter_count(config),
        "non_embedding_parameters": parameter_count(config, embeddings=False),
        "threads": args.threads,
        "memory_available_gb_before": free_gb,
    }
    print(
        f"prox_xs_0_3b: hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.num_attention_heads} heads, "
        f"{config.num_key_value_heads} KV head, vocab {config.vocab_size}: {figures['parameters'] / 1e6:.1f}M parameters "
        f"({figures['non_embedding_parameters'] / 1e6:.1f}M without the input embedding)"
    )
    rng = np.random.default_rng(0)
    prompts = rng.integers(3, config.vocab_size, (args.prompts, args.prompt_tokens)).tolist()

    with tempfile.TemporaryDirectory(prefix="prox-0.3b-") as work:
        work = Path(work)
        hf_dir, onnx_dir = work / "hf", work / "onnx"
        started = time.perf_counter()
        model = build_model(config, seed=0).eval()
        model.save_pretrained(hf_dir)
        vocab = {f"t{i}": i for i in range(config.vocab_size)}
        Tokenizer(models.WordLevel(vocab, unk_token="t0")).save(str(hf_dir / "tokenizer.json"))
        figures["build_save_s"] = time.perf_counter() - started

        ids = torch.tensor(prompts)
        torch_times = []
        for _ in range(2):  # the first call also pays torch's one-time set-up
            started = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                    max_new_tokens=args.new_tokens, eos_token_id=config.eos_token_id, pad_token_id=config.eos_token_id,
                )
            torch_times.append(time.perf_counter() - started)
        figures["torch_generate_first_s"], figures["torch_generate_s"] = torch_times
        expected = []
        for row in out[:, ids.shape[1] :].tolist():
            expected.append(row[: row.index(config.eos_token_id)] if config.eos_token_id in row else row)
        del model, out
        gc.collect()

        started = time.perf_counter()
        export_model(
            hf_dir,
            onnx_dir,
            model_id="random-prox-xs-0.3b",
            kind="chunk",
            tokenizer_file="tokenizer.json",
            prompt_template="llama2-chat",
            max_prompt_tokens=2048 - args.new_tokens,
            max_new_tokens=args.new_tokens,
            precision="fp32",
        )
        figures["export_s"] = time.perf_counter() - started
        files = {f.name: f.stat().st_size for f in onnx_dir.iterdir() if f.is_file()}
        figures["files_bytes"] = files
        figures["model_bytes"] = sum(size for name, size in files.items() if name.startswith("model.onnx"))
        figures["peak_rss_gb_after_export"] = peak_rss_gb()
        print(
            f"export (optimum + last-position cut + checks): {figures['export_s']:.1f} s; model "
            f"{figures['model_bytes'] / 1e9:.2f} GB on disk ({', '.join(sorted(files))})"
        )

        started = time.perf_counter()
        loaded = load_model(onnx_dir, provider="cpu", intra_op_threads=args.threads)
        figures["load_s"] = time.perf_counter() - started
        decoder = GreedyDecoder.from_model(loaded)
        latencies = []
        for _ in range(3):
            started = time.perf_counter()
            generations = decoder.generate(prompts, args.new_tokens)
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        decoder.generate(prompts, 1)
        figures["prefill_s"] = time.perf_counter() - started
        got = [g.tokens for g in generations]
        figures.update(
            provider=loaded.provider,
            batch={"prompts": args.prompts, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens},
            batch_latency_first_s=latencies[0],
            batch_latency_best_s=min(latencies),
            generated_tokens=sum(len(t) for t in got),
            tokens_equal_torch=got == expected,
            peak_rss_gb=peak_rss_gb(),
        )
        print(
            f"load_model (sha256 check + session): {figures['load_s']:.1f} s on {loaded.provider}, {args.threads} threads"
        )
        print(
            f"one batch ({args.prompts} prompts x {args.prompt_tokens} tokens, {args.new_tokens} new tokens): "
            f"first {latencies[0]:.2f} s, best {min(latencies):.2f} s (prefill alone {figures['prefill_s']:.2f} s; "
            f"torch generate first {figures['torch_generate_first_s']:.2f} s, then {figures['torch_generate_s']:.2f} s); tokens identical to torch generate: "
            f"{'yes' if figures['tokens_equal_torch'] else 'NO'}"
        )
        print(f"peak resident memory of this process: {figures['peak_rss_gb']:.1f} GB")
    figures["temp_dir_removed"] = not work.exists()
    print(f"temporary directory {work} removed: {'yes' if figures['temp_dir_removed'] else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return figures


if __name__ == "__main__":
    main()
