"""LLaMA shapes for refining models, and randomly initialised models built from them.

All shapes share the reference's settings (prox-reference.md §4.1): RMSNorm eps 1e-5, RoPE base
10000, untied input/output embeddings, SiLU MLP without biases, 2048 positions.

- ``tiny``: a test fixture (about 0.1M parameters besides the embeddings); builds and runs in milliseconds.
- ``small``: about 31M parameters with an 8k vocabulary, the size the CPU benchmarks in
  architecture.md were measured at.
- ``prox_xs_0_3b``: the released ProX-xs refiners' shape (TinyLlama ``tiny_LLaMA_0_3b``): MQA with one
  KV head, 354.3M parameters with the Llama-2 32k vocabulary (313.3M without the input embedding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from prox_spark.models.tokenizer import to_transformers


@dataclass(frozen=True)
class LlamaShape:
    """The size of a LLaMA model; ``vocab_size`` applies only when no tokenizer is given."""

    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    num_hidden_layers: int
    vocab_size: int
    max_position_embeddings: int = 2048


SHAPES: dict[str, LlamaShape] = {
    "tiny": LlamaShape(64, 128, 4, 2, 2, vocab_size=512),
    "small": LlamaShape(512, 1408, 8, 2, 8, vocab_size=8192),
    "prox_xs_0_3b": LlamaShape(1280, 2048, 16, 1, 24, vocab_size=32000),
}


def llama_config(
    shape: str, *, tokenizer: Tokenizer | PreTrainedTokenizerBase | None = None, **overrides: object
) -> LlamaConfig:
    """``LlamaConfig`` of a named shape; vocabulary size and BOS/EOS/PAD ids come from ``tokenizer`` if given.

    ``overrides`` are ``LlamaConfig`` arguments applied last (e.g. ``initializer_range``).
    """
    try:
        size = SHAPES[shape]
    except KeyError:
        raise ValueError(f"unknown model shape {shape!r}: known shapes are {', '.join(SHAPES)}") from None
    settings: dict[str, object] = dict(
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        num_hidden_layers=size.num_hidden_layers,
        vocab_size=size.vocab_size,
        max_position_embeddings=size.max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
    )
    if tokenizer is not None:
        if isinstance(tokenizer, Tokenizer):
            tokenizer = to_transformers(tokenizer)
        settings.update(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    settings.update(overrides)
    return LlamaConfig(**settings)


def parameter_count(config: LlamaConfig, *, embeddings: bool = True) -> int:
    """Parameters of ``LlamaForCausalLM(config)`` without building it (untied, bias-free shapes only).

    ``embeddings=False`` leaves out the input embedding, as the paper's "non-emb" column does (the
    output projection still counts there).
    """
    if config.tie_word_embeddings or config.attention_bias or config.mlp_bias:
        raise ValueError("parameter_count covers untied, bias-free configurations only")
    hidden, vocab = config.hidden_size, config.vocab_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    attention = 2 * hidden * config.num_attention_heads * head_dim + 2 * hidden * config.num_key_value_heads * head_dim
    mlp = 3 * hidden * config.intermediate_size
    layer = attention + mlp + 2 * hidden  # two RMSNorm weights
    total = config.num_hidden_layers * layer + hidden + vocab * hidden  # final norm + lm_head
    return total + vocab * hidden if embeddings else total


def build_model(config: LlamaConfig, *, seed: int = 0, device: str | torch.device = "cpu") -> LlamaForCausalLM:
    """A randomly initialised ``LlamaForCausalLM``: the same seed and device type give the same weights.

    The global CPU RNG state is restored afterwards. ``device="meta"`` builds the structure without memory
    (for counting parameters of large shapes).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            return LlamaForCausalLM(config)
