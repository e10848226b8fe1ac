"""Pre-training data: the refined Delta table at a pinned version, tokenized, packed, sharded, resumable.

Pipeline (one pass = one epoch; training loops over epochs until it has run its steps)::

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

import hashlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Protocol, Sequence
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

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
    "latest_succeeded_run",
    "open_table",
    "read_texts_file",
    "resolve_run_id",
    "runs_table_path",
]

#: reader features this reader handles itself (deletionVectors, columnMapping) or that do not change
#: what a ``text``/``kept`` scan returns (the log-level ones are handled by ``deltalake``)
SUPPORTED_READER_FEATURES = frozenset(
    {
        "deletionVectors",
        "columnMapping",
        "timestampNtz",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "variantType",
        "variantType-preview",
        "typeWidening",
        "typeWidening-preview",
    }
)


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


# --------------------------------------------------------------------------------------------- Delta


@dataclass(frozen=True, eq=False)
class DataFile:
    uri: str
    #: deletion-vector keep mask (True = row is live), None when the file has none
    keep: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class TableSnapshot:
    """A Delta table version resolved once: what training reads, and what the metrics/checkpoint record."""

    uri: str
    version: int
    files: tuple[DataFile, ...]
    #: physical (parquet) names of the text and kept columns (differ from the logical ones under column mapping)
    text_column: str
    kept_column: str
    #: the refine run whose rows are read (None: every row, for tables that are not the job's)
    run_id: str | None = None
    #: physical name of the run id column (None when ``run_id`` is None)
    run_column: str | None = None

    @property
    def fingerprint(self) -> str:
        """sha256 of the run id and the sorted file list: a resumed run checks it reads the same rows."""
        digest = hashlib.sha256()
        if self.run_id is not None:
            digest.update(f"run_id={self.run_id}".encode())
            digest.update(b"\0")
        for data_file in self.files:
            digest.update(data_file.uri.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:16]


def open_table(
    path: str,
    version: int | None = None,
    *,
    storage_options: dict | None = None,
    text_column: str = "text",
    kept_column: str = "kept",
    run_id: str | None = None,
    run_column: str = "run_id",
) -> TableSnapshot:
    """Resolve ``path`` at ``version`` (None or -1: latest now) into a fixed, sorted list of data files.

    With ``run_id`` only that refine run's rows are read: files whose ``run_column`` statistics rule the
    run out are skipped, and the rows of the others are filtered one by one (a compacted file may hold
    several runs). ``DataError`` when the run has no rows at this version."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    if not path:
        raise DataError("data.table is empty: set it to the refined Delta table's path")
    if version == -1:
        version = None
    if version is not None and version < 0:
        raise DataError(f"{path}: version must be >= 0 (or -1 for the latest), got {version}")
    try:
        table = DeltaTable(path, version=version, storage_options=storage_options or None)
    except TableNotFoundError:
        raise DataError(f"{path}: no Delta table there (no _delta_log); is data.table the refined table's path?") from None
    except DeltaError as exc:
        if version is not None:
            latest = _latest_version(path, storage_options)
            if latest is not None and version > latest:
                raise DataError(f"{path}: version {version} does not exist (latest is {latest})") from None
            raise DataError(f"{path}: cannot read version {version} ({exc}); it may have been vacuumed/expired") from None
        raise DataError(f"{path}: cannot open the Delta table ({exc})") from None
    except (OSError, ValueError, OverflowError) as exc:
        raise DataError(f"{path}: cannot open the Delta table ({exc})") from None

    protocol = table.protocol()
    features = set(protocol.reader_features or ())
    if protocol.min_reader_version > 3 or features - SUPPORTED_READER_FEATURES:
        raise DataError(
            f"{path}@v{table.version()}: unsupported Delta reader protocol {protocol.min_reader_version} "
            f"with features {sorted(features - SUPPORTED_READER_FEATURES) or sorted(features)}"
        )
    fields = {f.name: f for f in table.schema().fields}
    partitions = set(table.metadata().partition_columns)
    physical = []
    for name in (text_column, kept_column) + ((run_column,) if run_id is not None else ()):
        if name not in fields:
            raise DataError(f"{path}@v{table.version()}: no column {name!r} (columns: {', '.join(fields)})")
        if name in partitions:
            raise DataError(f"{path}: column {name!r} is a partition column; only data columns are supported")
        physical.append(str(fields[name].metadata.get("delta.columnMapping.physicalName", name)))

    if run_id is None:
        uris = sorted(table.file_uris())
    else:
        uris = sorted(table.file_uris(file_pruning_predicate=[(run_column, "=", run_id)]))
        if not uris:
            raise DataError(f"{path}@v{table.version()}: no rows of run {run_id!r} (data.run_id)")
    masks: dict[str, np.ndarray] = {}
    if "deletionVectors" in features:
        dvs = pa.table(table.deletion_vectors()).to_pydict()
        for uri, selection in zip(dvs["filepath"], dvs["selection_vector"]):
            # deletion-vector paths are URL-encoded URIs (a partition value "a:b" is "a%253Ab" there, "a%3Ab" on disk)
            masks[_norm_uri(unquote(uri))] = np.asarray(selection, dtype=bool)
        unmatched = set(masks) - {_norm_uri(uri) for uri in uris}
        if unmatched:  # never read rows a deletion vector removed
            raise DataError(f"{path}@v{table.version()}: deletion vectors for unknown files {sorted(unmatched)[:3]}")
    files = tuple(DataFile(uri, masks.get(_norm_uri(uri))) for uri in uris)
    return TableSnapshot(
        str(table.table_uri), table.version(), files, physical[0], physical[1],
        run_id, physical[2] if run_id is not None else None,
    )


