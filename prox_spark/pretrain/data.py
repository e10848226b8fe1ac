"""Pre-training data: the refined Delta table at a pinned version, tokenized, packed, sharded, resumable.

Pipeline (one pass = one epoch; training loops over epochs until it has run its steps); the first three
steps are ``prox_spark.pretrain.delta`` (``open_table``, ``DeltaSource``), the rest is this module::

    DeltaTable(path, version=v)     resolved ONCE at start (latest unless pinned); the version is recorded
      + one refine run              ``data.run_id``, else the latest succeeded run in the ``runs`` table
      -> sorted data files          the run's files (by their run_id stats); deletion vectors applied,
                                    column mapping followed; never Spark
      -> pyarrow record batches     only `text`, `kept`, `run_id`; the run's rows with kept=true and a
                                    non-empty text
      -> tokens + EOS               ``encode(text, add_special_tokens=False)`` (no BOS) + ``eos_id``
      -> blocks of block_size + 1   remainder carried across documents; windowed shuffle (optional)
      -> {"tokens", "cursor"}       per (DDP rank, dataloader worker) shard

Packing convention (prox-reference.md §5.7, TinyLlama ``prepare_web``): blocks are **disjoint** slices of
``block_size + 1`` consecutive tokens of the document stream; there is no overlap between blocks. The
model reads ``tokens[:-1]`` and predicts ``tokens[1:]``, so the pair (last token of block k, first token
of block k+1) is the one prediction per block that is never trained on. Concatenating the blocks of a
pass, in order and without shuffling, plus the pass's ``tail`` (the last < block_size + 1 tokens, dropped
and counted) gives back exactly the concatenation of every tokenized document + EOS: no token is lost or
duplicated.

Sharding: a pass is split into ``world_size * num_workers`` shards (shard = rank * workers + worker).
When the table has at least as many files as there are shards, whole files go round robin (a shard only
reads its own files); otherwise every shard reads every file and keeps rows ``(row + file position) %
shards == shard``. Files are taken in sorted order; with shuffling on, the file order is permuted per
epoch with ``(seed, epoch)``.

Shuffling: ``shuffle_buffer = W > 1`` fills a window of W consecutive blocks and yields it in a
permutation drawn from ``(seed, epoch, shard, window)``. Unlike a reservoir buffer, a window is a pure
function of where it starts, so the stream position is a handful of integers (a ``Cursor``): resuming
re-reads at most one window and continues with exactly the blocks an uninterrupted run would have seen.

Every sample carries the cursor *after* it; the trainer keeps the last cursor of each shard and puts
them in its checkpoint (``PackedDataset(start=...)`` resumes). Nothing ever holds more than one record
batch of text, one window of blocks and the current document's tokens.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

__all__ = [
    "Cursor",
    "DataError",
    "DataSettings",
    "PackedDataset",
    "Packer",
    "TextSource",
    "eval_blocks",
    "make_encoder",
    "read_texts_file",
]


class DataError(RuntimeError):
    """The training data cannot be read as asked (missing table, bad version, unsupported table, too small)."""


@dataclass(frozen=True)
class DataSettings:
    """``data:`` section of the pre-training config."""

    #: Delta table of the refined corpus (local path or a URI pyarrow can open: s3://, gs://, hdfs://)
    table: str = ""
    #: table version to read; -1: the latest at job start, resolved once and then pinned (a resume keeps
    #: the checkpoint's version)
    version: int = -1
    #: the refine run to train on: ``refined`` keeps every run's rows, and reading them all would mix
    #: corpora (and repeat every document once per run). "": the latest succeeded run in ``runs_table``,
    #: resolved once at start and kept by every resume
    run_id: str = ""
    #: the refine job's ``runs`` table ("": the ``runs`` folder next to ``table``)
    runs_table: str = ""
    run_column: str = "run_id"
    #: passed to ``deltalake.DeltaTable`` (object-store credentials and endpoints)
    storage_options: dict = field(default_factory=dict)
    text_column: str = "text"
    kept_column: str = "kept"
    #: ``tokenizer.json`` (file or the folder holding it)
    tokenizer: str = ""
    #: > 0: when ``tokenizer`` does not exist, train a byte-level BPE of this vocabulary size on the pinned
    #: table's first ``tokenizer_train_docs`` kept texts and save it there (local runs; production points
    #: ``tokenizer`` at an existing file)
    tokenizer_train_vocab: int = 0
    tokenizer_train_docs: int = 20000
    eos_token: str = "</s>"
    #: sequence length the model sees; blocks hold block_size + 1 tokens
    block_size: int = 2048
    #: blocks per shuffle window (1: no shuffling, files in sorted order)
    shuffle_buffer: int = 1
    #: DataLoader worker processes per rank (0: read in the training process)
    num_workers: int = 0
    #: rows per pyarrow record batch (memory bound: one batch of text per shard)
    read_batch_rows: int = 256
    #: seed of the file-order and window permutations
    seed: int = 0


class Cursor(NamedTuple):
    """Where a shard's stream continues: window ``window`` of ``epoch`` starts at token ``token`` of row
    ``row`` of the shard's ``file``-th file, and its first ``consumed`` blocks were already used."""

    epoch: int = 0
    window: int = 0
    file: int = 0
    row: int = 0
    token: int = 0
    consumed: int = 0


