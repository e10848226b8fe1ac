"""The project's own refining models: tokenizer training and LLaMA shapes (training side: torch, transformers).

- ``train_tokenizer(texts, vocab_size) -> tokenizers.Tokenizer``; ``training_texts(data_dir)`` for the shared data;
  ``save_tokenizer`` / ``load_tokenizer`` (``tokenizer.json``); ``to_transformers`` for a ``PreTrainedTokenizerFast``
- ``llama_config(shape, *, tokenizer=None, **overrides) -> LlamaConfig`` for ``SHAPES`` (tiny, small, prox_xs_0_3b)
- ``parameter_count(config)``; ``build_model(config, *, seed, device) -> LlamaForCausalLM``

Spark workers need none of this: they read the exported ``tokenizer.json`` with ``tokenizers`` alone.
"""

from prox_spark.models.llama_config import SHAPES, LlamaShape, build_model, llama_config, parameter_count
from prox_spark.models.tokenizer import (
    ADDED_TOKENS,
    BOS,
    EOS,
    PAD,
    PROGRAM_TOKENS,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    UNK,
    load_tokenizer,
    save_tokenizer,
    shared_texts,
    to_transformers,
    train_tokenizer,
    training_texts,
)

__all__ = [
    "ADDED_TOKENS",
    "BOS",
    "EOS",
    "PAD",
    "PROGRAM_TOKENS",
    "SHAPES",
    "SPECIAL_TOKENS",
    "TOKENIZER_FILE",
    "UNK",
    "LlamaShape",
    "build_model",
    "llama_config",
    "load_tokenizer",
    "parameter_count",
    "save_tokenizer",
    "shared_texts",
    "to_transformers",
    "train_tokenizer",
    "training_texts",
]
