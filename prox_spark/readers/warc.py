"""WARC reader: HTML responses of one ``.warc`` / ``.warc.gz`` file -> full-page text documents.

Each ``response`` record becomes a :class:`Document` or a :class:`Quarantined` record; other record
types (request, metadata, warcinfo, revisit, resource, ...) are not documents and yield nothing.
``record_index`` is the 0-based ordinal of the record among all records of the file.

Text is extracted the way ProX wants it: the WHOLE page, menus, footers and all, line-structured like
Common Crawl WET (resiliparse ``extract_plain_text`` with ``main_content=False``, list bullets on,
alt texts and link targets off), so the refining model sees the noise it has to remove.

Steps per response record, each with its quarantine reason (a record fastwarc cannot type, i.e. a
WARC header it could not parse, is ``malformed_warc_record``):
  block shorter than its Content-Length -> ``truncated_warc_record``; block over ``max_record_bytes``
  -> ``document_too_large`` (not read); no HTTP status line / header end -> ``malformed_http``;
  non-2xx status -> ``http_status`` (unless ``only_2xx=False``); Content-Type not HTML ->
  ``not_html``; Transfer-/Content-Encoding (chunked, gzip, deflate, br) undone, failure ->
  ``bad_content_encoding``; charset from the HTTP Content-Type header (if the body really decodes with
  it), else ``resiliparse.parse.encoding.detect_encoding`` (HTML meta tag, then uchardet); nothing
  left after extraction -> ``empty_text``; text over ``max_text_bytes`` -> ``document_too_large``;
  more than ``max_text_lines`` lines -> ``too_many_lines``.

File-level failures: a file that cannot be opened, or whose WARC stream fastwarc cannot parse, yields
one ``unreadable_file`` record (after every record read before the failure). fastwarc's own gzip
reader silently stops at a truncated gzip member, so the file is decompressed here
(:class:`~prox_spark.readers.records.InputStream`) and a cut-off stream is reported: as
``truncated_warc_record`` when the last record is short, else as ``truncated_gzip``; a plain stream
that does not end with a record terminator (cut inside a WARC header) as ``truncated_warc_record``;
bytes the parser left unread at the end as ``unreadable_file``.

fastwarc and resiliparse are the ``warc`` extra (``pip install 'prox-spark[warc]'``), not base dependencies: without
them this module still imports (so do :mod:`prox_spark.readers` and the job), and :func:`read_warc` raises
:class:`WarcUnavailableError` naming the extra; the job's preflight and ``prox-spark clean`` check before reading.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import os
import re
import zlib
from typing import Iterator, Optional

from prox_spark.readers.records import (
    DEFAULT_MAX_TEXT_BYTES,
    DEFAULT_MAX_TEXT_LINES,
    MAX_RAW_BYTES,
    Document,
    InputStream,
    Quarantined,
    Reason,
    Record,
    cap_raw,
    check_text,
    content_doc_id,
    describe_exception,
    metadata_json,
)
from prox_spark.readers.storage import open_input

#: the extra that installs the WARC libraries (fastwarc, resiliparse); base installs read JSONL/Parquet/Delta only
WARC_EXTRA = "warc"

try:
    from fastwarc.stream_io import BrotliReader
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5
except ImportError as _exc:
    #: why WARC cannot be read here (None: it can): names the extra to install and the original import error
    WARC_UNAVAILABLE: Optional[str] = (
        f"reading WARC needs fastwarc and resiliparse (the '{WARC_EXTRA}' extra), which do not import here: "
        f"pip install 'prox-spark[{WARC_EXTRA}]' ({type(_exc).__name__}: {_exc})"
    )
    _MISSING_MODULE: Optional[str] = _exc.name
else:
    WARC_UNAVAILABLE = None
    _MISSING_MODULE = None


class WarcUnavailableError(ImportError):
    """WARC input without the ``warc`` extra (fastwarc, resiliparse); the message says what to install."""


def require_warc_support() -> None:
    """Raise :class:`WarcUnavailableError` when the WARC libraries are not installed."""
    if WARC_UNAVAILABLE is not None:
        raise WarcUnavailableError(WARC_UNAVAILABLE, name=_MISSING_MODULE)


HTML_MIME_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: resiliparse options: the full page as line-structured plain text (see the module docstring)
EXTRACT_OPTIONS = dict(
    preserve_formatting=True,
    main_content=False,
    list_bullets=True,
    alt_texts=False,
    links=False,
    form_fields=False,
    noscript=False,
)
_MAX_HTTP_HEADER_BYTES = 64 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';,\s]+)""", re.IGNORECASE)
_RECORD_TERMINATORS = (b"\r\n\r\n", b"\n\n")
#: what a record cut inside its WARC header looks like once fastwarc yields it (no/short block)
_CUT_HEADER_SHAPES = (Reason.MALFORMED_HTTP, Reason.MALFORMED_WARC_RECORD)


