"""Input under paths Hadoop URL-encodes (a space, ``%``, ``#``, ``+``, non-ASCII): every record is accounted for.

Spark spells one file two ways: a Delta table's ``inputFiles()`` gives the decoded path
(``file:/tmp/in put é/part-0.parquet``) while a row's ``_metadata.file_path`` and a ``binaryFile`` listing
give the URI (``file:/tmp/in%20put%20é/part-0.parquet``). The refine job matched a table row to its listed
data file by comparing the two, so under such a path no row matched and the rows were filtered out before
anything counted them: the balance check (read = kept + dropped + quarantined) held, and only a run that
lost *every* row failed ("no records read"); a partitioned table lost just the partitions whose folder
names Delta escapes, and passed. JSONL and WARC files by ``file:`` URI were listed (``binaryFile``) as
percent-encoded URIs that the tasks opened undecoded: every file ``unreadable_file``.

These tests run the real refine job (``pipeline.mode=rules``: the listing and the matching are the same
whatever the stages) over such paths, for Delta by path, a metastore table, and JSONL and WARC files by
plain path and by ``file:`` URI; and check that a row whose file the listing spells otherwise fails the
run, naming the counts, instead of going missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prox_spark.udfs import refine_plan as plan
from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.udfs.summary import RunCheckError
from prox_spark.config import load_config

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: a folder name with what Hadoop URL-encodes (a space, ``#``, ``%``), ``+`` (which a form decoder misreads as a
#: space) and non-ASCII text; no `` #``, which a ``key=value`` override reads as the start of a YAML comment
ODD_NAME = "in put é#1 %41+"
WORDS = " ".join(["plain", "body", "text", "about", "gardens"] * 12)


def _config(input_path, output, *extra):
    return load_config(
        None,
        [f"input.path={input_path}", f"output.path={output}", "pipeline.mode=rules", "input.partitions=2", *extra],
    )


def _table(spark, rows, path: Path, *, partition_by: str | None = None, files: int = 2) -> None:
    frame = spark.createDataFrame(rows, "id string, text string, lang string").repartition(files)
    writer = frame.write.format("delta")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(str(path))


def _rows(n: int, langs=("en",)):
    """``n`` documents over ``langs`` and a row without text (quarantined)."""
    docs = [(f"doc-{i}", f"{WORDS} number {i}", langs[i % len(langs)]) for i in range(n)]
    return docs + [("no-text", None, langs[0])]


def _accounted(spark, out: Path, run_id: str) -> list[str]:
    """Doc ids of the run's ``refined`` and ``quarantine`` rows, sorted (each input record exactly once)."""
    ids = []
    for name in ("refined", "quarantine"):
        table = spark.read.format("delta").load(str(out / name)).filter(f"run_id = '{run_id}'")
        ids += [r.doc_id for r in table.select("doc_id").collect()]
    return sorted(ids)


def _expected_ids(rows) -> list[str]:
    return sorted(r[0] for r in rows)


def test_delta_table_under_a_path_hadoop_encodes(spark, tmp_path):
    rows = _rows(8)
    source = tmp_path / ODD_NAME / "crawl table"
    _table(spark, rows, source)
    out = tmp_path / "out"
    config = _config(source, out, "run_id=odd-delta", "input.format=delta")
    summary = run_refine(spark, config, preflight(config))
    assert summary.balanced and summary.records_read == len(rows)
    assert summary.shards == len(spark.read.format("delta").load(str(source)).inputFiles())
    assert _accounted(spark, out, "odd-delta") == _expected_ids(rows)
    # a rerun finds every data file committed under the shard the rows were written to
    again = run_refine(spark, config, preflight(config))
    assert again.records_read == len(rows) and _accounted(spark, out, "odd-delta") == _expected_ids(rows)


