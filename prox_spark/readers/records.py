"""What every reader yields: a :class:`Document` or a :class:`Quarantined` record - nothing else.

The product's rule: every input record ends up either as a document or as a quarantine record with a
machine-readable reason; nothing is silently lost and no bad data raises out of a reader. The readers
(``jsonl``, ``parquet``, ``warc``) are plain generators over ONE file so the Spark job can call them
inside ``mapInPandas`` (one task per file = the corpus' shard).

Also here: the helpers all readers share (document ids, text checks, capped raw strings, metadata JSON,
and :class:`InputStream`, a gzip-aware byte stream that reports truncation instead of hiding it).
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import hashlib
import json
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional, Union

from prox_spark.text import EMPTY_TEXT, count_lines

#: Documents whose text is larger than this (UTF-8 bytes) are quarantined as ``document_too_large``.
DEFAULT_MAX_TEXT_BYTES = 8 * 1024 * 1024
#: Documents with more lines than this are quarantined as ``too_many_lines``: a 5.3 MB page of 100k short
#: lines ran a 1 GB driver out of heap in the programs write (one op per line, whole programs per row)
DEFAULT_MAX_TEXT_LINES = 20_000
#: ``Quarantined.raw`` keeps at most this many bytes of input (then a marker saying how much there was).
MAX_RAW_BYTES = 64 * 1024
RAW_TRUNCATION_MARKER = "\n...[raw truncated: {total} bytes in all, first {kept} kept]"


class Reason:
    """Quarantine reason codes (short, stable, machine-readable; group and count by them)."""

    #: the file cannot be opened (record_index None) or stops being readable (I/O error, a WARC stream
    #: fastwarc cannot parse; record_index = where reading stopped, records before it were yielded)
    UNREADABLE_FILE = "unreadable_file"
    #: a parquet row group cannot be decoded; its rows are accounted for by this one record
    UNREADABLE_ROW_GROUP = "unreadable_row_group"
    #: a gzip stream ends (or is corrupt) mid-member; every complete record before it was yielded
    TRUNCATED_GZIP = "truncated_gzip"
    INVALID_UTF8 = "invalid_utf8"
    #: text decoded from JSON ``\\ud800``-style escapes holds lone surrogates (not encodable as UTF-8)
    INVALID_UNICODE = "invalid_unicode"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TEXT = "missing_text"
    TEXT_NOT_STRING = "text_not_string"
    EMPTY_TEXT = EMPTY_TEXT  # the same reason in every table (``prox_spark.text``)
    DOCUMENT_TOO_LARGE = "document_too_large"
    #: more lines than ``input.max_text_lines`` (programs address lines: their size grows with the count)
    TOO_MANY_LINES = "too_many_lines"
    #: WARC record whose block is shorter than its Content-Length (file cut mid-record)
    TRUNCATED_WARC_RECORD = "truncated_warc_record"
    #: WARC record whose header fastwarc could not parse (its type is unknown)
    MALFORMED_WARC_RECORD = "malformed_warc_record"
    #: WARC response whose block is not an HTTP message (no status line / no end of headers)
    MALFORMED_HTTP = "malformed_http"
    #: WARC response with a non-2xx HTTP status (redirects, error pages)
    HTTP_STATUS = "http_status"
    #: WARC response whose Content-Type is not HTML
    NOT_HTML = "not_html"
    #: HTTP Content-Encoding / Transfer-Encoding that cannot be undone
    BAD_CONTENT_ENCODING = "bad_content_encoding"
    #: an unexpected error while converting one record (a bug or a library failure); detail says which
    RECORD_ERROR = "record_error"


@dataclass(frozen=True)
class Document:
    """One document ready for refining.

    ``doc_id`` is the record's id field when it is a non-empty string or an integer, else
    :func:`content_doc_id` of the text (``sha256(text)`` hex, first 32 characters). Content ids make
    identical texts share an id: deduplication is the job's concern, not the reader's.
    ``record_index`` is the record's position in ``source_file`` (0-based; the line number for JSON
    Lines, the row number for parquet, the record ordinal for WARC).
    ``metadata_json`` is a JSON object (string) of every other field of the record.
    """

    doc_id: str
    text: str
    source_file: str
    record_index: int
    url: Optional[str]
    metadata_json: str


@dataclass(frozen=True)
class Quarantined:
    """One input record (or file-level failure) that did not become a document, and why.

    ``raw`` is the record as found, as a string (invalid UTF-8 bytes written as ``\\xNN``), capped at
    :data:`MAX_RAW_BYTES` with a marker. ``reason`` is a :class:`Reason` code, ``detail`` a human message.
    ``record_index`` is the failing record's position, or where reading stopped for failures that end
    the file early (``truncated_gzip``, ``unreadable_file``); None when the file could not be opened.
    ``doc_id`` is the record's own id when it had a usable one (a ``missing_text`` record can still be
    traced back to its source document), else None.
    """

    source_file: str
    record_index: Optional[int]
    raw: str
    reason: str
    detail: str
    doc_id: Optional[str] = None


Record = Union[Document, Quarantined]


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------


def content_doc_id(text: str) -> str:
    """Content-derived id: ``sha256(text as UTF-8)`` hex digest, first 32 characters (128 bits)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def usable_id(value: Any) -> Optional[str]:
    """The record's own id as a string, or None when it cannot serve as doc_id.

    Non-empty (not whitespace-only) strings are kept as they are; integers (not booleans) become their
    decimal form. Anything else (null, floats, lists, objects, strings with lone surrogates) is refused.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value
    return None


def cap_raw(raw: Union[bytes, str, None], limit: int = MAX_RAW_BYTES) -> str:
    """The raw record as a string of at most ``limit`` input bytes (or characters) plus a marker.

    Bytes are decoded as UTF-8 with ``backslashreplace`` so invalid bytes stay visible (``\\xff``).
    """
    if raw is None:
        return ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        total = len(raw)
        text = raw[:limit].decode("utf-8", "backslashreplace")
        if total > limit:
            text += RAW_TRUNCATION_MARKER.format(total=total, kept=limit)
        return text
    text = str(raw)
    if len(text) > limit:
        text = text[:limit] + RAW_TRUNCATION_MARKER.format(total=len(text), kept=limit).replace(
            "bytes", "characters"
        )
    # a str may hold lone surrogates (JSON escapes): Arrow cannot store them, so escape them
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def check_text(
    text: str, max_text_bytes: int, max_text_lines: int = DEFAULT_MAX_TEXT_LINES
) -> Optional[tuple[str, str]]:
    """Validate a document text: None when fine, else ``(reason, detail)``.

    Checks, in order: whitespace-only (``empty_text``), larger than ``max_text_bytes`` UTF-8 bytes
    (``document_too_large``), more than ``max_text_lines`` lines (``too_many_lines``), lone surrogates
    (``invalid_unicode``).
    """
    if not text or text.isspace():
        return Reason.EMPTY_TEXT, f"text is empty or whitespace only ({len(text)} characters)"
    n_chars = len(text)
    if n_chars > max_text_bytes:  # every character is at least one UTF-8 byte
        return (
            Reason.DOCUMENT_TOO_LARGE,
            f"text has {n_chars} characters (at least as many UTF-8 bytes), over the limit of "
            f"{max_text_bytes} bytes",
        )
    n_lines = count_lines(text)
    if n_lines > max_text_lines:
        return (
            Reason.TOO_MANY_LINES,
            f"text has {n_lines} lines, over the limit of {max_text_lines} lines (input.max_text_lines)",
        )
    try:
        n_bytes = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return (
            Reason.INVALID_UNICODE,
            f"text holds a lone surrogate at character {exc.start} (not encodable as UTF-8)",
        )
    if n_bytes > max_text_bytes:
        return (
            Reason.DOCUMENT_TOO_LARGE,
            f"text is {n_bytes} UTF-8 bytes, over the limit of {max_text_bytes} bytes",
        )
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def metadata_json(fields: dict) -> str:
    """JSON object text for ``Document.metadata_json`` (non-JSON values such as timestamps, decimals
    and bytes become strings; falls back to ASCII escapes if a value holds lone surrogates)."""
    text = json.dumps(fields, ensure_ascii=False, default=_json_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(fields, ensure_ascii=True, default=_json_default)
    return text


def describe_exception(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# InputStream: plain or gzip bytes, with truncation reported instead of hidden
# --------------------------------------------------------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"


class InputStream:
    """A read-only binary stream over one file that transparently gunzips (multi-member too).

    Unlike :mod:`gzip` it never raises for a truncated or corrupt gzip stream and unlike fastwarc's
    own reader it never hides one: the stream ends early and :attr:`error` says where and why.
    Everything decompressed before the break is delivered. Decompression is bounded per ``read`` so a
    gzip bomb cannot blow up memory by itself.

    ``gzip=None`` sniffs the first two bytes. :attr:`member_starts` (gzip only) pairs the uncompressed
    and compressed offsets where each gzip member starts (as Common Crawl indexes address records);
    use :meth:`compressed_offset_of` to map an uncompressed position back. Only kept with
    ``track_members=True``; lookups must come in increasing position order (older pairs are pruned).
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        *,
        gzip: Optional[bool] = None,
        chunk_size: int = 1 << 20,
        track_members: bool = False,
    ) -> None:
        self._raw = fileobj
        self._chunk = max(1, chunk_size)
        self._pending = b""  # compressed bytes read but not yet fed to a decompressor
        self._pending_off = 0  # compressed offset of _pending[0]
        self._decomp: Optional[Any] = None
        self._member_start_c = 0
        self._out = b""  # decompressed bytes, returned up to _out_off
        self._out_off = 0
        self._pos = 0  # uncompressed bytes returned to the caller so far
        self._produced = 0  # uncompressed bytes produced so far
        self._eof = False
        self._tail = b""
        #: None, or a human message saying where and why the stream broke off
        self.error: Optional[str] = None
        #: the matching reason code: ``truncated_gzip`` (cut or corrupt gzip) or ``unreadable_file`` (I/O)
        self.error_reason: Optional[str] = None
        self._track = track_members
        #: (uncompressed offset, compressed offset) where each gzip member starts (``track_members``)
        self.member_starts: deque = deque()
        if gzip is None:
            while len(self._pending) < 2 and not self._eof:
                more = self._read_raw()
                if not more:
                    break
                self._pending += more
            gzip = self._pending[:2] == GZIP_MAGIC
        self.is_gzip = bool(gzip)

    # -- file-like protocol (what fastwarc and the line splitter use) ---------------------------------

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._out[self._out_off:]]
            self._out, self._out_off = b"", 0
            while True:
                chunk = self._next_chunk()
                if not chunk:
                    break
                parts.append(chunk)
            data = b"".join(parts)
        else:
            # _out is consumed through an offset: slicing it per read would copy the rest each time
            while len(self._out) - self._out_off < size and not self._eof:
                chunk = self._next_chunk()
                if not chunk:
                    break
                rest = self._out[self._out_off:]
                self._out, self._out_off = (rest + chunk if rest else chunk), 0
            data = self._out[self._out_off : self._out_off + size]
            self._out_off += len(data)
        self._pos += len(data)
        if data:
            self._tail = (self._tail + data[-4:])[-4:]
        return data

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if (whence == 0 and offset == self._pos) or (whence == 1 and offset == 0):
            return self._pos
        raise OSError("InputStream is not seekable")

    def close(self) -> None:  # the caller owns the underlying file
        pass

    # -- extras -----------------------------------------------------------------------------------

    @property
    def tail(self) -> bytes:
        """The last (up to) 4 bytes returned by :meth:`read`."""
        return self._tail

    @property
    def compressed_pos(self) -> int:
        """Compressed bytes consumed by the decompressor so far (== position for plain files)."""
        return self._pending_off

    def compressed_offset_of(self, position: int) -> Optional[int]:
        """Compressed offset of the gzip member holding uncompressed ``position`` (None if unknown)."""
        if not self.is_gzip:
            return position
        starts = self.member_starts
        while len(starts) > 1 and starts[1][0] <= position:
            starts.popleft()
        if starts and starts[0][0] <= position:
            return starts[0][1]
        return None

    # -- internals --------------------------------------------------------------------------------

    def _fail(self, message: str, reason: str = Reason.TRUNCATED_GZIP) -> None:
        self.error = message
        self.error_reason = reason
        self._eof = True

    def _read_raw(self) -> bytes:
        try:
            return self._raw.read(self._chunk)
        except OSError as exc:
            self._fail(
                f"read error at file offset {self._pending_off + len(self._pending)}: {describe_exception(exc)}",
                Reason.UNREADABLE_FILE,
            )
            return b""

    def _next_chunk(self) -> bytes:
        """The next piece of (decompressed) data, or b"" at the end (clean or not)."""
        while not self._eof:
            if not self._pending:
                self._pending = self._read_raw()
            if not self.is_gzip:
                data, self._pending = self._pending, b""
                self._pending_off += len(data)
                if not data:
                    self._eof = True
                return data
            if self._decomp is None:  # between members
                if not self._pending:
                    self._eof = True  # clean end after a complete member
                    return b""
                stripped = self._pending.lstrip(b"\x00")  # zero padding between/after members
                if not stripped:
                    self._pending_off += len(self._pending)
                    self._pending = b""
                    continue
                self._pending_off += len(self._pending) - len(stripped)
                self._pending = stripped
                if len(self._pending) < 2:
                    more = self._read_raw()
                    if more:
                        self._pending += more
                        continue
                if self._pending[:2] != GZIP_MAGIC:
                    self._fail(
                        f"gzip stream corrupt: no gzip member header at compressed offset "
                        f"{self._pending_off} after {self._produced} decompressed bytes"
                    )
                    return b""
                self._decomp = zlib.decompressobj(31)
                self._member_start_c = self._pending_off
                if self._track:
                    self.member_starts.append((self._produced, self._pending_off))
            if not self._pending:
                tail = self._decomp.flush()
                self._fail(
                    f"gzip stream truncated: compressed data ends mid-member (member starts at "
                    f"compressed offset {self._member_start_c}, file ends at {self._pending_off}) "
                    f"after {self._produced + len(tail)} decompressed bytes"
                )
                self._produced += len(tail)
                return tail
            fed = self._pending
            try:
                out = self._decomp.decompress(fed, 4 * self._chunk)
            except zlib.error as exc:
                self._fail(
                    f"gzip stream corrupt: {exc} in member starting at compressed offset "
                    f"{self._member_start_c} after {self._produced} decompressed bytes"
                )
                return b""
            if self._decomp.eof:
                rest = self._decomp.unused_data
                self._decomp = None
            else:
                rest = self._decomp.unconsumed_tail
            self._pending_off += len(fed) - len(rest)
            self._pending = rest
            if out:
                self._produced += len(out)
                return out
        return b""
