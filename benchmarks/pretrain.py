"""Pre-training throughput: training tokens/s, and the data loader's tokens/s alone against the training step.

Builds its own refined-like Delta table (generated Zipfian text, several files, some rows dropped) with
``deltalake.write_deltalake`` in a temporary folder, trains a byte-level BPE on it, then measures

1. loader alone: Delta -> pyarrow batches -> tokenize + EOS -> pack -> DataLoader batches (one pass);
2. training step alone: forward + backward + AdamW on a batch already in memory;
3. end to end: ``prox_spark.pretrain.train.train`` (loader in the loop, logging, a final checkpoint).

and prints loader tokens/s ÷ step tokens/s: above 1 the loader keeps up with (is not the bottleneck of)
training. With ``data.num_workers = W`` loading overlaps training and scales by about W.

    python benchmarks/pretrain.py [--shape tiny] [--block-size 256] [--batch-size 8] [--docs 3000]
"""

from __future__ import annotations

import argparse
import functools
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader

from prox_spark.config import load_config
from prox_spark.models import EOS, build_model, save_tokenizer, train_tokenizer
from prox_spark.pretrain import DeltaSource, PackedDataset, make_encoder, open_table
from prox_spark.pretrain.settings import PretrainConfig
from prox_spark.pretrain.train import build_llama, make_optimizer, train


def generated_docs(n_docs: int, seed: int = 0) -> list[str]:
    """Web-ish documents: Zipf-distributed words from a 20k-word synthetic vocabulary, lines and punctuation."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    lengths = rng.integers(2, 11, size=20000)
    vocab = ["".join(rng.choice(letters, size=n)) for n in lengths]
    docs = []
    for _ in range(n_docs):
        n_words = int(rng.integers(50, 900))
        ids = np.minimum(rng.zipf(1.2, size=n_words) - 1, len(vocab) - 1)
        words = [vocab[i] for i in ids]
        for cut in sorted(rng.choice(n_words, size=max(1, n_words // 40), replace=False)):
            words[cut] += rng.choice([".", ",", ".\n", "\n"])
        docs.append(" ".join(words))
    return docs


def build_table(folder: Path, docs: list[str], files: int) -> str:
    from deltalake import write_deltalake

    path = str(folder / "refined")
    for part in np.array_split(np.arange(len(docs)), files):
        rows = [docs[i] for i in part]
        kept = [i % 10 != 0 for i in part]  # 10% dropped rows, as the refine job writes them
        table = pa.table({"doc_id": [f"d{i}" for i in part], "text": [t if k else "" for t, k in zip(rows, kept)], "kept": kept})
        write_deltalake(path, table, mode="append")
    return path


def loader_tokens_per_s(snapshot, tokenizer_json: str, eos_id: int, block_size: int, batch_size: int, workers: int) -> tuple[float, int]:
    dataset = PackedDataset(
        DeltaSource(snapshot),
        functools.partial(make_encoder, tokenizer_json, eos_id),
        block_size,
        shuffle_buffer=64,
        num_workers=workers,
        epochs=1,
    )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    started, tokens = time.perf_counter(), 0
    for batch in loader:
        tokens += batch["tokens"][:, :-1].numel()
    return tokens / (time.perf_counter() - started), tokens


def step_tokens_per_s(cfg: PretrainConfig, tokenizer, steps: int, device: torch.device) -> float:
    model = build_model(build_llama(cfg, tokenizer), seed=0).to(device)
    optimizer = make_optimizer(model, cfg.optim, device)
    vocab = model.config.vocab_size
    tokens = torch.randint(0, vocab, (cfg.train.batch_size, cfg.data.block_size + 1), device=device)
    autocast = functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def one_step():
        with autocast():
            logits = model(input_ids=tokens[:, :-1], use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * cfg.train.batch_size * cfg.data.block_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="tiny")
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU); 0: torch's default")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the loader measurement")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")

    with tempfile.TemporaryDirectory(prefix="prox-pretrain-bench-") as tmp:
        tmp_path = Path(tmp)
        docs = generated_docs(args.docs)
        started = time.perf_counter()
        table = build_table(tmp_path, docs, args.files)
        tokenizer = train_tokenizer(docs[:1000], args.vocab)
        tok_path = save_tokenizer(tokenizer, tmp_path / "tok")
        snapshot = open_table(table)
        mib = sum(len(d.encode()) for d in docs) / 2**20
        print(
            f"table: {len(docs)} generated docs ({mib:.1f} MiB, 10% dropped), {len(snapshot.files)} files, v{snapshot.version}; "
            f"tokenizer {tokenizer.get_vocab_size()} tokens; set-up {time.perf_counter() - started:.1f}s"
        )
        cfg = load_config(
            None,
            [
                f"out_dir={tmp_path / 'out'}", f"data.table={table}", f"data.tokenizer={tok_path}",
                f"data.block_size={args.block_size}", f"model.shape={args.shape}", f"train.batch_size={args.batch_size}",
                f"train.max_steps={args.steps}", f"train.device={device.type}", f"train.threads={args.threads}",
                "optim.warmup_steps=5", "checkpoint.interval=0", "save_model=false", f"train.log_interval={args.steps}",
            ],
            cls=PretrainConfig,
        )
        eos_id = tokenizer.token_to_id(EOS)
        loader_rate, loader_tokens = loader_tokens_per_s(
            snapshot, tokenizer.to_str(), eos_id, args.block_size, args.batch_size, args.workers
        )
        step_rate = step_tokens_per_s(cfg, tokenizer, args.steps, device)
        logging.disable(logging.INFO)
        result = train(cfg)
        e2e_rate = result.metrics["tokens_per_s_this_run"]
        params = result.metrics["parameters"]

    print(
        f"model: {args.shape} ({params / 1e6:.2f}M params), block {args.block_size}, batch {args.batch_size}, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'loader alone (one pass, ' + str(args.workers) + ' workers)':<44}{loader_rate:>12,.0f} tokens/s  ({loader_tokens:,} tokens)")
    print(f"{'training step alone (batch in memory)':<44}{step_rate:>12,.0f} tokens/s")
    print(f"{'end to end train() (loader in the loop)':<44}{e2e_rate:>12,.0f} tokens/s")
    ratio = loader_rate / step_rate
    verdict = "loader keeps up" if ratio >= 1 else "LOADER IS THE BOTTLENECK: raise data.num_workers"
    print(f"loader / step ratio: {ratio:.1f}x  ({verdict})")


if __name__ == "__main__":
    main()