def runs_table_path(data: DataSettings) -> str:
    """The refine job's ``runs`` table: ``data.runs_table``, else the ``runs`` folder beside ``data.table``."""
    if data.runs_table:
        return data.runs_table
    return data.table.rstrip("/").rsplit("/", 1)[0] + "/runs" if "/" in data.table.rstrip("/") else "runs"


def latest_succeeded_run(runs_path: str, storage_options: dict | None = None) -> str:
    """The run id the refine job's ``runs`` table names as the current corpus: among the runs whose newest
    attempt succeeded, the one that finished last (``docs/current_corpus.sql`` is the same query in SQL)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    try:
        runs = DeltaTable(runs_path, storage_options=storage_options or None)
        names = {f.name for f in runs.schema().fields}
        columns = ["run_id", "status", "finished_at"] + (["attempt"] if "attempt" in names else [])
        rows = runs.to_pyarrow_table(columns=columns).to_pylist()
    except TableNotFoundError:
        raise DataError(
            f"data.run_id is empty and there is no runs table at {runs_path} to take the latest succeeded run "
            "from: set data.run_id (or data.runs_table)"
        ) from None
    except (DeltaError, OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{runs_path}: cannot read the runs table ({exc})") from None
    newest: dict[str, dict] = {}
    for row in rows:  # a row from before attempts were numbered is attempt 1
        held = newest.get(row["run_id"])
        if held is None or (row.get("attempt") or 1) > (held.get("attempt") or 1):
            newest[row["run_id"]] = row
    succeeded = [row for row in newest.values() if row["status"] == "succeeded" and row["finished_at"] is not None]
    if not succeeded:
        raise DataError(f"{runs_path}: no succeeded refine run to train on (set data.run_id to pick one)")
    return str(max(succeeded, key=lambda row: (row["finished_at"], row["run_id"]))["run_id"])


def resolve_run_id(data: DataSettings) -> str | None:
    """``data.run_id``, or the latest succeeded run of the ``runs`` table (resolved now; pin it after).

    None for a table without a ``data.run_column`` (not the refine job's: nothing to choose, every row is
    read) and for a missing table (``open_table`` then says so)."""
    if data.run_id:
        return data.run_id
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        fields = {f.name for f in DeltaTable(data.table, storage_options=data.storage_options or None).schema().fields}
    except (DeltaError, OSError, ValueError):  # TableNotFoundError is a DeltaError
        return None
    if data.run_column not in fields:
        return None
    return latest_succeeded_run(runs_table_path(data), data.storage_options)


def _latest_version(path: str, storage_options: dict | None) -> int | None:
    from deltalake import DeltaTable

    try:
        return DeltaTable(path, storage_options=storage_options or None).version()
    except Exception:  # noqa: BLE001 - only used to word an error message
        return None


def _norm_uri(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _open_input(uri: str):
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # local path (or a Windows drive letter)
        return _norm_uri(uri)
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(uri)
    return filesystem.open_input_file(inner)


class Source(Protocol):
    """Documents by (file, row); ``rows`` yields (row indices, texts) of kept, non-empty rows from ``start``."""

    def num_files(self) -> int: ...

    def rows(self, file: int, start: int, stride: int, offset: int) -> Iterator[tuple[np.ndarray, list[str]]]: ...


@dataclass(frozen=True, eq=False)
class DeltaSource:
    """Streams one file at a time, ``read_batch_rows`` rows per pyarrow batch, two columns only."""

    snapshot: TableSnapshot
    read_batch_rows: int = 256

    def num_files(self) -> int:
        return len(self.snapshot.files)

    def rows(self, file: int, start: int, stride: int, offset: int) -> Iterator[tuple[np.ndarray, list[str]]]:
        data_file = self.snapshot.files[file]
        try:
            handle = _open_input(data_file.uri)
            parquet = pq.ParquetFile(handle)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{data_file.uri}: cannot read data file of table version {self.snapshot.version} ({exc})") from None
        try:
            yield from self._rows(parquet, data_file, start, stride, offset)
        finally:
            parquet.close()
            if not isinstance(handle, str):
                handle.close()

    def _rows(self, parquet: pq.ParquetFile, data_file: DataFile, start: int, stride: int, offset: int):
        text_name, kept_name, run_name = self.snapshot.text_column, self.snapshot.kept_column, self.snapshot.run_column
        names = parquet.schema_arrow.names
        columns = [text_name, kept_name] + ([run_name] if run_name is not None else [])
        for name in columns:
            if name not in names:
                raise DataError(f"{data_file.uri}: column {name!r} missing from the data file")
        # skip whole row groups before `start`
        first_group, base = 0, 0
        meta = parquet.metadata
        while first_group < meta.num_row_groups and base + meta.row_group(first_group).num_rows <= start:
            base += meta.row_group(first_group).num_rows
            first_group += 1
        if first_group >= meta.num_row_groups:
            return
        batches = parquet.iter_batches(
            batch_size=self.read_batch_rows,
            row_groups=range(first_group, meta.num_row_groups),
            columns=columns,
            use_threads=False,
        )
        for batch in batches:
            lo, n = base, batch.num_rows
            base += n
            if base <= start:
                continue
            text = batch.column(text_name)
            kept = batch.column(kept_name)
            keep = pc.and_(kept, pc.not_equal(text, ""))
            if run_name is not None:
                keep = pc.and_(keep, pc.equal(batch.column(run_name), self.snapshot.run_id))
            mask = pc.fill_null(keep, False).to_numpy(zero_copy_only=False)
            rows = np.arange(lo, lo + n, dtype=np.int64)
            if start > lo:
                mask &= rows >= start
            if stride > 1:
                mask &= rows % stride == offset
            if data_file.keep is not None:
                live = data_file.keep[lo : lo + n]
                if len(live) < n:  # a selection vector may stop early: rows past its end are live
                    live = np.concatenate([live, np.ones(n - len(live), dtype=bool)])
                mask &= live
            index = np.flatnonzero(mask)
            if len(index):
                yield rows[index], text.take(pa.array(index)).to_pylist()


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
