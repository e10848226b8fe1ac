"""The pre-training job's configuration (``jobs/pretrain.py --conf``, the ``pretrain`` section of ``jobs.compare``):
one frozen dataclass per section (prox-reference.md §5.7 for the settings), and the value checks the type-level
loader (``prox_spark.config.load_config``) cannot do. Kept apart from the loop so the loop's pieces (checkpoints,
evaluation) can read their section without importing the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prox_spark.config import ConfigError
from prox_spark.pretrain.data import DataSettings


@dataclass(frozen=True)
class ModelSettings:
    #: tiny | small | prox_xs_0_3b (prox_spark.models.SHAPES) | tlm_s_0_7b | tlm_m_1_7b (train.EXTRA_SHAPES)
    shape: str = "tiny"
    #: LlamaConfig arguments applied last (e.g. num_hidden_layers: 4)
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimSettings:
    lr: float = 5e-4
    min_lr: float = 5e-5
    warmup_steps: int = 500
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainSettings:
    #: optimizer steps; the cosine schedule ends here
    max_steps: int = 1000
    #: stop (after a checkpoint) at this step without changing the schedule, e.g. a queue's time slice; 0: max_steps
    stop_at: int = 0
    #: sequences per micro-batch per rank; tokens/step = batch_size * grad_accum * world * block_size
    batch_size: int = 8
    grad_accum: int = 1
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: auto: bf16 autocast on CUDA, fp32 on CPU
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    #: torch intra-op threads (0: torch's default)
    threads: int = 0
    compile: bool = False
    log_interval: int = 10


@dataclass(frozen=True)
class EvalSettings:
    #: held-out texts: .jsonl/.jsonl.gz (field "text") or a plain file read as one document; "" = none
    path: str = ""
    #: evaluate every N steps (0: only at the end)
    interval: int = 0
    batch_size: int = 8
    #: cap on evaluated blocks (0: all)
    max_blocks: int = 0


@dataclass(frozen=True)
class CheckpointSettings:
    #: folder of step-NNNNNNNN.pt files ("" = <out_dir>/checkpoints); must be shared by all ranks
    dir: str = ""
    #: checkpoint every N steps (0: only at the end)
    interval: int = 100
    #: newest checkpoints kept
    keep: int = 2
    #: continue from the newest checkpoint in dir when there is one
    resume: bool = True


@dataclass(frozen=True)
class PretrainConfig:
    out_dir: str = "out/pretrain"
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    #: save the final model (save_pretrained + tokenizer.json) into <out_dir>/model
    save_model: bool = True


def validate(cfg: PretrainConfig) -> None:
    """Value checks the type-level config loader cannot do; errors name the key."""
    checks = [
        (cfg.data.block_size >= 1, "data.block_size must be >= 1"),
        (cfg.data.shuffle_buffer >= 1, "data.shuffle_buffer must be >= 1"),
        (cfg.data.num_workers >= 0, "data.num_workers must be >= 0"),
        (cfg.data.read_batch_rows >= 1, "data.read_batch_rows must be >= 1"),
        (bool(cfg.data.tokenizer), "data.tokenizer: set the tokenizer.json path"),
        (cfg.train.max_steps >= 1, "train.max_steps must be >= 1"),
        (0 <= cfg.train.stop_at <= cfg.train.max_steps, "train.stop_at must be in [0, max_steps]"),
        (cfg.train.batch_size >= 1 and cfg.train.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1"),
        (cfg.train.log_interval >= 1, "train.log_interval must be >= 1"),
        (0 < cfg.optim.min_lr <= cfg.optim.lr, "optim.min_lr must be in (0, optim.lr]"),
        (cfg.optim.warmup_steps >= 0, "optim.warmup_steps must be >= 0"),
        (cfg.checkpoint.interval >= 0 and cfg.checkpoint.keep >= 1, "checkpoint.interval >= 0 and checkpoint.keep >= 1"),
        (cfg.eval.batch_size >= 1, "eval.batch_size must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