class _Reject(Exception):
    """A record that does not become a document: ``reason`` and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def default_max_record_bytes(max_text_bytes: int) -> int:
    """Default limit on a response block (HTTP headers + HTML, after decompression): 4x the text limit."""
    return 4 * max_text_bytes


def read_warc(
    path: str | os.PathLike,
    *,
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    max_text_lines: int = DEFAULT_MAX_TEXT_LINES,
    max_record_bytes: Optional[int] = None,
    only_2xx: bool = True,
    quirks_mode: bool = False,
) -> Iterator[Record]:
    """Read one WARC file (plain or gzip, sniffed) into documents and quarantine records.

    ``doc_id`` is the WARC-Record-ID (as written, e.g. ``<urn:uuid:...>``; the content hash if it is
    missing), ``url`` the WARC-Target-URI (angle brackets some writers add are stripped).
    ``metadata_json`` holds ``warc_record_id``, ``warc_date``, ``warc_offset`` (where the record starts
    in the file as stored: the gzip member offset for ``.warc.gz``, as in Common Crawl's index),
    ``warc_uncompressed_offset``, ``http_status``, ``content_type``, ``charset``, ``charset_source``
    (``http`` or ``detected``), ``html_bytes`` and, when present, ``content_encoding``, ``warc_trec_id``.

    ``record_index`` is the record's ordinal among ALL records of the file (0-based), so requests,
    metadata and warcinfo records keep their numbers without yielding anything. A record fastwarc
    cannot type (a WARC header it could not parse) is quarantined as ``malformed_warc_record``.
    ``quirks_mode`` is fastwarc's lenient parsing: it reads some malformed files (LF-only headers,
    wrong Content-Length) but silently skips what it cannot resync on, so it is off by default
    (strict parsing stops loudly with ``unreadable_file`` instead).

    Needs the ``warc`` extra: without fastwarc and resiliparse it raises :class:`WarcUnavailableError` when
    called, before opening the file.
    """
    require_warc_support()
    return _read_warc(
        path,
        max_text_bytes=max_text_bytes,
        max_text_lines=max_text_lines,
        max_record_bytes=max_record_bytes,
        only_2xx=only_2xx,
        quirks_mode=quirks_mode,
    )


def _read_warc(
    path: str | os.PathLike,
    *,
    max_text_bytes: int,
    max_text_lines: int,
    max_record_bytes: Optional[int],
    only_2xx: bool,
    quirks_mode: bool,
) -> Iterator[Record]:
    """:func:`read_warc`'s records, read lazily."""
    source = os.fspath(path)
    max_record = max_record_bytes if max_record_bytes is not None else default_max_record_bytes(max_text_bytes)
    try:
        fh = open_input(source)
    except OSError as exc:
        yield Quarantined(source, None, "", Reason.UNREADABLE_FILE, f"cannot open: {describe_exception(exc)}")
        return
    with fh:
        stream = InputStream(fh, track_members=True)
        index = 0
        last_short = False  # the last record yielded was reported as truncated
        try:
            # every record type, filtered here: fastwarc reports a record whose WARC header it could not
            # parse (e.g. LF-only line ends) as type "unknown"; with a response-only filter such a file
            # would silently yield nothing
            records = iter(
                ArchiveIterator(
                    stream,
                    record_types=WarcRecordType.any_type,
                    parse_http=False,
                    stream_detect=False,  # InputStream already decompresses (and reports truncation)
                    quirks_mode=quirks_mode,
                )
            )
        except MemoryError:
            raise
        except Exception as exc:
            yield Quarantined(source, None, "", Reason.UNREADABLE_FILE, f"cannot read as WARC: {describe_exception(exc)}")
            return
        held: Optional[Quarantined] = None  # a malformed record: is it the cut-off last one?
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except MemoryError:
                raise
            except Exception as exc:
                if held is not None:
                    yield held
                broke = f"; {stream.error}" if stream.error else ""
                yield Quarantined(
                    source,
                    index,
                    "",
                    Reason.UNREADABLE_FILE,
                    f"WARC stream unreadable after {index} records (uncompressed offset "
                    f"{stream.tell()}): {describe_exception(exc)}{broke}",
                )
                return
            if held is not None:
                yield held
                held = None
            last_short = False
            record_type = record.record_type
            if record_type == WarcRecordType.response:
                out = _record_to_output(
                    record, stream, source, index, max_text_bytes, max_record, only_2xx, max_text_lines
                )
            elif record_type in (WarcRecordType.unknown, WarcRecordType.no_type):
                out = _malformed(record, source, index)
            else:  # request, metadata, warcinfo, revisit, resource, ...: not documents
                index += 1
                continue
            index += 1
            if isinstance(out, Quarantined) and out.reason in _CUT_HEADER_SHAPES:
                held = out  # yielded with the next record, or relabelled if the file ends cut right here
                continue
            last_short = isinstance(out, Quarantined) and out.reason == Reason.TRUNCATED_WARC_RECORD
            yield out
        if last_short:
            return
        yield from _check_end(stream, source, index, held)


