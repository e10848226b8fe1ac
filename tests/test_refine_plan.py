"""The refine job's record split on a real SparkSession: repeated doc ids are quarantined, the first copy kept."""

from __future__ import annotations

import pytest

from prox_spark.readers.dispatch import RECORD_SPARK_DDL

pytestmark = pytest.mark.spark


def _record(doc_id, source_file, index, text="text", kind="document"):
    return (kind, doc_id, text, source_file, index, None, None, None, None, None, source_file.split("/")[-1])


def test_repeated_doc_ids_keep_the_first_copy_and_quarantine_the_rest(spark):
    from prox_spark.udfs.refine_plan import split_records

    rows = [
        _record("a", "/in/b.jsonl", 0, "a from b"),
        _record("a", "/in/a.jsonl", 5, "a from a, line 5"),
        _record("a", "/in/a.jsonl", 2, "a from a, line 2"),  # the first copy: smallest (file, index)
        _record("b", "/in/b.jsonl", 1, "only b"),
        _record("c", "/in/a.jsonl", 0, "c first"),
        _record("c", "/in/a.jsonl", 7, "c again"),
        ("quarantine", None, None, "/in/a.jsonl", 9, None, None, "{bad", "invalid_json", "line 10", "a.jsonl"),
    ]
    records = spark.createDataFrame(rows, RECORD_SPARK_DDL + ", shard string").repartition(3)
    docs, quarantine = split_records(records)
    kept = {(r.doc_id, r.source_file, r.record_index, r.text) for r in docs.collect()}
    assert kept == {("a", "/in/a.jsonl", 2, "a from a, line 2"), ("b", "/in/b.jsonl", 1, "only b"),
                    ("c", "/in/a.jsonl", 0, "c first")}
    assert set(docs.columns) >= {"doc_id", "text", "source_file", "record_index", "url", "metadata_json", "shard"}
    assert not {"kind", "raw", "reason", "detail", "_first"} & set(docs.columns)
    bad = {(r.doc_id, r.source_file, r.record_index, r.reason, r.raw) for r in quarantine.collect()}
    assert bad == {
        ("a", "/in/b.jsonl", 0, "duplicate_doc_id", "a from b"),
        ("a", "/in/a.jsonl", 5, "duplicate_doc_id", "a from a, line 5"),
        ("c", "/in/a.jsonl", 7, "duplicate_doc_id", "c again"),
        (None, "/in/a.jsonl", 9, "invalid_json", "{bad"),
    }
    assert len(kept) + len(bad) == len(rows)  # every record accounted for
