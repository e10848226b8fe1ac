"""JSON Lines (``.jsonl``, ``.jsonl.gz``, ``.json.gz``) and parquet readers: one file -> records.

Both validate every record the same way (:func:`record_from_fields`) and yield :class:`Document` or
:class:`Quarantined`; neither raises for bad data.

JSON Lines are read as BYTES, line by line, so that
  * a line that is not UTF-8 is quarantined (``invalid_utf8``) instead of crashing or being mangled;
  * a gzip stream cut short (or corrupt) yields every complete line before the break, then ONE
    ``truncated_gzip`` record (its raw is the partial last line) and the generator ends normally;
  * a line longer than ``max_line_bytes`` is skipped in bounded memory (``document_too_large``).
Whether a file is gzip is sniffed from its first bytes, not trusted from its name.

``record_index`` is the 0-based physical line number (parquet: the row number in the file).
Blank (whitespace-only) lines carry no data and are not records: they yield nothing, but they keep
their line numbers, so indexes always point at the physical line.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Optional

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
    usable_id,
)
from prox_spark.readers.storage import arrow_location, open_input

_BOM = b"\xef\xbb\xbf"
_READ_SIZE = 1 << 20


def default_max_line_bytes(max_text_bytes: int) -> int:
    """Default line limit: JSON escapes can make a text up to ~6x longer (``\\u0001``), plus 1 MiB of
    other fields. Lines over it are never parsed (bounded memory); they are ``document_too_large``."""
    return 6 * max_text_bytes + (1 << 20)


# --------------------------------------------------------------------------------------------------
# shared record validation
# --------------------------------------------------------------------------------------------------


def record_from_fields(
    obj: Any,
    *,
    source_file: str,
    record_index: int,
    raw: Any,
    id_field: Optional[str],
    text_field: str,
    url_field: Optional[str],
    max_text_bytes: int,
    max_text_lines: int = DEFAULT_MAX_TEXT_LINES,
) -> Record:
    """Validate one decoded record (a JSON object / parquet row) and build the document or quarantine.

    ``raw`` is only materialized (:func:`cap_raw`) when the record is quarantined; it may be a
    zero-argument callable to defer its cost.
    """

    # the record's own id (a text field is never its own id: that field becomes the text)
    own_id = usable_id(obj.get(id_field)) if id_field and id_field != text_field and isinstance(obj, dict) else None

    def quarantine(reason: str, detail: str) -> Quarantined:
        value = raw() if callable(raw) else raw
        return Quarantined(source_file, record_index, cap_raw(value), reason, detail, own_id)

    if not isinstance(obj, dict):
        return quarantine(Reason.NOT_AN_OBJECT, f"record is a JSON {_json_type(obj)}, not an object")
    if text_field not in obj or obj[text_field] is None:
        state = "null" if text_field in obj else "missing"
        return quarantine(Reason.MISSING_TEXT, f"text field {text_field!r} is {state}")
    text = obj[text_field]
    if isinstance(text, (bytes, bytearray)):  # parquet binary columns
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            return quarantine(
                Reason.INVALID_UTF8, f"text field {text_field!r} is not UTF-8 at byte {exc.start}"
            )
    if not isinstance(text, str):
        return quarantine(
            Reason.TEXT_NOT_STRING,
            f"text field {text_field!r} is a {_json_type(text)}, not a string",
        )
    problem = check_text(text, max_text_bytes, max_text_lines)
    if problem is not None:
        reason, detail = problem
        return quarantine(reason, f"text field {text_field!r}: {detail}")

    meta = dict(obj)
    del meta[text_field]
    doc_id = own_id
    if doc_id is not None:
        del meta[id_field]
    else:
        doc_id = content_doc_id(text)
    url = meta.get(url_field) if url_field else None
    if isinstance(url, str) and usable_id(url) is not None:  # non-blank, encodable string
        del meta[url_field]
    else:
        url = None
    return Document(doc_id, text, source_file, record_index, url, metadata_json(meta))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------------
# JSON Lines
# --------------------------------------------------------------------------------------------------


def _iter_lines(stream: InputStream, max_line_bytes: int) -> Iterator[tuple[int, bytes, int, bool]]:
    """Split a byte stream into lines: ``(line_no, data, total_len, complete)``.

    ``data`` is the line without its ``\\n``; for a line longer than ``max_line_bytes`` only its first
    :data:`MAX_RAW_BYTES` are kept and ``total_len`` says how long it was. ``complete`` is False only
    for the final piece of a stream that broke off (gzip truncation) without a newline.
    """
    line_no = 0
    pieces: list[bytes] = []
    size = 0
    oversize = False
    first = True
    while True:
        chunk = stream.read(_READ_SIZE)
        if not chunk:
            break
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            end = len(chunk) if nl < 0 else nl
            part = chunk[start:end]
            size += len(part)
            if not oversize:
                if size > max_line_bytes:
                    oversize = True
                    pieces = [b"".join(pieces + [part])[:MAX_RAW_BYTES]]
                else:
                    pieces.append(part)
            if nl < 0:
                break
            data = b"".join(pieces)
            yield line_no, data, size, True
            line_no += 1
            pieces, size, oversize = [], 0, False
            start = nl + 1
    if stream.error is not None:  # broke off: the partial line (maybe empty) is not a record
        yield line_no, b"".join(pieces), size, False
    elif size:  # last line without a trailing newline
        yield line_no, b"".join(pieces), size, True


def read_jsonl(
    path: str | os.PathLike,
    *,
    id_field: Optional[str] = "id",
    text_field: str = "text",
    url_field: Optional[str] = "url",
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    max_line_bytes: Optional[int] = None,
    max_text_lines: int = DEFAULT_MAX_TEXT_LINES,
) -> Iterator[Record]:
    """Read one JSON Lines file (plain or gzip, sniffed) into documents and quarantine records.

    Per line: not UTF-8 -> ``invalid_utf8``; not JSON -> ``invalid_json``; not an object ->
    ``not_an_object``; text missing or null -> ``missing_text``; text not a string ->
    ``text_not_string``; whitespace-only -> ``empty_text``; over ``max_text_bytes`` (or the line over
    ``max_line_bytes``, default :func:`default_max_line_bytes`) -> ``document_too_large``; more than
    ``max_text_lines`` lines -> ``too_many_lines``.
    ``id_field`` (when a non-empty string or an integer) becomes ``doc_id``, else the content hash;
    ``url_field`` (a non-empty string) becomes ``url``; all other fields go to ``metadata_json``.
    A file that cannot be opened yields one ``unreadable_file`` record.
    """
    source = os.fspath(path)
    limit = max_line_bytes if max_line_bytes is not None else default_max_line_bytes(max_text_bytes)
    try:
        fh = open_input(source)
    except OSError as exc:
        yield Quarantined(source, None, "", Reason.UNREADABLE_FILE, f"cannot open: {describe_exception(exc)}")
        return
    with fh:
        stream = InputStream(fh)
        for line_no, data, total, complete in _iter_lines(stream, limit):
            if not complete:
                where = f"line {line_no} cut after {total} bytes" if total else "at a line boundary"
                yield Quarantined(
                    source,
                    line_no,
                    cap_raw(data),
                    stream.error_reason or Reason.TRUNCATED_GZIP,
                    f"{stream.error}; {line_no} complete lines before the break ({where})",
                )
                return
            rec = _line_record(
                data, total, source, line_no, limit, id_field, text_field, url_field, max_text_bytes, max_text_lines
            )
            if rec is not None:
                yield rec


def _line_record(
    data: bytes,
    total: int,
    source: str,
    line_no: int,
    limit: int,
    id_field: Optional[str],
    text_field: str,
    url_field: Optional[str],
    max_text_bytes: int,
    max_text_lines: int,
) -> Optional[Record]:
    if total > limit:
        return Quarantined(
            source,
            line_no,
            cap_raw(data) + f"\n...[raw truncated: line is {total} bytes]",
            Reason.DOCUMENT_TOO_LARGE,
            f"line is {total} bytes, over the line limit of {limit} bytes (not parsed)",
        )
    if data.endswith(b"\r"):
        data = data[:-1]
    if not data.strip():
        return None  # blank line: no record
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Quarantined(
            source,
            line_no,
            cap_raw(data),
            Reason.INVALID_UTF8,
            f"line is not valid UTF-8: {exc.reason} at byte {exc.start} (0x{data[exc.start]:02x})",
        )
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return Quarantined(source, line_no, cap_raw(data), Reason.INVALID_JSON, f"invalid JSON: {exc}")
    try:
        return record_from_fields(
            obj,
            source_file=source,
            record_index=line_no,
            raw=data,
            id_field=id_field,
            text_field=text_field,
            url_field=url_field,
            max_text_bytes=max_text_bytes,
            max_text_lines=max_text_lines,
        )
    except MemoryError:
        raise
    except Exception as exc:  # a bug, not bad data: still account for the record
        return Quarantined(source, line_no, cap_raw(data), Reason.RECORD_ERROR, describe_exception(exc))


# --------------------------------------------------------------------------------------------------
# parquet
# --------------------------------------------------------------------------------------------------


def read_parquet(
    path: str | os.PathLike,
    *,
    id_field: Optional[str] = "id",
    text_field: str = "text",
    url_field: Optional[str] = "url",
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    batch_size: int = 1024,
    max_text_lines: int = DEFAULT_MAX_TEXT_LINES,
) -> Iterator[Record]:
    """Read one parquet file, one row group at a time (streamed in batches of ``batch_size`` rows),
    with the same per-row validation as :func:`read_jsonl` (``record_index`` = row number in the file).

    A file that cannot be opened as parquet yields one ``unreadable_file`` record; a row group that
    fails to decode yields one ``unreadable_row_group`` record covering its remaining rows (the detail
    names the row range) and reading goes on with the next group. A binary text column is decoded as
    UTF-8 (``invalid_utf8`` otherwise).
    """
    import pyarrow.parquet as pq

    source = os.fspath(path)
    try:
        pf = pq.ParquetFile(arrow_location(source))
        n_groups = pf.metadata.num_row_groups
        group_rows = [pf.metadata.row_group(i).num_rows for i in range(n_groups)]
    except MemoryError:
        raise
    except Exception as exc:
        yield Quarantined(
            source, None, "", Reason.UNREADABLE_FILE, f"cannot open as parquet: {describe_exception(exc)}"
        )
        return
    with pf:
        row = 0
        for group, n_rows in enumerate(group_rows):
            group_start, done = row, 0
            try:
                for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group]):
                    for obj in batch.to_pylist():
                        yield _row_record(
                            obj, source, row, id_field, text_field, url_field, max_text_bytes, max_text_lines
                        )
                        row += 1
                        done += 1
            except MemoryError:
                raise
            except Exception as exc:
                missing = n_rows - done
                yield Quarantined(
                    source,
                    row,
                    "",
                    Reason.UNREADABLE_ROW_GROUP,
                    f"row group {group} (rows {group_start}..{group_start + n_rows - 1}) failed after "
                    f"{done} rows; rows {row}..{row + missing - 1} ({missing} rows) not read: "
                    f"{describe_exception(exc)}",
                )
                row = group_start + n_rows


def _row_record(
    obj: dict,
    source: str,
    row: int,
    id_field: Optional[str],
    text_field: str,
    url_field: Optional[str],
    max_text_bytes: int,
    max_text_lines: int,
) -> Record:
    def raw() -> str:
        return json.dumps(obj, ensure_ascii=True, default=lambda v: _safe_str(v))

    try:
        return record_from_fields(
            obj,
            source_file=source,
            record_index=row,
            raw=raw,
            id_field=id_field,
            text_field=text_field,
            url_field=url_field,
            max_text_bytes=max_text_bytes,
            max_text_lines=max_text_lines,
        )
    except MemoryError:
        raise
    except Exception as exc:
        return Quarantined(source, row, cap_raw(_safe_repr(obj)), Reason.RECORD_ERROR, describe_exception(exc))


def _safe_str(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # pragma: no cover - repr of pyarrow values does not fail in practice
        return "<unrepresentable row>"
