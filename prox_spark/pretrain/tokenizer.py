"""The run's tokenizer: ``data.tokenizer`` as it is, or, with ``data.tokenizer_train_vocab``, a byte-level BPE
trained once on the pinned table's first kept texts when that file does not exist yet (rank 0 trains it, every
rank then loads the same file).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist

from prox_spark.pretrain.data import DataError, DataSettings
from prox_spark.pretrain.delta import DeltaSource, TableSnapshot
from prox_spark.pretrain.distributed import Dist

log = logging.getLogger("prox_spark.pretrain")


def prepare_tokenizer(data: DataSettings, snapshot: TableSnapshot, env: Dist) -> tuple[Any, int]:
    """The tokenizer (trained first where the settings ask for it) and its end-of-sequence id."""
    from prox_spark.models import load_tokenizer

    if env.main and data.tokenizer_train_vocab > 0 and not _tokenizer_exists(data.tokenizer):
        train_tokenizer_on(snapshot, data, env)
    if env.ddp:
        dist.barrier()
    try:
        tokenizer = load_tokenizer(data.tokenizer)
    except FileNotFoundError as exc:
        raise DataError(f"data.tokenizer: {exc}") from None
    eos_id = tokenizer.token_to_id(data.eos_token)
    if eos_id is None:
        raise DataError(f"data.eos_token {data.eos_token!r} is not in the tokenizer's vocabulary")
    return tokenizer, eos_id


def _tokenizer_exists(path: str) -> bool:
    from prox_spark.models import TOKENIZER_FILE

    target = Path(path)
    return target.is_file() or (target / TOKENIZER_FILE).is_file()


def train_tokenizer_on(snapshot, data: DataSettings, env: Dist) -> Path:
    """Train and save a byte-level BPE on the pinned table's first kept texts (``data.tokenizer_train_*``)."""
    from prox_spark.models import save_tokenizer, train_tokenizer

    source = DeltaSource(snapshot, data.read_batch_rows)

    def texts():
        seen = 0
        for file in range(source.num_files()):
            for _, batch in source.rows(file, 0, 1, 0):
                for text in batch:
                    if seen >= data.tokenizer_train_docs:
                        return
                    seen += 1
                    yield text

    tokenizer = train_tokenizer(texts(), data.tokenizer_train_vocab)
    target = Path(data.tokenizer)
    path = save_tokenizer(tokenizer, target.parent if target.suffix == ".json" else target)
    if target.suffix == ".json" and path != target:
        os.replace(path, target)
        path = target
    log.info("trained a %d-token tokenizer on %s v%d -> %s", tokenizer.get_vocab_size(), snapshot.uri, snapshot.version, path)
    return path
