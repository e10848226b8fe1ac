"""The torch pre-training job's pieces: the Delta table read without Spark (``delta``), packed data (``data``)
and the training loop (``train``) with its configuration (``settings``), what a run pins and a resume checks
(``resume``), its tokenizer (``tokenizer``), checkpoints (``checkpoint``), held-out evaluation (``evaluation``) and
ranks (``distributed``).

- ``open_table(path, version) -> TableSnapshot``: a Delta table resolved once at a pinned version (no Spark);
  ``DeltaSource`` streams its kept texts
- ``PackedDataset``: BOS-free tokens + EOS packed into ``block_size + 1`` blocks, sharded by (rank, worker),
  windowed shuffle, resumable from per-shard ``Cursor``s; ``Packer`` is the packing core
- ``settings.PretrainConfig`` / ``train(cfg) -> PretrainResult``: the nanoGPT-style loop (``jobs/pretrain.py`` runs it)

``train`` needs torch and transformers; import it from ``prox_spark.pretrain.train``.
"""

from prox_spark.pretrain.data import (
    Cursor,
    DataError,
    DataSettings,
    PackedDataset,
    Packer,
    TextSource,
    eval_blocks,
    make_encoder,
    read_texts_file,
)
from prox_spark.pretrain.delta import DeltaSource, TableSnapshot, open_table

__all__ = [
    "Cursor",
    "DataError",
    "DataSettings",
    "DeltaSource",
    "PackedDataset",
    "Packer",
    "TableSnapshot",
    "TextSource",
    "eval_blocks",
    "make_encoder",
    "open_table",
    "read_texts_file",
]
