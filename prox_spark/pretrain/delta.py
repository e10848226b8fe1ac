"""Reading the refined Delta table for pre-training, without Spark: one version, one refine run, resolved once.

``open_table(path, version)`` turns the table at a pinned version (latest at job start unless pinned) into a
``TableSnapshot``: the sorted data files, each with its deletion-vector keep mask, and the physical column
names (column mapping followed). ``resolve_run_id`` picks the refine run to read (``data.run_id``, else the
latest succeeded run in the ``runs`` table). ``DeltaSource`` streams a snapshot's files as the packer's
``Source`` (``prox_spark.pretrain.data``): only ``text``, ``kept`` and ``run_id`` are read, one pyarrow
record batch at a time, and only the run's rows with kept=true and a non-empty text come out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prox_spark.pretrain.data import DataError, DataSettings

__all__ = [
    "DataFile",
    "DeltaSource",
    "TableSnapshot",
    "latest_succeeded_run",
    "open_table",
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