def _check_end(stream: InputStream, source: str, index: int, held: Optional[Quarantined]) -> Iterator[Quarantined]:
    """After the last record: report a stream that broke off, bytes the parser left unread, or a
    last record cut inside its header - at most one record for the end of the file."""
    left, sample = _drain(stream)
    no_terminator = stream.tell() > 0 and not stream.tail.endswith(_RECORD_TERMINATORS)
    if held is not None:  # fastwarc yields a record cut inside its WARC header with a partial header
        if (stream.error is not None or no_terminator) and not sample.strip():
            why = stream.error or "file ends without a WARC record terminator"
            yield dataclasses.replace(held, reason=Reason.TRUNCATED_WARC_RECORD, detail=f"{held.detail}; {why}")
            return
        yield held
    if stream.error is not None:
        yield Quarantined(
            source,
            index,
            cap_raw(sample),
            stream.error_reason or Reason.TRUNCATED_GZIP,
            f"{stream.error}; {index} complete records before the break",
        )
    elif sample.strip():
        yield Quarantined(
            source,
            index,
            cap_raw(sample),
            Reason.UNREADABLE_FILE,
            f"the WARC parser stopped after {index} records with {left} bytes of the stream unread",
        )
    elif no_terminator:
        yield Quarantined(
            source,
            index,
            cap_raw(stream.tail),
            Reason.TRUNCATED_WARC_RECORD,
            f"file ends without a WARC record terminator after {index} records "
            f"(uncompressed offset {stream.tell()}): the last record was cut, probably in its header",
        )


def _drain(stream: InputStream) -> tuple[int, bytes]:
    """Read what the WARC parser left unread: ``(byte count, first bytes)`` (normally ``(0, b"")``)."""
    left, sample = 0, b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return left, sample
        if len(sample) < MAX_RAW_BYTES:
            sample += chunk[: MAX_RAW_BYTES - len(sample)]
        left += len(chunk)


def _malformed(record, source: str, index: int) -> Quarantined:
    headers = record.headers
    try:
        block = record.reader.read(MAX_RAW_BYTES)
    except Exception:
        block = b""
    warc_type = (headers.get("WARC-Type") or "")[:100]
    return Quarantined(
        source,
        index,
        cap_raw(_warc_head_bytes(headers) + block),
        Reason.MALFORMED_WARC_RECORD,
        f"WARC record of unknown type at uncompressed offset {record.stream_pos} (WARC-Type "
        f"{warc_type!r}): its WARC header could not be parsed",
    )


# --------------------------------------------------------------------------------------------------
# one record
# --------------------------------------------------------------------------------------------------


