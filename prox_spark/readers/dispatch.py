"""Pick the reader for a file, list a local corpus' files, and turn records into pandas frames.

The Spark job lists the input files on the driver (``udfs.input_files.list_input_files``: plain paths with
:func:`list_local_files` here, URIs through Spark's Hadoop FileSystem; :func:`detect_format`),
builds a DataFrame of paths (one row = one file = one task) and calls :func:`read_file` +
:func:`iter_record_frames` inside ``mapInPandas`` with :data:`RECORD_SPARK_DDL` as the output schema.
The output is ONE frame with a ``kind`` column so documents and quarantine records of a file travel
together; the job splits them by ``kind``::

    files = spark.createDataFrame([(p,) for p in list_input_files(conf.input.path, spark)], "path string")

    def read_files(batches):  # runs on the executors; plain Python inside
        for batch in batches:
            for path in batch["path"]:
                yield from iter_record_frames(read_file(path, conf.input.format, **opts))

    records = files.repartition(n_files).mapInPandas(read_files, schema=RECORD_SPARK_DDL)

Output columns (:data:`RECORD_COLUMNS`, :data:`RECORD_SPARK_DDL`):

=============== ======== ======================================================================
column          type     meaning
=============== ======== ======================================================================
kind            string   ``document`` or ``quarantine`` (never null)
doc_id          string   document id (quarantine: the record's own id when it had one, else null)
text            string   document text (null for quarantine)
source_file     string   the file the record came from (never null)
record_index    int64    position in the file (line / row / WARC record ordinal; for failures that
                         end the file early: where reading stopped); null when the file could
                         not be opened
url             string   document URL when known (null otherwise)
metadata_json   string   JSON object of the record's other fields (null for quarantine)
raw             string   the raw record, capped at 64 KiB (null for documents)
reason          string   quarantine reason code (null for documents)
detail          string   human-readable quarantine message (null for documents)
=============== ======== ======================================================================
"""

from __future__ import annotations

import glob as _glob
import inspect
import os
from typing import Any, Iterable, Iterator, Optional

import pandas as pd

from prox_spark.readers.jsonl import read_jsonl, read_parquet
from prox_spark.readers.records import Document, Quarantined, Record
from prox_spark.readers.warc import read_warc

#: file name endings -> format (checked longest first, case-insensitively)
FORMAT_EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".json.gz": "jsonl",
    ".parquet": "parquet",
    ".warc": "warc",
    ".warc.gz": "warc",
}
READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "warc": read_warc}
FORMATS = tuple(READERS)

RECORD_COLUMNS: tuple[str, ...] = (
    "kind",
    "doc_id",
    "text",
    "source_file",
    "record_index",
    "url",
    "metadata_json",
    "raw",
    "reason",
    "detail",
)
#: the records' schema as a Spark DDL string, for ``mapInPandas(fn, schema=RECORD_SPARK_DDL)``
RECORD_SPARK_DDL = (
    "kind string, doc_id string, text string, source_file string, record_index bigint, url string, "
    "metadata_json string, raw string, reason string, detail string"
)
KIND_DOCUMENT = "document"
KIND_QUARANTINE = "quarantine"


# --------------------------------------------------------------------------------------------------
# formats and files
# --------------------------------------------------------------------------------------------------