# ------------------------------------------------------------------------------------------ sources


class Source(Protocol):
    """Documents by (file, row); ``rows`` yields (row indices, texts) of kept, non-empty rows from ``start``."""

    def num_files(self) -> int: ...

    def rows(self, file: int, start: int, stride: int, offset: int) -> Iterator[tuple[np.ndarray, list[str]]]: ...


@dataclass(frozen=True, eq=False)
class TextSource:
    """A list of texts as one file (held-out evaluation, tests); empty texts are skipped like dropped rows."""

    texts: Sequence[str]

    def num_files(self) -> int:
        return 1

    def rows(self, file: int, start: int, stride: int, offset: int) -> Iterator[tuple[np.ndarray, list[str]]]:
        rows = [r for r in range(start, len(self.texts)) if self.texts[r] and r % stride == offset]
        if rows:
            yield np.asarray(rows, dtype=np.int64), [self.texts[r] for r in rows]


# ------------------------------------------------------------------------------------------ packing

Encode = Callable[[list[str]], list[np.ndarray]]


def make_encoder(tokenizer_json: str, eos_id: int) -> Encode:
    """``texts -> token arrays``: no BOS (``add_special_tokens=False``), EOS appended, int32."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)

    def encode(texts: list[str]) -> list[np.ndarray]:
        out = []
        for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
            ids = np.empty(len(encoding.ids) + 1, dtype=np.int32)
            ids[:-1] = encoding.ids
            ids[-1] = eos_id
            out.append(ids)
        return out

    return encode


#: one document's tokens as the packer sees them: (file position, row, offset of tokens[0], tokens)
Segment = tuple[int, int, int, np.ndarray]


class Packer:
    """Packs segments into ``block_len``-token blocks, optionally shuffled per window; see the module doc.

    Iterating yields ``(block, cursor_after)``. After exhaustion ``tail`` holds the leftover tokens
    (fewer than ``block_len``); ``tokens_in`` / ``blocks_out`` count what went through.
    """

    def __init__(
        self,
        segments: Iterable[Segment],
        block_len: int,
        *,
        window: int = 1,
        epoch: int = 0,
        start_window: int = 0,
        skip: int = 0,
        permutation: Callable[[int, int], np.ndarray] | None = None,
    ):
        if block_len < 2:
            raise ValueError(f"block_len must be >= 2, got {block_len}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.segments = segments
        self.block_len, self.window, self.epoch = block_len, window, epoch
        self.start_window, self.skip = start_window, skip
        self.permutation = permutation
        self.tail = np.zeros(0, dtype=np.int32)
        self.tokens_in = 0
        self.blocks_out = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, Cursor]]:
        L = self.block_len
        pending: deque[list] = deque()  # [file, row, offset, tokens]
        have = 0
        source = iter(self.segments)
        done = False

        def fill() -> int:
            nonlocal have, done
            while have < L and not done:
                try:
                    file, row, offset, tokens = next(source)
                except StopIteration:
                    done = True
                    break
                if len(tokens):
                    pending.append([file, row, offset, tokens])
                    have += len(tokens)
                    self.tokens_in += len(tokens)
            return have

        def cut() -> np.ndarray:
            nonlocal have
            block = np.empty(L, dtype=np.int32)
            filled = 0
            while filled < L:
                piece = pending[0]
                take = min(L - filled, len(piece[3]))
                block[filled : filled + take] = piece[3][:take]
                filled += take
                if take == len(piece[3]):
                    pending.popleft()
                else:
                    piece[2] += take
                    piece[3] = piece[3][take:]
            have -= L
            return block

        window_index, skip = self.start_window, self.skip
        while fill() >= L:
            start = (pending[0][0], pending[0][1], pending[0][2])
            blocks = []
            while len(blocks) < self.window and fill() >= L:
                blocks.append(cut())
            if self.window > 1 and self.permutation is not None:
                order = self.permutation(window_index, len(blocks))
            else:
                order = range(len(blocks))
            for j in range(skip, len(blocks)):
                self.blocks_out += 1
                yield blocks[order[j]], Cursor(self.epoch, window_index, *start, j + 1)
            skip = 0
            window_index += 1
        self.tail = np.concatenate([p[3] for p in pending]) if pending else np.zeros(0, dtype=np.int32)


def epoch_plan(n_files: int, epoch: int, shard: int, n_shards: int, *, seed: int, shuffle: bool) -> list[tuple[int, int, int]]:
    """The files shard ``shard`` reads in ``epoch``: ``(file index, row stride, row offset)`` in order."""
    order = list(range(n_files))
    if shuffle:
        order = [int(i) for i in np.random.default_rng([seed, epoch]).permutation(n_files)]
    if n_files >= n_shards:
        return [(f, 1, 0) for f in order[shard::n_shards]]
    return [(f, n_shards, (shard - position) % n_shards) for position, f in enumerate(order)]


def shard_segments(source: Source, encode: Encode, plan: list[tuple[int, int, int]], start: Cursor) -> Iterator[Segment]:
    """Tokenized documents of a shard's plan from ``start`` (file position, row, token offset)."""
    for position in range(start.file, len(plan)):
        file, stride, offset = plan[position]
        first_row = start.row if position == start.file else 0
        for rows, texts in source.rows(file, first_row, stride, offset):
            for row, tokens in zip(rows.tolist(), encode(texts)):
                skip = start.token if (position == start.file and row == start.row) else 0
                yield position, row, skip, tokens[skip:]


