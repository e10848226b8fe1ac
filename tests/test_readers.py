"""Readers: every input record ends as a document or a quarantine record with the right reason.

Bad files are built in tmp_path; the real WARC files are read in place from ``../shared/data/warc``
(third-party data, never copied into the repository; those tests skip when it is absent).
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import time
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from prox_spark.readers import (
    RECORD_COLUMNS,
    Document,
    Quarantined,
    Reason,
    content_doc_id,
    detect_format,
    iter_record_frames,
    list_local_files,
    read_file,
    read_jsonl,
    read_parquet,
    read_warc,
)
from prox_spark.readers.records import MAX_RAW_BYTES, InputStream

WARC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "warc"


@pytest.fixture(scope="module")
def warc_dir() -> Path:
    if not WARC_DIR.is_dir():
        pytest.skip(f"shared WARC files not found at {WARC_DIR} (<repo>/../shared/data/warc): real-WARC tests skipped")
    return WARC_DIR


def by_index(records):
    return {r.record_index: r for r in records}


def reasons(records):
    return collections.Counter(r.reason for r in records if isinstance(r, Quarantined))


def docs(records):
    return [r for r in records if isinstance(r, Document)]


# --------------------------------------------------------------------------------------------------
# JSON Lines: one line per reason
# --------------------------------------------------------------------------------------------------

# (line bytes, expected reason or "doc"); None marks a blank line (not a record)
LINES = [
    (b'{"id": "a1", "text": "Hello world.", "url": "https://x.test/a", "lang": "en"}', "doc"),
    (b'{"id": 7, "text": "Integer id."}', "doc"),
    (b'{"text": "broken json"', Reason.INVALID_JSON),
    (b"[1, 2, 3]", Reason.NOT_AN_OBJECT),
    (b'"just a string"', Reason.NOT_AN_OBJECT),
    (b'{"id": "no-text"}', Reason.MISSING_TEXT),
    (b'{"id": "null-text", "text": null}', Reason.MISSING_TEXT),
    (b'{"text": ""}', Reason.EMPTY_TEXT),
    (b'{"text": "  \\n\\t \\u00a0 "}', Reason.EMPTY_TEXT),
    (b'{"text": 42}', Reason.TEXT_NOT_STRING),
    (b'{"text": ["a", "b"]}', Reason.TEXT_NOT_STRING),
    (b'{"text": {"nested": "x"}}', Reason.TEXT_NOT_STRING),
    (b'{"text": "caf\xe9 au lait"}', Reason.INVALID_UTF8),  # latin-1 byte
    (b'{"text": "lone \\ud800 surrogate"}', Reason.INVALID_UNICODE),
    (b"", None),
    (b"   ", None),
    (b'{"id": "", "text": "Empty id falls back to the content hash."}', "doc"),
    (b'{"id": 1.5, "text": "Float id falls back too."}', "doc"),
    (b'{"id": "crlf", "text": "Windows line end."}\r', "doc"),
    (b'{"id": "last", "text": "No newline at the end."}', "doc"),
]


def write_lines(path: Path, lines: list[bytes], compress: bool = False) -> Path:
    data = b"\n".join(lines)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("name, compress", [("c.jsonl", False), ("c.jsonl.gz", True), ("c.json.gz", True)])
def test_jsonl_every_line_accounted_for(tmp_path, name, compress):
    path = write_lines(tmp_path / name, [line for line, _ in LINES], compress)
    records = list(read_file(path))
    expected = {i: want for i, (_, want) in enumerate(LINES) if want is not None}
    assert len(records) == len(expected)  # documents + quarantined == non-blank lines
    got = by_index(records)
    assert set(got) == set(expected)
    for i, want in expected.items():
        rec = got[i]
        if want == "doc":
            assert isinstance(rec, Document), (i, rec)
        else:
            assert isinstance(rec, Quarantined) and rec.reason == want, (i, rec)
            assert rec.source_file == str(path) and rec.detail

    first = got[0]
    assert (first.doc_id, first.text, first.url) == ("a1", "Hello world.", "https://x.test/a")
    assert json.loads(first.metadata_json) == {"lang": "en"}
    assert got[1].doc_id == "7"
    empty_id = got[16]
    assert empty_id.doc_id == content_doc_id(empty_id.text) and len(empty_id.doc_id) == 32
    assert json.loads(empty_id.metadata_json) == {"id": ""}  # the unusable id is kept, not lost
    assert json.loads(got[17].metadata_json) == {"id": 1.5}
    assert got[18].text == "Windows line end."
    assert got[19].doc_id == "last"
    assert "\\xe9" in got[12].raw  # the invalid byte stays visible in raw
    assert "byte" in got[12].detail


def test_jsonl_custom_fields_and_bom(tmp_path):
    path = tmp_path / "custom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"doc": "d1", "body": "Text one.", "url": ""}\n{"body": "Text two."}\n')
    records = list(read_jsonl(path, id_field="doc", text_field="body"))
    assert [r.doc_id for r in records] == ["d1", content_doc_id("Text two.")]
    assert records[0].url is None and json.loads(records[0].metadata_json) == {"url": ""}


def test_document_too_large_is_quarantined_not_truncated(tmp_path):
    big = "x" * (9 * 1000 * 1000)  # a 9 MB document against the 8 MiB default limit
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"id": "big", "text": big}) + "\n" + json.dumps({"id": "ok", "text": "fine"}) + "\n")
    records = list(read_jsonl(path, max_text_bytes=8 * 1024 * 1024))
    assert len(records) == 2
    too_large, ok = records
    assert isinstance(too_large, Quarantined) and too_large.reason == Reason.DOCUMENT_TOO_LARGE
    assert too_large.record_index == 0 and "8388608" in too_large.detail
    assert len(too_large.raw) < MAX_RAW_BYTES + 200 and "raw truncated" in too_large.raw
    assert isinstance(ok, Document) and ok.doc_id == "ok"

    # multi-byte text: the limit counts UTF-8 bytes, not characters
    path2 = tmp_path / "utf8.jsonl"
    path2.write_text(json.dumps({"text": "é" * 600}, ensure_ascii=False) + "\n", encoding="utf-8")
    (rec,) = read_jsonl(path2, max_text_bytes=1000)
    assert rec.reason == Reason.DOCUMENT_TOO_LARGE and "1200 UTF-8 bytes" in rec.detail

    # a line over the line limit is skipped in bounded memory, and the next line is still read
    (q, d) = read_jsonl(path, max_text_bytes=1 << 20, max_line_bytes=100_000)
    assert q.reason == Reason.DOCUMENT_TOO_LARGE and "not parsed" in q.detail and len(q.raw) < MAX_RAW_BYTES + 200
    assert d.doc_id == "ok" and d.record_index == 1


def _jsonl_gz(tmp_path: Path, n: int) -> tuple[Path, bytes, list[str]]:
    import random

    rnd = random.Random(0)
    texts = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(300)) + f" #{i}" for i in range(n)]
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)).encode()
    return tmp_path / "t.jsonl.gz", gzip.compress(data), texts


@pytest.mark.parametrize("cut", [0.5, 0.9, -5, 15])
def test_truncated_gzip_yields_complete_lines_then_one_record(tmp_path, cut):
    path, data, texts = _jsonl_gz(tmp_path, 200)
    keep = int(len(data) * cut) if cut > 0 and cut < 1 else (len(data) + cut if cut < 0 else cut)
    path.write_bytes(data[:keep])
    records = list(read_jsonl(path))  # ends normally: no exception
    *documents, last = records
    assert all(isinstance(r, Document) for r in documents)
    assert [d.text for d in documents] == texts[: len(documents)]  # the complete lines, in order
    assert isinstance(last, Quarantined) and last.reason == Reason.TRUNCATED_GZIP
    assert last.record_index == len(documents)
    assert "gzip stream truncated" in last.detail and f"{len(documents)} complete lines" in last.detail
    if cut == -5:  # only the trailer is missing: every line came through
        assert len(documents) == 200 and "line boundary" in last.detail
    elif cut == 0.5:
        assert 0 < len(documents) < 200 and last.raw  # the partial line is kept as raw


def test_corrupt_multimember_and_padded_gzip(tmp_path):
    path, data, texts = _jsonl_gz(tmp_path, 50)
    # several members and zero padding (bgzip / concatenated files) read completely
    half = len(texts) // 2
    part1 = "".join(json.dumps({"text": t}) + "\n" for t in texts[:half]).encode()
    part2 = "".join(json.dumps({"text": t}) + "\n" for t in texts[half:]).encode()
    path.write_bytes(gzip.compress(part1) + gzip.compress(part2) + b"\0" * 16)
    assert [r.text for r in read_jsonl(path)] == texts

    bad = bytearray(data)
    bad[len(bad) // 2 : len(bad) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(bad))
    records = list(read_jsonl(path))
    assert all(isinstance(r, Document) for r in records[:-1])
    assert records[-1].reason == Reason.TRUNCATED_GZIP and "corrupt" in records[-1].detail

    path.write_bytes(gzip.compress(part1) + b"garbage after the member")
    *good, last = read_jsonl(path)
    assert len(good) == half and last.reason == Reason.TRUNCATED_GZIP and "no gzip member header" in last.detail


@settings(max_examples=40, deadline=None)
@given(
    members=st.lists(st.binary(max_size=3000), min_size=1, max_size=4),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    chunk=st.sampled_from([1, 7, 4096]),
)
def test_input_stream_matches_gzip(members, sizes, chunk):
    import io

    data = b"".join(gzip.compress(m) for m in members)
    stream = InputStream(io.BytesIO(data), chunk_size=chunk, track_members=True)
    out, i = [], 0
    while True:
        piece = stream.read(sizes[i % len(sizes)])
        i += 1
        if not piece:
            break
        out.append(piece)
    assert b"".join(out) == b"".join(members) and stream.error is None and stream.is_gzip
    assert stream.tell() == sum(map(len, members))
    if len(data) > 10:
        cut = InputStream(io.BytesIO(data[:-3]), chunk_size=chunk)
        assert b"".join(members).startswith(cut.read()) and "truncated" in cut.error


def test_io_error_mid_file_is_unreadable_file(tmp_path):
    class FlakyFile:
        def __init__(self, data):
            self.data, self.calls = data, 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise OSError("Input/output error")
            return self.data[:n]

    data = b"".join(json.dumps({"text": f"line {i}"}).encode() + b"\n" for i in range(100))
    stream = InputStream(FlakyFile(data), chunk_size=len(data) // 2)
    assert stream.read(10**6) == data[: len(data) // 2]
    assert stream.error_reason == Reason.UNREADABLE_FILE and "Input/output error" in stream.error


def test_unreadable_file(tmp_path):
    (rec,) = read_jsonl(tmp_path / "missing.jsonl")
    assert rec.reason == Reason.UNREADABLE_FILE and rec.record_index is None
    (rec,) = read_warc(tmp_path / "missing.warc.gz")
    assert rec.reason == Reason.UNREADABLE_FILE
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"this is not parquet")
    (rec,) = read_parquet(not_parquet)
    assert rec.reason == Reason.UNREADABLE_FILE and "parquet" in rec.detail
    not_warc = tmp_path / "x.warc"
    not_warc.write_bytes(b"hello, this is not a WARC file\n" * 10)
    (rec,) = read_warc(not_warc)
    assert rec.reason == Reason.UNREADABLE_FILE


_line = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.dictionaries(
        st.sampled_from(["id", "text", "url", "x"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=2)),
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=12), compress=st.booleans())
@example(lines=[b"\xef\xbb\xbf"], compress=False)  # a file that is only its BOM: no line, no record
@example(lines=[b"{}", b"\xef\xbb\xbf"], compress=True)  # a BOM inside the file is a line of its own
def test_jsonl_never_raises_and_accounts_for_every_line(tmp_path, lines, compress):
    path = write_lines(tmp_path / "h.jsonl", lines, compress)
    records = list(read_jsonl(path))
    # a UTF-8 BOM that opens the file is its encoding mark, not content of the first line
    content = [line[3:] if i == 0 and line.startswith(b"\xef\xbb\xbf") else line for i, line in enumerate(lines)]
    non_blank = [i for i, line in enumerate(content) if line.strip(b" \t\r\n\x0b\x0c")]
    assert sorted(r.record_index for r in records) == non_blank
    for r in records:
        if isinstance(r, Document):
            r.text.encode("utf-8")  # always storable in Arrow
            json.loads(r.metadata_json)
        else:
            r.raw.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# parquet
# --------------------------------------------------------------------------------------------------


def test_parquet_rows_validated_across_row_groups(tmp_path):
    table = pa.table(
        {
            "id": pa.array(["p0", None, "p2", "p3", "p4"]),
            "text": pa.array(["First.", "Second.", None, "   ", "Fifth."]),
            "ts": pa.array([pd.Timestamp("2024-01-01")] * 5),
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=2)
    records = list(read_parquet(path))
    assert [r.record_index for r in records] == [0, 1, 2, 3, 4]
    got = by_index(records)
    assert got[0].doc_id == "p0" and json.loads(got[0].metadata_json) == {"ts": "2024-01-01T00:00:00"}
    assert got[1].doc_id == content_doc_id("Second.")
    assert got[2].reason == Reason.MISSING_TEXT and got[3].reason == Reason.EMPTY_TEXT
    assert json.loads(got[2].raw)["id"] == "p2"

    no_text = tmp_path / "no_text.parquet"
    pq.write_table(pa.table({"body": ["a", "b"]}), no_text)
    assert [r.reason for r in read_parquet(no_text)] == [Reason.MISSING_TEXT] * 2
    assert [r.text for r in read_parquet(no_text, text_field="body")] == ["a", "b"]

    binary = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"text": pa.array([b"ok bytes", b"\xff\xfe bad"], pa.binary()), "n": [1, 2]}), binary)
    ok, bad = read_parquet(binary)
    assert ok.text == "ok bytes" and bad.reason == Reason.INVALID_UTF8

    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), numbers)
    assert {r.reason for r in read_parquet(numbers)} == {Reason.TEXT_NOT_STRING}


# --------------------------------------------------------------------------------------------------
# WARC: synthetic records (no shared data needed)
# --------------------------------------------------------------------------------------------------


def warc_record(uri: str, http: bytes, *, record_type: str = "response", rid: str = "") -> bytes:
    rid = rid or f"<urn:uuid:{hashlib.sha256(uri.encode() + http).hexdigest()[:12]}-0000-0000-0000-000000000000>"
    head = (
        f"WARC/1.0\r\nWARC-Type: {record_type}\r\nWARC-Record-ID: {rid}\r\nWARC-Target-URI: {uri}\r\n"
        f"WARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    return head + http + b"\r\n\r\n"


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + (f"Content-Type: {content_type}\r\n" if content_type else "") + extra
    return head.encode() + b"\r\n" + body


PAGE = "<html><head><title>T</title></head><body><nav><ul><li>Home</li><li>About</li></ul></nav>" \
       "<p>Main paragraph: {}</p><img src=x.png alt='ALT TEXT'><footer>Footer links</footer></body></html>"


def test_warc_reasons_on_synthetic_records(tmp_path):
    import brotli

    page = PAGE.format("Привет, мир").encode("cp1251")
    utf8_page = PAGE.format("hello").encode()
    gz_page = gzip.compress(PAGE.format("gzipped").encode())
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (utf8_page[:50], utf8_page[50:])) + b"0\r\n\r\n"
    records = [
        warc_record("http://a.test/ok", http_response(utf8_page)),
        warc_record("http://a.test/req", b"GET / HTTP/1.1\r\n\r\n", record_type="request"),  # not a response
        warc_record("http://a.test/404", http_response(utf8_page, status="404 Not Found")),
        warc_record("http://a.test/png", http_response(b"\x89PNG....", "image/png")),
        warc_record("http://a.test/bad", b"this is not an HTTP response"),
        warc_record("http://a.test/empty", http_response(b"<html><body>  </body></html>")),
        # header says UTF-8 but the body is cp1251: detected instead of mojibake
        warc_record("http://a.test/cp1251", http_response(page)),
        warc_record("http://a.test/nocharset", http_response(page, "text/html")),
        warc_record("http://a.test/gzip", http_response(gz_page, extra="Content-Encoding: gzip\r\n")),
        warc_record("http://a.test/br", http_response(brotli.compress(utf8_page), extra="Content-Encoding: br\r\n")),
        warc_record("http://a.test/badgz", http_response(b"\x1f\x8b\x08garbage\x00\x01", extra="Content-Encoding: gzip\r\n")),
        warc_record("http://a.test/chunked", http_response(chunked, extra="Transfer-Encoding: chunked\r\n")),
        warc_record("<http://a.test/nohdr>", http_response(utf8_page, content_type="")),
    ]
    path = tmp_path / "synthetic.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in records))
    out = list(read_warc(path))
    assert len(out) == len(records) - 1  # every response record accounted for, the request skipped
    got = {(r.url if isinstance(r, Document) else r.detail.split()[0]): r for r in out}
    ok_lines = [line for line in got["http://a.test/ok"].text.splitlines() if line]
    assert ok_lines[:3] == ["  • Home", "  • About", "Main paragraph: hello"]  # WET-like lines, bullets
    assert "ALT TEXT" not in got["http://a.test/ok"].text and "Footer links" in got["http://a.test/ok"].text
    assert got["http://a.test/404"].reason == Reason.HTTP_STATUS
    assert got["http://a.test/png"].reason == Reason.NOT_HTML and "image/png" in got["http://a.test/png"].detail
    assert got["http://a.test/bad"].reason == Reason.MALFORMED_HTTP
    assert got["http://a.test/empty"].reason == Reason.EMPTY_TEXT
    for url in ("http://a.test/cp1251", "http://a.test/nocharset"):
        assert "Привет, мир" in got[url].text, url
        assert json.loads(got[url].metadata_json)["charset"] == "cp1251"
    assert "gzipped" in got["http://a.test/gzip"].text
    assert json.loads(got["http://a.test/gzip"].metadata_json)["content_encoding"] == ["gzip"]
    assert "hello" in got["http://a.test/br"].text
    assert got["http://a.test/badgz"].reason == Reason.BAD_CONTENT_ENCODING
    assert "Main paragraph: hello" in got["http://a.test/chunked"].text
    assert "\r\n" not in got["http://a.test/chunked"].text and "0\n" not in got["http://a.test/chunked"].text
    assert "http://a.test/nohdr" in got  # no Content-Type, sniffed as HTML; <> around the URI stripped
    assert sorted(r.record_index for r in out) == [0] + list(range(2, len(records)))  # 1: the request
    meta = json.loads(got["http://a.test/ok"].metadata_json)
    assert meta["warc_offset"] == 0 and meta["http_status"] == 200 and meta["charset_source"] == "http"
    assert got["http://a.test/404"].raw.startswith("WARC/1.0\r\n")  # raw: WARC header + block
    gz_meta = json.loads(got["http://a.test/gzip"].metadata_json)
    assert gz_meta["warc_offset"] == sum(len(gzip.compress(r)) for r in records[:8])  # the gzip member offset
    assert gz_meta["warc_uncompressed_offset"] == sum(len(r) for r in records[:8])


def test_warc_cut_inside_a_header_is_reported(tmp_path):
    good = warc_record("http://a.test/1", http_response(PAGE.format("one").encode()))
    second = warc_record("http://a.test/2", http_response(PAGE.format("two").encode()))
    path = tmp_path / "cut.warc"
    path.write_bytes(good + second[:60])  # plain WARC cut inside the second record's WARC header
    out = list(read_warc(path))
    assert isinstance(out[0], Document)
    assert out[-1].reason == Reason.TRUNCATED_WARC_RECORD and "terminator" in out[-1].detail
    path.write_bytes(good + second[:-100])  # cut inside the body
    out = list(read_warc(path))
    assert isinstance(out[0], Document) and out[1].reason == Reason.TRUNCATED_WARC_RECORD and len(out) == 2


def test_warc_unparseable_header_is_not_silently_dropped(tmp_path):
    # LF-only WARC header lines: fastwarc (strict) yields one record of unknown type and stops
    http = http_response(PAGE.format("lf").encode())
    lf = warc_record("http://a.test/lf", http)
    lf = lf[: lf.index(b"\r\n\r\n")].replace(b"\r\n", b"\n") + b"\n\n" + http + b"\n\n"
    path = tmp_path / "lf.warc"
    path.write_bytes(lf * 2)
    first, *rest = read_warc(path)
    assert first.reason == Reason.MALFORMED_WARC_RECORD and "WARC-Type" in first.detail
    assert [r.reason for r in rest] in ([], [Reason.UNREADABLE_FILE])
    assert [type(r) for r in read_warc(path, quirks_mode=True)] == [Document, Document]  # lenient parsing
    path.write_bytes(b"not a warc at all\r\n" * 5)
    (rec,) = read_warc(path)
    assert rec.reason == Reason.UNREADABLE_FILE


def test_warc_too_large_record(tmp_path):
    body = PAGE.format("x" * 5000).encode()
    path = tmp_path / "big.warc"
    path.write_bytes(warc_record("http://a.test/big", http_response(body)) + warc_record("http://a.test/s", http_response(PAGE.format("s").encode())))
    big, small = read_warc(path, max_text_bytes=10_000, max_record_bytes=1000)
    assert big.reason == Reason.DOCUMENT_TOO_LARGE and "not read" in big.detail
    assert isinstance(small, Document)
    (big_text, _) = read_warc(path, max_text_bytes=1000, max_record_bytes=100_000)
    assert big_text.reason == Reason.DOCUMENT_TOO_LARGE and "extracted" in big_text.detail


# --------------------------------------------------------------------------------------------------
# WARC: real files from ../shared/data/warc
# --------------------------------------------------------------------------------------------------


def test_real_warc_sample_html_documents(warc_dir):
    out = list(read_warc(warc_dir / "sample-0000.warc.gz"))
    documents = docs(out)
    assert len(documents) == len(out) == 22
    for d in documents:
        assert d.doc_id.startswith("<urn:uuid:") and d.url.startswith("https://") and len(d.text) > 200
        meta = json.loads(d.metadata_json)
        assert meta["http_status"] == 200 and meta["warc_record_id"] == d.doc_id
    weld = next(d for d in documents if d.url.endswith("/faculty/weld"))
    lines = weld.text.splitlines()
    assert "Skip to main content" in lines[0] and "  • People" in lines  # the whole page, menus included
    assert len({d.doc_id for d in documents}) == 22
    # chunked transfer coding is undone (wget keeps it): no chunk-size lines leak into the text
    chunked = [d for d in documents if "chunked" in json.loads(d.metadata_json).get("content_encoding", [])]
    assert chunked and all("<html" not in d.text.lower() for d in chunked)


def test_real_warc_gbk_and_cp1251_decode(warc_dir):
    out = list(read_warc(warc_dir / "cc-main-2020-34-excerpt.warc.gz"))
    assert reasons(out) == {} and len(out) == 16
    by_url = {d.url: d for d in out}
    ru = by_url["http://01spb.ru/company/"]
    assert json.loads(ru.metadata_json)["charset"] == "cp1251"
    assert "Огнетушители" in ru.text
    for url in ("http://041696.com/15477/list_6_4.html", "http://0755krk.com/76104/list_4_1.html"):
        page = by_url[url]
        meta = json.loads(page.metadata_json)
        assert (meta["charset"], meta["charset_source"]) == ("gbk", "detected")  # no charset in the header
        cjk = sum("CJK" in unicodedata.name(c, "") for c in page.text)
        assert cjk > 200 and page.text.count("\ufffd") < 5, url
    assert "上海特舟实业有限公司" in by_url["http://041696.com/15477/list_6_4.html"].text


def test_real_warc_clipped_is_reported_without_hanging(warc_dir):
    start = time.monotonic()
    out = list(read_warc(warc_dir / "clipped-truncated.warc.gz"))
    assert time.monotonic() - start < 5
    (rec,) = out
    assert rec.reason == Reason.TRUNCATED_WARC_RECORD and rec.record_index == 0
    assert "75207 of 88275" in rec.detail and "gzip stream truncated" in rec.detail
    assert rec.raw.startswith("WARC/") and "houstonpress" in rec.raw


def test_real_warc_clueweb_quirks(warc_dir):
    out = list(read_warc(warc_dir / "clueweb-quirk.warc.gz"))
    assert reasons(out) == {} and len(out) == 29
    for d in out:
        meta = json.loads(d.metadata_json)
        assert meta["charset"] == "euc_jp" and meta["warc_date"] == "2008-10-294T05:21:46-0700"  # kept as found
        assert meta["warc_trec_id"].startswith("clueweb09-")
        assert "content_encoding" not in meta  # "Content-Encoding: gzip" over a plain body is not undone
        assert sum("CJK" in unicodedata.name(c, "") or "KATAKANA" in unicodedata.name(c, "") for c in d.text) > 100


@pytest.mark.parametrize("name", ["sample-0000.warc.gz", "clueweb-quirk.warc.gz"])
def test_real_warc_cut_anywhere_is_reported_once(warc_dir, tmp_path, name):
    """fastwarc alone stops silently at a truncated gzip member or a header cut short; the reader
    reports every cut (except one exactly between records, which leaves a valid shorter file)."""
    data = (warc_dir / name).read_bytes()
    with open(warc_dir / name, "rb") as fh:
        stream = InputStream(fh, track_members=True)
        plain = stream.read()
    member_starts = {c for _, c in stream.member_starts}
    cases = [("cut.warc.gz", data, c) for c in range(100, len(data), len(data) // 41) if c not in member_starts]
    cases += [("cut.warc", plain, c) for c in range(100, len(plain), len(plain) // 41) if plain[c : c + 5] != b"WARC/"]
    seen = collections.Counter()
    for file_name, content, cut in cases:
        path = tmp_path / file_name
        path.write_bytes(content[:cut])
        out = list(read_warc(path))
        flagged = [r for r in out if isinstance(r, Quarantined)]
        assert len(flagged) == 1 and flagged[0] is out[-1], (file_name, cut, flagged)
        seen[flagged[0].reason] += 1
    assert set(seen) <= {Reason.TRUNCATED_WARC_RECORD, Reason.TRUNCATED_GZIP, Reason.UNREADABLE_FILE}
    assert seen[Reason.TRUNCATED_WARC_RECORD] > len(cases) // 2


# --------------------------------------------------------------------------------------------------
# dispatch and frames
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt",
    [("a.jsonl", "jsonl"), ("a.JSONL.GZ", "jsonl"), ("a.json.gz", "jsonl"), ("part-0.parquet", "parquet"),
     ("x.warc", "warc"), ("CC-MAIN-1.warc.gz", "warc")],
)
def test_detect_format(name, fmt):
    assert detect_format(f"/data/{name}") == fmt


@pytest.mark.parametrize("name", ["a.json", "a.txt", "a.csv.gz", "warc.gz", "noext"])
def test_detect_format_rejects_unknown(name):
    with pytest.raises(ValueError, match="cannot tell the input format"):
        detect_format(name)


def test_list_input_files(tmp_path):
    for rel in ["b/2.jsonl", "a.jsonl", "b/c/3.jsonl.gz", "_SUCCESS", ".a.jsonl.crc", "_delta_log/0.json", ".hidden/x.jsonl"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    expected = [str(tmp_path / p) for p in ["a.jsonl", "b/2.jsonl", "b/c/3.jsonl.gz"]]
    assert list_local_files(tmp_path) == expected
    assert list_local_files(str(tmp_path / "**" / "*.jsonl*")) == expected
    assert list_local_files(str(tmp_path / "*")) == expected
    assert list_local_files(tmp_path / "a.jsonl") == [str(tmp_path / "a.jsonl")]
    with pytest.raises(FileNotFoundError):
        list_local_files(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        list_local_files(str(tmp_path / "*.parquet"))


def test_read_file_options(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [b'{"k": "1", "body": "text"}'])
    (doc,) = read_file(path, "auto", id_field="k", text_field="body", max_text_bytes=100, only_2xx=True)
    assert doc.doc_id == "1"  # only_2xx (a WARC option) is ignored for JSON Lines
    with pytest.raises(TypeError, match="text_feild"):
        read_file(path, text_feild="body")
    with pytest.raises(ValueError, match="Delta"):
        read_file(path, "delta")


def test_frames_schema(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [line for line, _ in LINES])
    records = list(read_jsonl(path))
    (frame,) = iter_record_frames(records)
    assert tuple(frame.columns) == RECORD_COLUMNS and len(frame) == len(records)
    assert str(frame["record_index"].dtype) == "Int64"
    assert set(frame["kind"]) == {"document", "quarantine"}
    assert frame["reason"].isna().sum() == (frame["kind"] == "document").sum()

    (file_level,) = read_jsonl(tmp_path / "missing.jsonl")
    (frame_of_file,) = iter_record_frames([file_level])
    assert frame_of_file["record_index"].isna().all()

    chunks = list(iter_record_frames(records, max_rows=4))
    assert [len(c) for c in chunks] == [4] * (len(records) // 4) + ([len(records) % 4] if len(records) % 4 else [])
    assert pd.concat(chunks, ignore_index=True).equals(frame)
    assert list(iter_record_frames([])) == []