def detect_format(path: str | os.PathLike) -> str:
    """``jsonl`` | ``parquet`` | ``warc`` from the file name; ValueError for anything else."""
    name = os.path.basename(os.fspath(path)).lower()
    for ext in sorted(FORMAT_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return FORMAT_EXTENSIONS[ext]
    known = ", ".join(sorted(FORMAT_EXTENSIONS))
    raise ValueError(
        f"cannot tell the input format of {os.fspath(path)!r} from its name: expected one of {known} "
        f"(or set input.format to one of {', '.join(FORMATS)})"
    )


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def list_local_files(path_or_glob: str | os.PathLike) -> list[str]:
    """The input files of a corpus on a plain (local or FUSE-mounted) path, sorted: a single file, every file
    under a directory (recursively), or the files matching a glob (``**`` allowed). No Spark: the job lists a
    corpus with ``udfs.input_files.list_input_files``, which calls this for plain paths and Spark's Hadoop
    FileSystem for URIs (``s3://``, ``abfss://``, ...).

    Hidden and underscore-prefixed files and directories (``_SUCCESS``, ``_delta_log/``, ``.crc``
    files, ``.ipynb_checkpoints/``) are skipped, as Spark and Hadoop skip them. A path that does not
    exist, or a glob that matches nothing, raises FileNotFoundError (an empty run is a config error).
    Symbolic links are followed, but each real directory is walked once and each real file listed once
    (under its first path in sorted order): a link loop or a second link to the same data would
    otherwise list files again and again, and the job would read them twice.
    """
    spec = os.fspath(path_or_glob)
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(spec):
        return _walk_unique(spec)
    if _glob.has_magic(spec):
        matches = _glob.glob(spec, recursive=True)
        if not matches:
            raise FileNotFoundError(f"no input files match {spec!r}")
        literal_root = os.path.dirname(spec[: min(spec.find(c) for c in "*?[" if c in spec)])
        found = set()
        for match in matches:
            rel = os.path.relpath(match, literal_root) if literal_root else match
            if any(_hidden(part) for part in rel.split(os.sep) if part not in ("", ".", "..")):
                continue
            if os.path.isdir(match):
                found.update(list_local_files(match))
            elif os.path.isfile(match):
                found.add(match)
        return _unique_files(sorted(found))
    raise FileNotFoundError(f"input path does not exist: {spec!r}")


def _walk_unique(top: str) -> list[str]:
    """Files under ``top``, links followed, each real directory entered once, each real file kept once."""
    found: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        stat = os.stat(root)
        if (stat.st_dev, stat.st_ino) in seen_dirs:
            dirs[:] = []  # a loop back, or a second link to a directory already walked
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found.extend(os.path.join(root, f) for f in files if not _hidden(f))
    return _unique_files(sorted(found))


def _unique_files(paths: list[str]) -> list[str]:
    """``paths`` (sorted) without a second path to the same real file; dangling links are kept (the reader
    reports them as ``unreadable_file``)."""
    seen: set[tuple[int, int]] = set()
    unique = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            unique.append(path)
            continue
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            unique.append(path)
    return unique


def reader_options() -> frozenset:
    """Every keyword option some reader accepts."""
    return frozenset(
        name
        for reader in READERS.values()
        for name, p in inspect.signature(reader).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    )


def file_format(path: str | os.PathLike, fmt: Optional[str] = None) -> str:
    """The format :func:`read_file` reads ``path`` as: ``fmt``, or from the file's name when ``fmt`` is None or
    ``auto`` (ValueError for a name that says no format)."""
    return detect_format(path) if fmt in (None, "auto") else fmt


def read_file(path: str | os.PathLike, fmt: Optional[str] = None, **opts: Any) -> Iterator[Record]:
    """Documents and quarantine records of ONE file (``fmt`` None or ``auto``: from its name).

    ``opts`` go to the format's reader (``id_field``, ``text_field``, ``url_field``,
    ``max_text_bytes``, ...). Options that only another format's reader knows are ignored (so one
    config can serve a mixed corpus); an option no reader knows raises TypeError (a typo).
    """
    fmt = file_format(path, fmt)
    if fmt not in READERS:
        raise ValueError(
            f"unsupported input format {fmt!r} for {os.fspath(path)!r}: expected one of {', '.join(FORMATS)}"
            + (" (read Delta tables with Spark)" if fmt == "delta" else "")
        )
    unknown = set(opts) - reader_options()
    if unknown:
        raise TypeError(f"unknown reader option(s): {', '.join(sorted(unknown))}")
    reader = READERS[fmt]
    accepted = inspect.signature(reader).parameters
    return reader(path, **{k: v for k, v in opts.items() if k in accepted})


# --------------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------------


def _empty_columns() -> dict[str, list]:
    return {name: [] for name in RECORD_COLUMNS}


def _append(cols: dict[str, list], rec: Record) -> int:
    """Append one record; returns its approximate size in bytes (for batching)."""
    if isinstance(rec, Document):
        values = (KIND_DOCUMENT, rec.doc_id, rec.text, rec.source_file, rec.record_index, rec.url,
                  rec.metadata_json, None, None, None)
        size = len(rec.text) + len(rec.metadata_json)
    elif isinstance(rec, Quarantined):
        values = (KIND_QUARANTINE, rec.doc_id, None, rec.source_file, rec.record_index, None, None,
                  rec.raw, rec.reason, rec.detail)
        size = len(rec.raw) + len(rec.detail)
    else:
        raise TypeError(f"not a reader record: {type(rec).__name__}")
    for name, value in zip(RECORD_COLUMNS, values):
        cols[name].append(value)
    return size + 200


def _frame(cols: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(cols[name], dtype=object) for name in RECORD_COLUMNS})
    frame["record_index"] = pd.array(cols["record_index"], dtype="Int64")
    return frame


def iter_record_frames(
    records: Iterable[Record], *, max_rows: int = 2048, max_bytes: int = 64 << 20
) -> Iterator[pd.DataFrame]:
    """The records in pandas frames with :data:`RECORD_COLUMNS` (strings as ``object``, ``record_index`` as
    nullable ``Int64``) of at most ``max_rows`` rows / about ``max_bytes`` of text, so a large file never
    becomes one huge frame (what ``mapInPandas`` should yield). Yields nothing for no records."""
    cols = _empty_columns()
    rows = size = 0
    for rec in records:
        size += _append(cols, rec)
        rows += 1
        if rows >= max_rows or size >= max_bytes:
            yield _frame(cols)
            cols = _empty_columns()
            rows = size = 0
    if rows:
        yield _frame(cols)

