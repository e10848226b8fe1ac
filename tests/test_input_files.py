"""Input by URI: Hadoop FileSystem listing on the driver, pyarrow.fs opening in the tasks.

``file:`` URIs take exactly the code path ``s3://``/``abfss://``/``gs://`` take (Spark's file index to
list, ``pyarrow.fs`` to open); only the filesystem behind them differs.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prox_spark.readers import Quarantined
from prox_spark.readers.dispatch import read_file
from prox_spark.readers.storage import arrow_location, hadoop_local_path, local_path, open_input, uri_scheme

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "spec, scheme, local, arrow",
    [
        ("/data/crawl/a.jsonl", None, "/data/crawl/a.jsonl", "/data/crawl/a.jsonl"),
        ("relative/a.jsonl", None, "relative/a.jsonl", "relative/a.jsonl"),
        ("C:\\data\\a.jsonl", None, "C:\\data\\a.jsonl", "C:\\data\\a.jsonl"),  # a drive letter is no scheme
        ("file:/data/a.jsonl", "file", "/data/a.jsonl", "/data/a.jsonl"),  # Hadoop's spelling
        ("file:///data/a.jsonl", "file", "/data/a.jsonl", "/data/a.jsonl"),
        ("dbfs:/mnt/raw/a.jsonl", "dbfs", "/dbfs/mnt/raw/a.jsonl", "/dbfs/mnt/raw/a.jsonl"),
        # a URI as Spark lists it is percent-encoded: a space, "#", "%" and non-ASCII text decode to the file's name
        ("file:///data/in%20put%20é%231%20%2541+/a.jsonl", "file", "/data/in put é#1 %41+/a.jsonl",
         "/data/in put é#1 %41+/a.jsonl"),
        ("dbfs:/mnt/in%20put/a%23b.jsonl", "dbfs", "/dbfs/mnt/in put/a#b.jsonl", "/dbfs/mnt/in put/a#b.jsonl"),
        ("s3a://bucket/in%20put/a.jsonl", "s3a", None, "s3://bucket/in%20put/a.jsonl"),  # pyarrow decodes it
        ("s3a://bucket/crawl/a.warc.gz", "s3a", None, "s3://bucket/crawl/a.warc.gz"),
        ("S3://bucket/a.jsonl", "s3", None, "s3://bucket/a.jsonl"),
        ("gs://bucket/a.parquet", "gs", None, "gs://bucket/a.parquet"),
        ("abfss://c@acct.dfs.core.windows.net/a.jsonl", "abfss", None, "abfss://c@acct.dfs.core.windows.net/a.jsonl"),
    ],
)
def test_uri_mapping(spec, scheme, local, arrow):
    assert uri_scheme(spec) == scheme
    assert local_path(spec) == local
    assert arrow_location(spec) == arrow


@pytest.mark.parametrize(
    "typed, local",
    [
        ("/data/in put é#1 %41+", "/data/in put é#1 %41+"),
        ("file:/data/in put é#1 %41+", "/data/in put é#1 %41+"),  # Hadoop's Path takes "#" and "%41" literally
        ("file:///data/in put", "/data/in put"),
        ("file://localhost/data/x%41", "/data/x%41"),
        ("dbfs:/mnt/in put/x%41", "/dbfs/mnt/in put/x%41"),
        ("s3://bucket/in put", None),
    ],
)
def test_a_typed_hadoop_path_is_not_percent_decoded(typed, local):
    assert hadoop_local_path(typed) == local


def test_open_input_reads_file_uris_and_reports_unknown_schemes(tmp_path):
    path = tmp_path / "a b.jsonl"
    path.write_bytes(b'{"id": "1", "text": "hello"}\n')
    for spec in (str(path), f"file://{path}", f"file:{path}"):
        with open_input(spec) as handle:
            assert handle.read() == path.read_bytes()
    with pytest.raises(OSError, match="nosuchfs"):
        open_input("nosuchfs://bucket/a.jsonl")
    with pytest.raises(OSError):
        open_input(f"file://{tmp_path}/missing.jsonl")


def _key(record) -> tuple:
    if isinstance(record, Quarantined):
        return ("Quarantined", record.reason, record.record_index)
    return ("Document", record.doc_id, record.text)


def test_readers_take_uris_for_every_format(tmp_path, shared_data):
    """JSONL.gz, parquet and WARC by ``file://`` URI give the same records as by path; a missing file
    is an ``unreadable_file`` quarantine record, not an exception."""
    with gzip.open(tmp_path / "pages.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write(json.dumps({"id": "p1", "text": "a page"}) + "\n{broken\n")
    pq.write_table(pa.table({"id": ["q1", "q2"], "text": ["one", "two"]}), tmp_path / "t.parquet")
    shutil.copy(shared_data / "warc" / "sample-0000.warc.gz", tmp_path / "crawl.warc.gz")
    for name in ("pages.jsonl.gz", "t.parquet", "crawl.warc.gz"):
        by_path = [_key(r) for r in read_file(tmp_path / name)]
        by_uri = [_key(r) for r in read_file(f"file://{tmp_path}/{name}")]
        assert by_uri == by_path and any(key[0] == "Document" for key in by_uri), name
    missing = list(read_file(f"file://{tmp_path}/gone.jsonl"))
    assert len(missing) == 1 and isinstance(missing[0], Quarantined) and missing[0].reason == "unreadable_file"


@pytest.fixture()
def uri_corpus(tmp_path):
    """Two shards under a directory with the files Spark and Hadoop skip (hidden, ``_``-prefixed)."""
    root = tmp_path / "corpus"
    (root / "day=1" / ".staging").mkdir(parents=True)
    (root / "_temporary").mkdir()
    (root / "a.jsonl").write_text(json.dumps({"id": "a1", "text": "first doc"}) + "\nnot json\n", encoding="utf-8")
    with gzip.open(root / "day=1" / "b.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write(json.dumps({"id": "b1", "text": "second doc"}) + "\n")
    for skipped in ("_SUCCESS", ".a.jsonl.crc", "_temporary/x.jsonl", "day=1/.staging/y.jsonl"):
        (root / skipped).write_text(json.dumps({"id": "skip", "text": "must not be read"}) + "\n", encoding="utf-8")
    return root


@pytest.mark.spark
def test_spark_lists_and_reads_uri_inputs(spark, uri_corpus, tmp_path):
    """The job's preflight lists a ``file://`` directory through Hadoop (same files as the local listing,
    hidden ones skipped, globs too) and its read stage opens those URIs in the tasks."""
    from prox_spark.udfs import refine_plan as plan
    from prox_spark.udfs.input_files import list_input_files
    from prox_spark.udfs.preflight import preflight
    from prox_spark.config import ConfigError, load_config

    uri = f"file://{uri_corpus}"
    models = REPO_ROOT / "prox_spark" / "resources" / "models"
    common = [f"output.path={tmp_path / 'out'}", f"models.doc.path={models / 'doc'}", f"models.chunk.path={models / 'chunk'}"]
    config = load_config(None, [f"input.path={uri}", *common])
    files = preflight(config, spark).files
    assert files == [f"file://{uri_corpus}/a.jsonl", f"file://{uri_corpus}/day=1/b.jsonl.gz"]
    assert [local_path(f) for f in files] == list_input_files(str(uri_corpus))
    assert list_input_files(f"{uri}/*/*.jsonl.gz", spark) == files[1:]
    with pytest.raises(ConfigError, match="does not exist"):
        preflight(load_config(None, [f"input.path={uri}/nothing", *common]), spark)
    with pytest.raises(ValueError, match="needs a SparkSession"):
        list_input_files(uri)

    rows = plan.read_records(spark, files, config).collect()
    docs = sorted((r.doc_id, r.text, r.shard, r.source_file) for r in rows if r.kind == "document")
    assert docs == [("a1", "first doc", plan.shard_of(files[0]), files[0]),
                    ("b1", "second doc", plan.shard_of(files[1]), files[1])]
    # a shard is its file: named by the file, keyed by its full path, the same for the path and its file: URI
    assert [plan.shard_of(f).split("@")[0] for f in files] == ["a.jsonl", "b.jsonl.gz"]
    assert [plan.shard_of(f) for f in files] == [plan.shard_of(local_path(f)) for f in files]
    bad = [(r.reason, r.record_index) for r in rows if r.kind == "quarantine"]
    assert bad == [("invalid_json", 1)]
    assert "skip" not in {r.doc_id for r in rows}
