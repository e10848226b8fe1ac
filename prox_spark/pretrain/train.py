"""Pre-train a LLaMA on the refined corpus: one readable loop (nanoGPT style); its config is ``settings.py``.

    python -m jobs.pretrain --conf conf/pretrain_local.yaml train.max_steps=50
    torchrun --nproc_per_node 8 -m jobs.pretrain --conf conf/<env>.yaml          # DDP (nccl / gloo)

What a run does (prox-reference.md §5.7 for the settings):

- reads ONE refine run (``data.run_id``, or the latest succeeded run in the ``runs`` table) of the
  refined Delta table at ONE version (``data.version``, or the latest at start); both are recorded in
  the metrics and kept by every resume (``resume.py``); BOS-free tokens + EOS packed into ``block_size + 1``
  blocks (``delta.py``, ``data.py``);
- ``LlamaForCausalLM`` from a named shape (``tiny`` for tests; ``prox_xs_0_3b`` / ``tlm_s_0_7b`` /
  ``tlm_m_1_7b`` for the reference's TLM-XS/S/M) plus ``model.overrides``;
- AdamW (0.9, 0.95), weight decay 0.1 on matrices only, linear warmup then cosine to ``min_lr`` at
  ``max_steps``, grad clip 1.0, bf16 autocast on GPU (fp32 weights), fp32 on CPU;
- a checkpoint every ``checkpoint.interval`` steps (model, optimizer, scheduler, step, RNG, every
  shard's data cursor, table version; ``checkpoint.py``) and at the end; with ``checkpoint.resume`` a rerun
  continues from the newest one and produces the same losses as an uninterrupted run (same world size and workers);
- a progress line every ``train.log_interval`` steps, held-out perplexity every ``eval.interval`` steps
  and at the end (``evaluation.py``), ``<out_dir>/metrics.json`` (loss curve, tokens seen, table and version,
  eval ppl) and the final model in ``<out_dir>/model`` (``save_pretrained`` + ``tokenizer.json``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from prox_spark.config import ConfigError, as_dict
from prox_spark.pretrain.checkpoint import (
    Checkpointer,
    Progress,
    atomic_write_json,
    checkpoint_dir,
    latest_checkpoint,
    load_checkpoint,
    restore_checkpoint,
)
from prox_spark.pretrain.data import Cursor, PackedDataset, make_encoder
from prox_spark.pretrain.delta import DeltaSource, TableSnapshot
from prox_spark.pretrain.distributed import Dist, mean_across_ranks, setup_distributed
from prox_spark.pretrain.evaluation import Evaluator, held_out_blocks
from prox_spark.pretrain.resume import check_resumable, data_identity, pin_snapshot
from prox_spark.pretrain.settings import OptimSettings, PretrainConfig, validate
from prox_spark.pretrain.tokenizer import prepare_tokenizer
from prox_spark.training.schedule import warmup_cosine_factor

log = logging.getLogger("prox_spark.pretrain")


# -------------------------------------------------------------------------------- model and optimizer


#: the reference's TLM-S / TLM-M shapes (prox-reference.md §4.1) as overrides of prox_xs_0_3b
EXTRA_SHAPES: dict[str, dict[str, int]] = {
    "tlm_s_0_7b": dict(hidden_size=1536, intermediate_size=4864, num_attention_heads=24, num_key_value_heads=2, num_hidden_layers=24),
    "tlm_m_1_7b": dict(hidden_size=2048, intermediate_size=8192, num_attention_heads=32, num_key_value_heads=32, num_hidden_layers=24),
}


def lr_factor(step: int, optim: OptimSettings, max_steps: int) -> float:
    """Multiplier of optim.lr at ``step`` (0-based): linear warmup, then cosine down to min_lr at max_steps."""
    return warmup_cosine_factor(
        step, warmup_steps=optim.warmup_steps, max_steps=max_steps, peak=optim.lr, floor=optim.min_lr
    )


def make_optimizer(model: torch.nn.Module, optim: OptimSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (linear weights, embeddings) only, not on norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": optim.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, fused=device.type == "cuda"
    )


def build_llama(cfg: PretrainConfig, tokenizer) -> Any:
    """``LlamaConfig`` from the model section (vocabulary and special ids from the tokenizer)."""
    from prox_spark.models import SHAPES, llama_config

    shape, overrides = cfg.model.shape, dict(cfg.model.overrides)
    if shape in EXTRA_SHAPES:
        overrides = {**EXTRA_SHAPES[shape], **overrides}
        shape = "prox_xs_0_3b"
    elif shape not in SHAPES:
        raise ConfigError(f"model.shape: unknown shape {shape!r} (known: {', '.join([*SHAPES, *EXTRA_SHAPES])})")
    try:
        config = llama_config(shape, tokenizer=tokenizer, **overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.overrides: {exc}") from None
    if cfg.data.block_size > config.max_position_embeddings:
        raise ConfigError(
            f"data.block_size {cfg.data.block_size} exceeds the model's max_position_embeddings "
            f"{config.max_position_embeddings} (set model.overrides.max_position_embeddings)"
        )
    return config


# ------------------------------------------------------------------------------------------- the job


@dataclass
class PretrainResult:
    metrics: dict
    model: torch.nn.Module  # the unwrapped model (not DDP)


def train(cfg: PretrainConfig, *, eval_texts: list[str] | None = None) -> PretrainResult:
    """Run (or resume) pre-training as configured; returns the metrics (also in <out_dir>/metrics.json)."""
    from prox_spark.models import build_model

    validate(cfg)
    env = setup_distributed(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false" if cfg.data.num_workers > 0 else "true")
    out_dir, ckpt_dir = Path(cfg.out_dir), checkpoint_dir(cfg)
    bf16, autocast = _precision(cfg, env)

    # --- checkpoint to resume, pinned table version (rank 0 resolves "latest", all ranks pin it), tokenizer
    resume_from = latest_checkpoint(ckpt_dir) if cfg.checkpoint.resume else None
    state = load_checkpoint(resume_from)
    snapshot = pin_snapshot(cfg.data, env, state, resume_from)
    tokenizer, eos_id = prepare_tokenizer(cfg.data, snapshot, env)
    tokenizer_json = tokenizer.to_str()
    identity = data_identity(cfg.data, env, snapshot, tokenizer_json)
    if state is not None:
        check_resumable(state, identity, resume_from)

    # --- model, optimizer, schedule
    llama_cfg = build_llama(cfg, tokenizer)
    model = build_model(llama_cfg, seed=cfg.train.seed).to(env.device)
    optimizer = make_optimizer(model, cfg.optim, env.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, optim=cfg.optim, max_steps=cfg.train.max_steps)
    )
    progress = Progress()
    if state is not None:
        progress = restore_checkpoint(state, model, optimizer, scheduler, env)
        if env.main:
            log.info("resumed from %s at step %d (table %s v%d)", resume_from, progress.step, snapshot.uri, snapshot.version)
    raw_model = model
    model = _wrap(raw_model, cfg, env)

    # --- data
    loader = _loader(cfg, env, snapshot, tokenizer_json, eos_id, progress)
    eval_set = held_out_blocks(cfg.eval, eval_texts, make_encoder(tokenizer_json, eos_id), cfg.data.block_size)

    tokens_per_step = cfg.train.batch_size * cfg.train.grad_accum * env.world * cfg.data.block_size
    end_step = cfg.train.stop_at or cfg.train.max_steps
    _describe_run(cfg, env, snapshot, raw_model, progress, tokens_per_step, end_step, bf16)
    checkpoints = Checkpointer(ckpt_dir, cfg.checkpoint.keep, out_dir, env, raw_model, optimizer, scheduler, identity)
    evaluator = Evaluator(raw_model, eval_set, env, cfg.eval.batch_size, autocast)

    # --- the loop
    batches = iter(loader)
    model.train()
    progress_line = _ProgressLine(cfg, env, end_step, tokens_per_step)
    run_started, run_tokens = time.perf_counter(), 0
    while progress.step < end_step:
        loss_value, lr = _train_step(model, batches, optimizer, scheduler, cfg, env, autocast, progress)
        step = progress.step
        run_tokens += tokens_per_step
        progress.metrics["loss_curve"].append({"step": step, "loss": loss_value, "lr": lr, "tokens": step * tokens_per_step})
        progress_line.step_done(step, loss_value, lr)
        if cfg.eval.interval and step % cfg.eval.interval == 0 and step < end_step:
            evaluator.run(step, progress.metrics)
        if cfg.checkpoint.interval and step % cfg.checkpoint.interval == 0 and step < end_step:
            checkpoints.save(progress)
    elapsed = time.perf_counter() - run_started
    del batches  # stop the DataLoader workers

    # --- the end: a last evaluation and checkpoint, the metrics, the model
    step, metrics = progress.step, progress.metrics
    if not metrics["eval"] or metrics["eval"][-1]["step"] != step:
        evaluator.run(step, metrics)
    metrics.update(
        steps=step,
        finished=step >= cfg.train.max_steps,
        tokens_seen=step * tokens_per_step,
        tokens_per_s_this_run=run_tokens / elapsed if elapsed > 0 else None,
        final_eval_loss=metrics["eval"][-1]["loss"] if metrics["eval"] else None,
        final_eval_ppl=metrics["eval"][-1]["ppl"] if metrics["eval"] else None,
    )
    checkpoints.save(progress)
    if env.main:
        atomic_write_json(out_dir / "metrics.json", metrics)
        if cfg.save_model and metrics["finished"]:
            _save_model(raw_model, out_dir / "model", tokenizer_json)
        log.info("done: step %d, %s tokens, metrics in %s", step, _si(step * tokens_per_step), out_dir / "metrics.json")
    return PretrainResult(metrics, raw_model)


def _precision(cfg: PretrainConfig, env: Dist) -> tuple[bool, Callable[[], ContextManager]]:
    """Whether the run uses bf16 autocast (GPUs only), and the context the forward passes run in."""
    bf16 = env.device.type == "cuda" and cfg.train.precision in ("auto", "bf16")
    if cfg.train.precision == "bf16" and env.device.type != "cuda":
        raise ConfigError("train.precision: bf16 autocast is for GPUs only; use auto or fp32 on CPU")
    autocast = functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext
    return bf16, autocast


def _wrap(model: torch.nn.Module, cfg: PretrainConfig, env: Dist) -> torch.nn.Module:
    """The model the loop trains: compiled when ``train.compile``, in DDP across ranks."""
    if cfg.train.compile:
        model = torch.compile(model)
    if env.ddp:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[env.local_rank] if env.device.type == "cuda" else None
        )
    return model


def _loader(
    cfg: PretrainConfig, env: Dist, snapshot: TableSnapshot, tokenizer_json: str, eos_id: int, progress: Progress
) -> DataLoader:
    """This rank's packed blocks, from where ``progress`` left each shard."""
    workers = max(1, cfg.data.num_workers)
    dataset = PackedDataset(
        DeltaSource(snapshot, cfg.data.read_batch_rows),
        functools.partial(make_encoder, tokenizer_json, eos_id),
        cfg.data.block_size,
        shuffle_buffer=cfg.data.shuffle_buffer,
        seed=cfg.data.seed,
        rank=env.rank,
        world_size=env.world,
        num_workers=cfg.data.num_workers,
        start={shard: Cursor(*c) for shard, c in progress.cursors.items()},
        rotation=progress.micro_batches % workers,
    )
    return DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        num_workers=cfg.data.num_workers,
        pin_memory=env.device.type == "cuda",
        prefetch_factor=4 if cfg.data.num_workers else None,
        # Workers start fresh instead of forking this process: by now it runs threads of torch, pyarrow and
        # deltalake's runtime (and, in a notebook or test session, a JVM gateway), and a child forked while one
        # of them holds a lock waits on it forever (seen as a hung loader with workers idle in futex waits).
        multiprocessing_context="spawn" if cfg.data.num_workers else None,
    )


