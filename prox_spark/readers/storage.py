"""Open an input file by local path or by URI (``s3://``, ``s3a://``, ``gs://``, ``abfss://``, ``dbfs:/``, ``file:``).

Spark lists cloud inputs on the driver through Hadoop's FileSystem (``udfs/input_files.py``); the tasks
that read them are plain Python, so they open the same URIs with ``pyarrow.fs`` (already a dependency:
S3, GCS, Azure and HDFS filesystems built in, credentials from the environment or instance role, as
the platforms provide them). Hadoop-only spellings are mapped to what pyarrow knows: ``s3a://`` and
``s3n://`` are S3, ``dbfs:/x`` is the Databricks FUSE mount ``/dbfs/x``, ``file:`` is a local path.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO
from urllib.parse import unquote, urlparse

#: a URI scheme of two or more characters (one letter before ``:`` is a Windows drive, not a scheme)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
#: Hadoop connector schemes that pyarrow knows under another name
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}


def uri_scheme(path: str | os.PathLike) -> str | None:
    """The lower-cased scheme of ``path`` (``s3``, ``file``, ``dbfs``...), None for a plain path."""
    match = _SCHEME.match(os.fspath(path))
    return match.group(1).lower() if match else None


def local_path(path: str | os.PathLike) -> str | None:
    """The local filesystem path ``path`` names (plain path, ``file:`` URI, ``dbfs:/`` on its FUSE mount),
    or None when it lives in remote storage.

    A URI is read as Spark lists files (``binaryFile``'s ``inputFiles()``, a row's ``_metadata.file_path``):
    percent-encoded, ``file:///tmp/in%20put%20%23%2541/a.jsonl`` for ``/tmp/in put #%41/a.jsonl``. A path a
    person typed is a Hadoop path, which is never percent-encoded: see ``hadoop_local_path`` (a Delta table's
    ``inputFiles()`` too spells its files decoded, which is why the job does not list tables with it)."""
    spec = os.fspath(path)
    scheme = uri_scheme(spec)
    if scheme is None:
        return spec
    if scheme == "file":
        return unquote(urlparse(spec).path)
    if scheme == "dbfs":
        return "/dbfs/" + unquote(urlparse(spec).path).lstrip("/")
    return None


def hadoop_local_path(path: str | os.PathLike) -> str | None:
    """The local filesystem path a Hadoop path names (``input.path`` as typed: ``file:/tmp/in put #%41``,
    which Hadoop's ``Path`` takes literally, ``#`` and ``%`` included), or None when it lives in remote storage."""
    spec = os.fspath(path)
    scheme = uri_scheme(spec)
    if scheme not in ("file", "dbfs"):
        return spec if scheme is None else None
    rest = spec[len(scheme) + 1:]
    if rest.startswith("//"):  # an authority (file://host/path, file:///path): the path starts at its next "/"
        slash = rest.find("/", 2)
        rest = rest[slash:] if slash >= 0 else "/"
    return rest if scheme == "file" else "/dbfs/" + rest.lstrip("/")


def arrow_location(path: str | os.PathLike) -> str:
    """``path`` as pyarrow opens it: a local path, or a URI with a scheme pyarrow knows (``s3a://`` → ``s3://``)."""
    local = local_path(path)
    if local is not None:
        return local
    spec = os.fspath(path)
    scheme = uri_scheme(spec) or ""
    alias = _SCHEME_ALIASES.get(scheme, scheme)
    return alias + spec[len(scheme):]


def open_input(path: str | os.PathLike) -> BinaryIO:
    """A seekable binary file for ``path``; raises ``OSError`` (pyarrow's errors subclass it) when it cannot
    be opened, which the readers turn into an ``unreadable_file`` quarantine record."""
    location = arrow_location(path)
    if uri_scheme(location) is None:
        return open(location, "rb")
    import pyarrow.fs as pafs

    try:
        filesystem, inner = pafs.FileSystem.from_uri(location)
    except (ValueError, TypeError) as exc:  # pyarrow: "Unrecognized filesystem type in URI"
        raise OSError(f"cannot open {os.fspath(path)!r}: {exc}") from exc
    return filesystem.open_input_file(inner)