def test_partitioned_delta_table_loses_no_partition(spark, tmp_path):
    """Delta escapes ``%`` and ``/`` in a partition folder's name (``lang=p q%2Fé%25``): under a plain table
    path only those partitions' rows were lost, the others read, and the run passed its balance check."""
    rows = _rows(9, langs=("en", "p q/é%", "zz"))
    source = tmp_path / "plain-table"
    _table(spark, rows, source, partition_by="lang", files=1)
    out = tmp_path / "out"
    config = _config(source, out, "run_id=odd-partitions", "input.format=delta")
    summary = run_refine(spark, config, preflight(config))
    assert summary.records_read == len(rows)
    assert _accounted(spark, out, "odd-partitions") == _expected_ids(rows)


def test_metastore_table_whose_location_hadoop_encodes(spark, tmp_path):
    rows = _rows(6)
    location = tmp_path / ODD_NAME / "crawl"
    _table(spark, rows, location)
    name = "odd_location_crawl"
    spark.sql(f"DROP TABLE IF EXISTS spark_catalog.default.{name}")
    spark.sql(f"CREATE TABLE spark_catalog.default.{name} USING delta LOCATION '{location}'")
    try:
        out = tmp_path / "out"
        config = load_config(None, [f"input.table=spark_catalog.default.{name}", f"output.path={out}",
                                    "pipeline.mode=rules", "run_id=odd-table"])
        summary = run_refine(spark, config, preflight(config))
        assert summary.balanced and summary.records_read == len(rows)
        assert _accounted(spark, out, "odd-table") == _expected_ids(rows)
    finally:
        spark.sql(f"DROP TABLE IF EXISTS spark_catalog.default.{name}")


def test_a_row_that_matches_no_listed_file_fails_the_run(spark, tmp_path, monkeypatch):
    """Should a listed data file's spelling ever differ from its rows' again, the run fails naming the counts
    and commits no shard, rather than commit the file with its rows left out."""
    rows = _rows(4)
    source = tmp_path / ODD_NAME / "crawl table"
    _table(spark, rows, source, files=1)
    [decoded] = spark.read.format("delta").load(str(source)).inputFiles()  # the spelling the job once listed
    out = tmp_path / "out"
    config = _config(source, out, "run_id=mismatch", "input.format=delta")
    [rows_in_file] = plan.table_data_files(spark, config).values()
    assert rows_in_file == len(rows)
    monkeypatch.setattr(plan, "table_data_files", lambda spark, config: {decoded: rows_in_file})
    with pytest.raises(RunCheckError, match=r"5 rows listed in 1 data file\(s\) of this commit but 0 read") as failed:
        run_refine(spark, config, preflight(config))
    assert f"{decoded}: 5 listed, 0 read" in str(failed.value)
    assert spark.read.format("delta").load(str(out / "shards")).count() == 0
    run = spark.read.format("delta").load(str(out / "runs")).first()
    assert run.status == "failed"


@pytest.mark.parametrize("as_uri", [False, True], ids=["plain-path", "file-uri"])
def test_jsonl_and_warc_files_under_a_path_hadoop_encodes(spark, tmp_path, shared_data, as_uri):
    corpus = tmp_path / ODD_NAME / "crawl é"
    corpus.mkdir(parents=True)
    records = [{"id": f"j{i}", "text": f"{WORDS} {i}"} for i in range(5)]
    (corpus / "part 1 é#%41+.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    shutil.copy(shared_data / "warc" / "sample-0000.warc.gz", corpus / "crawl é #2.warc.gz")
    spec = f"file:{corpus}" if as_uri else str(corpus)  # a Hadoop path: not percent-encoded
    out = tmp_path / "out"
    config = _config(spec, out, "run_id=odd-files")
    checked = preflight(config, spark)
    assert len(checked.files) == 2
    summary = run_refine(spark, config, checked)
    assert summary.balanced and summary.shards == 2
    assert not summary.quarantine_reasons, summary.quarantine_reasons
    assert summary.records_read > len(records)  # the WARC's pages too
    refined = spark.read.format("delta").load(str(out / "refined")).filter("run_id = 'odd-files'")
    assert {f"j{i}" for i in range(5)} <= {r.doc_id for r in refined.select("doc_id").collect()}