def _record_to_output(
    record, stream: InputStream, source: str, index: int, max_text_bytes: int, max_record: int, only_2xx: bool,
    max_text_lines: int,
) -> Record:
    head = b""
    block = b""
    label = f"record {index}"
    try:
        headers = record.headers
        record_id = record.record_id or headers.get("WARC-Record-ID")
        url = _clean_uri(headers.get("WARC-Target-URI"))
        label = f"{url or '(no WARC-Target-URI)'} {record_id or '(no WARC-Record-ID)'}"
        head = _warc_head_bytes(headers)
        length = record.content_length
        if length > max_record:
            block = record.reader.read(MAX_RAW_BYTES)
            raise _Reject(
                Reason.DOCUMENT_TOO_LARGE,
                f"{label}: WARC block is {length} bytes, over the limit of {max_record} bytes (not read)",
            )
        block = record.reader.read()
        if len(block) != length:
            broke = f"; {stream.error}" if stream.error else ""
            raise _Reject(
                Reason.TRUNCATED_WARC_RECORD,
                f"{label}: block has {len(block)} of {length} bytes (Content-Length): record cut off{broke}",
            )
        status, http_headers, body = _split_http(block, label)
        if only_2xx and not 200 <= status < 300:
            raise _Reject(Reason.HTTP_STATUS, f"{label}: HTTP status {status}")
        content_type = http_headers.get("content-type")
        mime = content_type.split(";", 1)[0].strip().lower() if content_type else ""
        if mime and mime not in HTML_MIME_TYPES:
            raise _Reject(Reason.NOT_HTML, f"{label}: Content-Type {content_type}")
        body, encodings = _undo_encodings(body, http_headers, label, max_record)
        if not mime and not _looks_like_html(body):
            raise _Reject(Reason.NOT_HTML, f"{label}: no Content-Type and the body does not look like HTML")
        html, charset, charset_source = _decode_html(body, content_type)
        try:
            text = extract_plain_text(html, **EXTRACT_OPTIONS)
        except MemoryError:
            raise
        except Exception as exc:
            raise _Reject(Reason.RECORD_ERROR, f"{label}: HTML extraction failed: {describe_exception(exc)}")
        problem = check_text(text, max_text_bytes, max_text_lines)
        if problem is not None:
            raise _Reject(problem[0], f"{label}: extracted {problem[1]}")
        offset = record.stream_pos
        meta = {
            "warc_record_id": record_id,
            "warc_date": headers.get("WARC-Date"),
            "warc_offset": stream.compressed_offset_of(offset),
            "warc_uncompressed_offset": offset,
            "http_status": status,
            "content_type": content_type,
            "charset": charset,
            "charset_source": charset_source,
            "html_bytes": len(body),
        }
        if encodings:
            meta["content_encoding"] = encodings
        trec_id = headers.get("WARC-TREC-ID")
        if trec_id:
            meta["warc_trec_id"] = trec_id
        doc_id = record_id if record_id and record_id.strip() else content_doc_id(text)
        return Document(doc_id, text, source, index, url, metadata_json(meta))
    except _Reject as rej:
        return Quarantined(source, index, cap_raw(head + block), rej.reason, rej.detail)
    except MemoryError:
        raise
    except Exception as exc:  # a bug or a library failure: account for the record, keep reading
        return Quarantined(source, index, cap_raw(head + block), Reason.RECORD_ERROR, f"{label}: {describe_exception(exc)}")


def _clean_uri(uri: Optional[str]) -> Optional[str]:
    if uri is None:
        return None
    uri = uri.strip()
    if uri.startswith("<") and uri.endswith(">"):  # WARC 1.0 grammar as written by wget
        uri = uri[1:-1].strip()
    return uri or None


def _warc_head_bytes(headers) -> bytes:
    lines = [headers.status_line or "WARC"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "backslashreplace")