class PackedDataset(IterableDataset):
    """Blocks of ``block_size + 1`` tokens for one DDP rank, split over its DataLoader workers.

    Yields ``{"tokens": LongTensor[block_size + 1], "cursor": LongTensor[7]}`` where cursor is
    ``(shard, *Cursor)`` after the sample. ``epochs=None`` repeats forever (training); an int stops after
    that many passes. ``start`` maps shard -> Cursor to resume; ``rotation`` shifts which worker serves
    which shard so a resumed DataLoader (which always starts at worker 0) continues the round robin where
    the interrupted one stopped (pass ``micro_batches_consumed % workers``).
    """

    def __init__(
        self,
        source: Source,
        encode_factory: Callable[[], Encode],
        block_size: int,
        *,
        shuffle_buffer: int = 1,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        start: dict[int, Cursor] | None = None,
        rotation: int = 0,
        epochs: int | None = None,
    ):
        super().__init__()
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.source, self.encode_factory = source, encode_factory
        self.block_len = block_size + 1
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self.rank, self.world_size = rank, world_size
        self.workers = max(1, num_workers)
        self.start = dict(start or {})
        self.rotation = rotation % self.workers
        self.epochs = epochs

    @property
    def n_shards(self) -> int:
        return self.world_size * self.workers

    def shard_of_worker(self, worker: int) -> int:
        return self.rank * self.workers + (worker + self.rotation) % self.workers

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if (info.num_workers if info is not None else 1) != self.workers:
            raise DataError(f"dataset built for {self.workers} workers, DataLoader runs {info.num_workers if info else 0}")
        shard = self.shard_of_worker(worker)
        for block, cursor in self.blocks(shard, self.start.get(shard, Cursor())):
            yield {
                "tokens": torch.from_numpy(block.astype(np.int64)),
                "cursor": torch.tensor((shard, *cursor), dtype=torch.int64),
            }

    def blocks(self, shard: int, cursor: Cursor = Cursor()) -> Iterator[tuple[np.ndarray, Cursor]]:
        """One shard's stream (no torch): ``(block, cursor after it)``."""
        encode = self.encode_factory()
        shuffle = self.shuffle_buffer > 1
        while self.epochs is None or cursor.epoch < self.epochs:
            epoch = cursor.epoch
            plan = epoch_plan(self.source.num_files(), epoch, shard, self.n_shards, seed=self.seed, shuffle=shuffle)
            packer = Packer(
                shard_segments(self.source, encode, plan, cursor),
                self.block_len,
                window=self.shuffle_buffer,
                epoch=epoch,
                start_window=cursor.window,
                skip=cursor.consumed,
                permutation=lambda w, n, e=epoch: np.random.default_rng([self.seed, e, shard, w]).permutation(n),
            )
            yield from packer
            if packer.blocks_out == 0 and cursor == Cursor(epoch):
                raise DataError(
                    f"shard {shard} of {self.n_shards} got no complete block of {self.block_len} tokens in a whole pass "
                    f"({packer.tokens_in} tokens): the table is too small for block_size={self.block_len - 1} with "
                    f"{self.world_size} rank(s) x {self.workers} worker(s)"
                )
            cursor = Cursor(epoch + 1)


def eval_blocks(texts: Iterable[str], encode: Encode, block_size: int, *, max_blocks: int = 0) -> list[np.ndarray]:
    """Held-out texts packed like training data (no shuffle); the tail is kept as a last, shorter block so
    every token but the first of each block is scored."""
    texts = list(texts)
    packer = Packer(shard_segments(TextSource(texts), encode, [(0, 1, 0)], Cursor()), block_size + 1)
    blocks = [block for block, _ in packer]
    if len(packer.tail) >= 2:
        blocks.append(packer.tail)
    return blocks[:max_blocks] if max_blocks > 0 else blocks


def read_texts_file(path: str | Path) -> list[str]:
    """Held-out texts: ``.jsonl`` / ``.jsonl.gz`` (field ``text``, one document per line), or any other file
    read as one document."""
    import gzip
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(f"eval file not found: {path}")
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        texts = []
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line).get("text")
                except (json.JSONDecodeError, AttributeError):
                    raise DataError(f"{path}:{number}: not a JSON object") from None
                if isinstance(text, str) and text:
                    texts.append(text)
        return texts
    return [path.read_text(encoding="utf-8")]
