"""Supervised fine-tuning of a refining model from scratch: LlamaForCausalLM on (prompt, program) pairs.

No pretrained base exists here (the paper fine-tunes a 0.3B model pre-trained on 26B tokens), so the
model starts from ``build_model`` weights and learns the prompt format, the program grammar and the
decision at once. What the loop does, and why:

- **Loss on program tokens only**, prompts encoded exactly as at inference, length-bucketed batches
  (``prox_spark.training.sft_data``). ``prompt_loss_weight > 0`` adds next-token loss on (a sample of)
  the prompt positions: denser signal for a model with no pre-training (measured: validation loss on the
  programs 1.98 instead of 2.20 after 150 steps of the tiny chunk model). Off by default; it does not
  change what is exported.
- **AdamW, linear warmup then cosine** to ``min_lr_ratio * learning_rate``; gradient clipping.
- **Validation**: every ``eval_every`` steps, teacher-forced loss and *greedy decoding* of
  ``eval_examples`` validation prompts (in torch, ``prox_spark.training.validation_decode``: the
  checkpoint is not exported yet) scored with the stage's metric (doc F1 with keep positive, or
  chunk line F1, ``prox_spark.training.refiner_metrics``). The best checkpoint by (F1, -loss) is kept
  (``work_dir/best``, a ``save_pretrained`` directory with ``tokenizer.json``); ``patience`` evaluations
  without improvement stop the run.
- **Export**: the best checkpoint goes through ``export_model`` (ONNX fp32 + manifest) when
  ``export_dir`` is set.

Runs are reproducible: ``seed`` fixes the initial weights, the batch order and the validation sample, and
torch runs with ``threads`` intra-op threads (``time_budget_s``, off by default, is the one
machine-dependent knob).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

from prox_spark.models import build_model, llama_config, load_tokenizer, parameter_count
from prox_spark.prompts import encode_text
from prox_spark.training.refiner_metrics import calibrate_keep_threshold, chunk_metrics, doc_keeps, doc_metrics
from prox_spark.training.schedule import warmup_cosine_factor
from prox_spark.training.seed import SeedExample, read_seed
from prox_spark.training.sft_data import IGNORE, Encoded, bucketed_batches, collate, encode_examples, sft_loss
from prox_spark.training.validation_decode import doc_margins, greedy_generate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTConfig:
    """One fine-tuning run (YAML via ``prox_spark.config.load_config(path, overrides, cls=SFTConfig)``)."""

    #: doc (keep_doc/drop_doc) or chunk (remove_lines/normalize/keep_chunk)
    kind: Literal["doc", "chunk"] = "chunk"
    #: the id written into the manifest
    model_id: str = ""
    #: seed JSONL written by jobs/build_seed.py (doc.jsonl or chunk.jsonl)
    seed_file: str = ""
    #: tokenizer.json the seed chunks were counted with
    tokenizer: str = ""
    #: checkpoints and the training log
    work_dir: str = "out/train"
    #: exported model directory (ONNX + tokenizer + prox_model.json); "" skips the export
    export_dir: str = ""
    template: str = "compact"
    #: prompt budget in tokens (BOS and frame included), for training and, via the manifest, inference
    max_prompt_tokens: int = 512
    #: examples whose program (with EOS) is longer are left out of training
    max_target_tokens: int = 128
    #: generation budget written into the manifest
    max_new_tokens: int = 256
    #: a ``prox_spark.models.SHAPES`` name, adjusted by ``model`` (LlamaConfig arguments)
    shape: str = "tiny"
    model: dict = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 8
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 30
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    grad_clip: float = 1.0
    max_steps: int = 300
    #: 0: all training examples
    max_train_examples: int = 0
    #: extra training examples from the train split of another seed file of the same kind (e.g. the
    #: cleaning pages as keep_doc(), ``seed.DOC_CLEANING_FILE``), a seeded sample of ``extra_train_examples``
    #: (-1: all, 0: off); never added to validation, so checkpoint choice and threshold calibration stay on
    #: ``seed_file``'s own labels
    extra_train_file: str = ""
    extra_train_examples: int = 0
    eval_every: int = 50
    #: validation examples decoded at each evaluation (a seeded sample; 0: all)
    eval_examples: int = 64
    eval_max_new_tokens: int = 96
    eval_batch_size: int = 32
    #: evaluations without improvement before stopping (0: never stop early)
    patience: int = 0
    #: torch intra-op threads (0: torch's default, one per core)
    threads: int = 2
    #: stop at the first evaluation after this many seconds (0: off; makes the run machine-dependent)
    time_budget_s: float = 0.0
    #: weight of an auxiliary LM loss on the prompt tokens (0: program tokens only)
    prompt_loss_weight: float = 0.0
    #: fraction of prompt positions (a seeded random sample per batch) that the auxiliary loss reads
    prompt_loss_sample: float = 1.0
    #: the chunk budget the seed chunks were cut with (recorded in the training log for inference)
    chunk_max_tokens: int = 384
    #: steps of plain next-token pre-training before SFT (0: none), on the train-split inputs of
    #: ``pretrain_seed_files`` (seed JSONL files; their validation and test inputs are never read)
    pretrain_steps: int = 0
    pretrain_seed_files: list = field(default_factory=list)
    pretrain_seq_len: int = 256
    pretrain_batch_size: int = 32
    pretrain_learning_rate: float = 3e-3
    #: share of positions (a seeded sample per step) the pre-training loss reads: the 4096-way LM head
    #: costs more than the tiny model's body, so reading a quarter of them cuts a step's time severalfold
    pretrain_loss_sample: float = 0.25
    #: doc models: calibrate the score-mode keep threshold on the validation split (F1 of keep) and
    #: write it into the manifest; False keeps 0.0 (the argmax)
    calibrate_doc_threshold: bool = True


@dataclass
class TrainResult:
    best_step: int
    best_metric: float
    best_val_loss: float
    steps: int
    seconds: float
    parameters: int
    train_examples: int
    skipped_long_targets: int
    stopped: str
    history: list[dict[str, Any]]
    best_dir: str
    export_dir: str = ""
    #: pre-training phase: steps, tokens in its corpus, last loss, seconds (empty when off)
    pretrain: dict[str, Any] = field(default_factory=dict)
    #: doc models: the calibrated keep threshold and validation F1 at it and at 0.0 (empty otherwise)
    calibration: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lm_pretrain(model: LlamaForCausalLM, config: SFTConfig, tokenizer: Any, eos_id: int) -> dict[str, Any]:
    """Next-token pre-training on raw text before SFT: the paper's refiners start from a pre-trained LM,
    ours from random weights, and the doc seed has only ~300 labelled documents. The corpus is the
    train-split inputs of ``pretrain_seed_files`` (documents and line-numbered chunks as the models see
    them), each followed by EOS and concatenated; every step reads ``pretrain_batch_size`` windows of
    ``pretrain_seq_len`` tokens at seeded random offsets. Its own AdamW, warmup and cosine schedule."""
    started = time.perf_counter()
    stream: list[int] = []
    for path in config.pretrain_seed_files:
        for example in read_seed(path, "train"):
            stream.extend(encode_text(tokenizer, example.input, add_special_tokens=True) + [eos_id])
    width = config.pretrain_seq_len
    if len(stream) <= width:
        raise ValueError(f"pretrain_seed_files {config.pretrain_seed_files}: {len(stream)} tokens, fewer than one window")
    tokens = torch.tensor(stream, dtype=torch.long)
    rng = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.pretrain_learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
    schedule = replace(config, warmup_steps=min(config.warmup_steps, config.pretrain_steps // 10), max_steps=config.pretrain_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(schedule))
    model.train()
    losses: list[float] = []
    for _ in range(config.pretrain_steps):
        starts = torch.randint(0, len(stream) - width, (config.pretrain_batch_size,), generator=rng)
        batch = torch.stack([tokens[i : i + width] for i in starts.tolist()])
        hidden = model.model(input_ids=batch).last_hidden_state[:, :-1]
        read = torch.rand(hidden.shape[:2], generator=rng) < config.pretrain_loss_sample
        loss = F.cross_entropy(model.lm_head(hidden[read]).float(), batch[:, 1:][read])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            logger.info("LM pre-training step %d: loss %.3f (%.0f s)", len(losses), losses[-1], time.perf_counter() - started)
    summary = {
        "steps": config.pretrain_steps,
        "corpus_tokens": len(stream),
        "first_loss": losses[0],
        "last_loss": sum(losses[-20:]) / len(losses[-20:]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    logger.info("LM pre-training %s", summary)
    return summary


def extra_train_examples(config: SFTConfig) -> list[SeedExample]:
    """The seeded sample of ``extra_train_file``'s train split that ``config`` asks for (see SFTConfig).

    Its own generator (seeded from ``seed``), so turning the option on or off leaves every other random
    choice of the run as it was.
    """
    if not config.extra_train_examples:
        return []
    if not config.extra_train_file:
        raise ValueError("extra_train_examples is set but extra_train_file is empty")
    pool = [e for e in read_seed(config.extra_train_file, "train") if e.kind == config.kind]
    if config.extra_train_examples < 0 or config.extra_train_examples >= len(pool):
        return pool
    return random.Random(f"{config.seed}:extra_train").sample(pool, config.extra_train_examples)


def _lr_lambda(config: SFTConfig):
    return functools.partial(
        warmup_cosine_factor, warmup_steps=config.warmup_steps, max_steps=config.max_steps, floor=config.min_lr_ratio
    )


@torch.no_grad()
def validation_loss(model: LlamaForCausalLM, items: Sequence[Encoded], pad_id: int, batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(items), batch_size):
        batch = collate(items[start : start + batch_size], pad_id)
        tokens = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(sft_loss(model, batch)) * tokens
        count += tokens
    return total / max(count, 1)


def validation_metrics(
    model: LlamaForCausalLM, items: Sequence[Encoded], tokenizer: Any, kind: str, config: SFTConfig, eos_id: int, pad_id: int
) -> dict[str, Any]:
    """Greedy programs for ``items`` scored with the stage metric; ``metric`` is doc F1 or line F1."""
    outputs = greedy_generate(
        model,
        [item.prompt for item in items],
        max_new_tokens=config.eval_max_new_tokens,
        eos_id=eos_id,
        pad_id=pad_id,
        batch_size=config.eval_batch_size,
    )
    predicted = [tokenizer.decode(tokens, skip_special_tokens=False) for tokens, _ in outputs]
    gold = [item.example.target for item in items]
    if kind == "doc":
        metrics = doc_metrics(gold, predicted)
        metrics["metric"] = metrics["doc_f1"]
    else:
        metrics = chunk_metrics(
            gold, predicted, [item.example.meta["n_doc_lines"] for item in items], truncated=[not s for _, s in outputs]
        )
        metrics["metric"] = metrics["line_f1"]
    return metrics


def _save_checkpoint(model: LlamaForCausalLM, tokenizer_path: Path, directory: Path) -> None:
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.copyfile(tokenizer_path, tmp / "tokenizer.json")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def train(config: SFTConfig) -> TrainResult:
    """Fine-tune, keep the best checkpoint, export it; see the module docstring."""
    threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        return _train(config)
    finally:
        torch.set_num_threads(threads)


def _train(config: SFTConfig) -> TrainResult:
    started = time.perf_counter()
    work_dir = Path(config.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_path = Path(config.tokenizer)
    tokenizer = load_tokenizer(tokenizer_path)
    if tokenizer_path.is_dir():
        tokenizer_path = tokenizer_path / "tokenizer.json"
    model_config = llama_config(config.shape, tokenizer=tokenizer, **config.model)
    eos_id, pad_id = model_config.eos_token_id, model_config.pad_token_id
    if model_config.max_position_embeddings < config.max_prompt_tokens + config.max_new_tokens:
        raise ValueError(
            f"max_position_embeddings={model_config.max_position_embeddings} < max_prompt_tokens + max_new_tokens "
            f"({config.max_prompt_tokens} + {config.max_new_tokens})"
        )

    rng = random.Random(config.seed)
    train_examples = [e for e in read_seed(config.seed_file, "train") if e.kind == config.kind]
    val_examples = [e for e in read_seed(config.seed_file, "validation") if e.kind == config.kind]
    if not train_examples or not val_examples:
        raise ValueError(f"{config.seed_file}: no {config.kind} examples in the train or validation split")
    if config.max_train_examples and len(train_examples) > config.max_train_examples:
        train_examples = rng.sample(train_examples, config.max_train_examples)
    train_examples += extra_train_examples(config)
    if config.eval_examples and len(val_examples) > config.eval_examples:
        val_examples = rng.sample(val_examples, config.eval_examples)
    encode = dict(template=config.template, max_prompt_tokens=config.max_prompt_tokens, eos_id=eos_id)
    train_items = encode_examples(train_examples, tokenizer, **encode)
    skipped = sum(len(i.target) > config.max_target_tokens for i in train_items)
    train_items = [i for i in train_items if len(i.target) <= config.max_target_tokens]
    val_items = encode_examples(val_examples, tokenizer, **encode)
    logger.info("%s: %d train examples (%d with long programs left out), %d validation", config.kind, len(train_items), skipped, len(val_items))

    model = build_model(model_config, seed=config.seed)
    n_params = parameter_count(model_config)
    pretrain_summary = lm_pretrain(model, config, tokenizer, eos_id) if config.pretrain_steps else {}
    trained = list(model.named_parameters())
    decay = [p for n, p in trained if p.dim() >= 2]
    no_decay = [p for n, p in trained if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    generator = torch.Generator().manual_seed(config.seed)  # the prompt-loss position sample

    history: list[dict[str, Any]] = []
    best = {"key": (-1.0, -math.inf), "step": 0, "metric": 0.0, "loss": math.inf}
    best_dir = work_dir / "best"
    stale, stopped, step = 0, "max_steps", 0
    lengths = [len(i) for i in train_items]
    batches: list[list[int]] = []
    running, running_n = 0.0, 0

    def evaluate_now() -> bool:
        nonlocal stale, stopped
        loss = validation_loss(model, val_items, pad_id, config.eval_batch_size)
        metrics = validation_metrics(model, val_items, tokenizer, config.kind, config, eos_id, pad_id)
        entry = {
            "step": step,
            "train_loss": running / max(running_n, 1),
            "val_loss": loss,
            "metric": metrics["metric"],
            "exact_match": metrics["exact_match"],
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - started, 1),
        }
        if config.kind == "chunk":
            entry["execution_failure_rate"] = metrics["execution_failure_rate"]
        else:
            entry["predicted_keep_rate"] = metrics["predicted_keep_rate"]
        history.append(entry)
        logger.info("eval %s", entry)
        key = (metrics["metric"], -loss)
        if key > best["key"]:
            best.update(key=key, step=step, metric=metrics["metric"], loss=loss)
            _save_checkpoint(model, tokenizer_path, best_dir)
            stale = 0
        else:
            stale += 1
        model.train()
        if config.patience and stale >= config.patience:
            stopped = "early_stop"
            return True
        if config.time_budget_s and time.perf_counter() - started > config.time_budget_s:
            stopped = "time_budget"
            return True
        return False

    model.train()
    while step < config.max_steps:
        if not batches:
            batches = bucketed_batches(lengths, config.batch_size, rng)
        batch = collate([train_items[i] for i in batches.pop()], pad_id)
        loss = sft_loss(model, batch, config.prompt_loss_weight, config.prompt_loss_sample, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for _, p in trained], config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        running += float(loss.detach())
        running_n += 1
        if step % config.eval_every == 0 or step == config.max_steps:
            if evaluate_now():
                break
            running, running_n = 0.0, 0
    if not history:  # max_steps of 0: evaluate the initial model so there is a checkpoint
        evaluate_now()

    result = TrainResult(
        best_step=best["step"],
        best_metric=best["metric"],
        best_val_loss=best["loss"],
        steps=step,
        seconds=0.0,
        parameters=n_params,
        train_examples=len(train_items),
        skipped_long_targets=skipped,
        stopped=stopped,
        history=history,
        best_dir=str(best_dir),
        pretrain=pretrain_summary,
    )
    if config.kind == "doc" and config.calibrate_doc_threshold:
        best_model = LlamaForCausalLM.from_pretrained(best_dir)
        all_val = encode_examples(
            [e for e in read_seed(config.seed_file, "validation") if e.kind == "doc"], tokenizer, **encode
        )
        margins = doc_margins(best_model, [i.prompt for i in all_val], tokenizer, pad_id, config.eval_batch_size)
        result.calibration = calibrate_keep_threshold(margins, [doc_keeps(i.example.target) for i in all_val])
        logger.info("doc keep threshold %s", result.calibration)
    if config.export_dir:
        result.export_dir = str(export(config, best_dir, result.calibration.get("threshold", 0.0)))
    result.seconds = round(time.perf_counter() - started, 1)
    (work_dir / "train_log.json").write_text(
        json.dumps({"config": asdict(config), "result": result.as_dict()}, indent=2) + "\n", encoding="utf-8"
    )
    return result


def export(config: SFTConfig, checkpoint: Path, doc_keep_threshold: float = 0.0) -> Path:
    """Export ``checkpoint`` to ``config.export_dir``, replacing what is there only once the new export
    has loaded (``export_model`` verifies it), so a failed export never leaves a broken model behind."""
    from prox_spark.training.export import export_model

    target = Path(config.export_dir)
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    export_model(
        checkpoint,
        staging,
        model_id=config.model_id or f"prox-{config.kind}-{config.shape}",
        kind=config.kind,
        tokenizer_file="tokenizer.json",
        prompt_template=config.template,
        max_prompt_tokens=config.max_prompt_tokens,
        max_new_tokens=config.max_new_tokens,
        precision="fp32",
        doc_keep_threshold=doc_keep_threshold,
    )
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