def _split_http(block: bytes, label: str) -> tuple[int, dict, bytes]:
    """``(status, headers with lower-case names (first value wins), body)`` of an HTTP response."""
    if not block.startswith(b"HTTP/"):
        raise _Reject(Reason.MALFORMED_HTTP, f"{label}: block does not start with an HTTP status line")
    end = _HEADER_END.search(block, 0, _MAX_HTTP_HEADER_BYTES)
    if end is None:
        raise _Reject(
            Reason.MALFORMED_HTTP, f"{label}: no end of HTTP headers in the first {_MAX_HTTP_HEADER_BYTES} bytes"
        )
    lines = block[: end.start()].decode("latin-1").splitlines()
    parts = lines[0].split(None, 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        raise _Reject(Reason.MALFORMED_HTTP, f"{label}: bad HTTP status line {lines[0][:200]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, block[end.end():]


def _looks_like_html(body: bytes) -> bool:
    start = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or b"<html" in start


def _undo_encodings(body: bytes, headers: dict, label: str, max_bytes: int) -> tuple[bytes, list[str]]:
    """Undo chunked transfer coding and gzip/deflate/br content codings still present in the body.

    Crawlers differ: Common Crawl stores decoded bodies (and renames the headers), ClueWeb keeps
    ``Content-Encoding: gzip`` over a plain body, wget stores the raw transfer. So a coding is only
    undone when the body actually looks encoded; the list of codings undone is returned.
    """
    done: list[str] = []
    if "chunked" in headers.get("transfer-encoding", "").lower():
        dechunked = _dechunk(body)
        if dechunked is not None:
            body = dechunked
            done.append("chunked")
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", "none") or _looks_like_html(body):
            continue
        decoded: Optional[bytes] = None
        if coding in ("gzip", "x-gzip", "deflate"):
            decoded = _inflate(body, coding, label, max_bytes)
        elif coding == "br":
            try:
                decoded = BrotliReader(io.BytesIO(body)).read()
            except Exception:
                decoded = None
        if decoded is None:
            if _looks_like_text(body):  # the coding was already undone by the crawler
                continue
            raise _Reject(
                Reason.BAD_CONTENT_ENCODING, f"{label}: body cannot be decoded as Content-Encoding {coding!r}"
            )
        if len(decoded) > max_bytes:
            raise _Reject(Reason.DOCUMENT_TOO_LARGE, f"{label}: decoded body over the limit of {max_bytes} bytes")
        body = decoded
        done.append(coding)
    return body, done


def _looks_like_text(body: bytes) -> bool:
    start = body[:4096]
    return b"\x00" not in start and b"<" in start


def _inflate(body: bytes, coding: str, label: str, max_bytes: int) -> Optional[bytes]:
    """Inflated body, None when it is not gzip/zlib/raw-deflate data."""
    # 47: zlib or gzip header, auto-detected; -15: raw deflate (what some servers send as "deflate")
    for wbits in (47, -15):
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, max_bytes + 1)
        except zlib.error:
            continue
        if len(out) > max_bytes:
            raise _Reject(Reason.DOCUMENT_TOO_LARGE, f"{label}: {coding} body inflates over {max_bytes} bytes")
        if not out and body:
            continue
        return out + d.flush()
    return None


def _dechunk(body: bytes) -> Optional[bytes]:
    """Undo HTTP chunked transfer coding; None when the body is not chunked after all."""
    out = []
    pos = 0
    while True:
        nl = body.find(b"\n", pos)
        if nl < 0:
            return None if not out else b"".join(out)  # chunks but no last-chunk: keep what is there
        size_field = body[pos:nl].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return None if not out else b"".join(out)
        pos = nl + 1
        if size == 0:
            return b"".join(out)
        out.append(body[pos : pos + size])
        pos += size
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1


def _codec(name: Optional[str]) -> Optional[str]:
    """WHATWG-mapped Python codec name for a charset label, None when unknown."""
    if not name:
        return None
    mapped = map_encoding_to_html5(name.strip(), fallback_utf8=False)
    if not mapped:
        return None
    try:
        return codecs.lookup(mapped).name
    except LookupError:
        return None


def _decode_html(body: bytes, content_type: Optional[str]) -> tuple[str, str, str]:
    """``(html, codec, source)``: the header charset when the body strictly decodes with it, else the
    detected encoding (meta tag, then uchardet), decoding invalid sequences as U+FFFD."""
    match = _CHARSET.search(content_type or "")
    declared = _codec(match.group(1)) if match else None
    if declared:
        try:
            html = body.decode(declared)
            return (html[1:] if html.startswith("\ufeff") else html), declared, "http"
        except UnicodeDecodeError:
            pass  # wrong label (common): detect instead of producing mojibake
    detected = _codec(detect_encoding(body, from_html_meta=True)) or "utf-8"
    return bytes_to_str(body, detected, errors="replace", fallback_encodings=("utf-8",)), detected, "detected"