def _describe_run(
    cfg: PretrainConfig,
    env: Dist,
    snapshot: TableSnapshot,
    raw_model: torch.nn.Module,
    progress: Progress,
    tokens_per_step: int,
    end_step: int,
    bf16: bool,
) -> None:
    """Record what the run trains on and with in its metrics, and say it in one line."""
    n_params = sum(p.numel() for p in raw_model.parameters())
    progress.metrics.update(
        table=snapshot.uri,
        table_version=snapshot.version,
        run_id=snapshot.run_id,
        table_files=len(snapshot.files),
        parameters=n_params,
        tokens_per_step=tokens_per_step,
        world_size=env.world,
        device=str(env.device),
        precision="bf16-autocast" if bf16 else "fp32",
        config=as_dict(cfg),
    )
    if env.main:
        log.info(
            "pretrain: %s v%d (%d files) | %.2fM params | %s x%d | %d tokens/step | steps %d->%d of %d",
            snapshot.uri, snapshot.version, len(snapshot.files), n_params / 1e6, env.device, env.world,
            tokens_per_step, progress.step, end_step, cfg.train.max_steps,
        )


def _train_step(
    model: torch.nn.Module,
    batches: Iterator[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: PretrainConfig,
    env: Dist,
    autocast: Callable[[], ContextManager],
    progress: Progress,
) -> tuple[float, float]:
    """One optimizer step over ``train.grad_accum`` micro-batches (DDP syncs gradients on the last one only),
    advancing ``progress``; returns the step's loss averaged over ranks and the learning rate it ran with."""
    loss_sum = torch.zeros((), device=env.device)
    for micro in range(cfg.train.grad_accum):
        batch = next(batches)
        progress.micro_batches += 1
        last = batch["cursor"][-1].tolist()  # all rows of a batch come from one worker (= shard)
        progress.cursors[last[0]] = last[1:]
        tokens = batch["tokens"].to(env.device, non_blocking=True)
        x, y = tokens[:, :-1], tokens[:, 1:]
        sync = not env.ddp or micro == cfg.train.grad_accum - 1
        with (contextlib.nullcontext() if sync else model.no_sync()), autocast():
            logits = model(input_ids=x, use_cache=False).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        (loss / cfg.train.grad_accum).backward()
        loss_sum += loss.detach()
    if cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    progress.step += 1
    return mean_across_ranks(env, loss_sum / cfg.train.grad_accum), lr


class _ProgressLine:
    """The progress line on rank 0: at step 1, every ``train.log_interval`` steps and at the last step, with the
    throughput of the steps since the previous line and the time left at that rate."""

    def __init__(self, cfg: PretrainConfig, env: Dist, end_step: int, tokens_per_step: int) -> None:
        self.max_steps, self.log_interval, self.main = cfg.train.max_steps, cfg.train.log_interval, env.main
        self.end_step, self.tokens_per_step = end_step, tokens_per_step
        self.window_started, self.window_tokens = time.perf_counter(), 0

    def step_done(self, step: int, loss_value: float, lr: float) -> None:
        self.window_tokens += self.tokens_per_step
        if self.main and (step % self.log_interval == 0 or step == self.end_step or step == 1):
            elapsed = time.perf_counter() - self.window_started
            rate = self.window_tokens / elapsed if elapsed > 0 else 0.0
            eta = (self.end_step - step) * self.tokens_per_step / rate if rate else 0.0
            log.info(
                "step %d/%d (%.1f%%) | loss %.4f | lr %.2e | %s tok/s | %s tokens | eta %s",
                step, self.max_steps, 100 * step / self.max_steps, loss_value, lr,
                _si(rate), _si(step * self.tokens_per_step), _hms(eta),
            )
            self.window_started, self.window_tokens = time.perf_counter(), 0


def _save_model(raw_model: torch.nn.Module, target: Path, tokenizer_json: str) -> None:
    """The final model, loadable with ``from_pretrained``, with its tokenizer beside it (replacing an older one)."""
    if target.exists():
        shutil.rmtree(target)
    raw_model.save_pretrained(target)
    (target / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
