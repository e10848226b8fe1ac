"""The executor pandas UDF on a real SparkSession: rows equal ``execute_batch``; Delta round trip; the sample
corpus's hand-written programs.

Real documents come from ``../shared/data/cleaning/trafilatura_eval_segments.jsonl.gz`` (read in place),
with programs of the kinds a chunk model writes, good and bad.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from prox_spark.programs import BATCH_COLUMNS, execute_batch

N_DOCS = 50
MODES = [("doc", "reference"), ("doc", "strict"), ("chunk", "reference"), ("chunk", "strict")]
_PLAIN_WORD = re.compile(r"^[^\W\d_]{5,}$")  # letters only: safe inside a reference-dialect normalize


def _word_in(text: str) -> str:
    """A word that occurs in the document (from its middle lines), for a normalize that finds something."""
    lines = text.split("\n")
    middle = lines[len(lines) // 3 :] + lines
    for line in middle:
        for token in line.split():
            if _PLAIN_WORD.match(token):
                return token
    return "the"


def _chunk_program(i: int, text: str) -> str | None:
    n = len(text.split("\n"))
    word = _word_in(text)
    kind = i % 9
    if kind == 0:  # navigation at the top
        return "remove_lines(line_start=0, line_end=1)"
    if kind == 1:  # an inline string that exists in the document
        return f'remove_lines(line_start=0, line_end=0)\nnormalize(source_str="{word}", target_str="")'
    if kind == 2:  # off the end (one error, the rest still applies) and a string the page lacks (no error)
        return (
            "remove_lines(line_start=0, line_end=1)\n"
            f"remove_lines(line_start={n + 2}, line_end={n + 5})\n"
            'normalize(source_str="Copyright 1999 Nobody", target_str="")'
        )
    if kind == 3:  # malformed ops: the program is ignored (reference) or its errors reported (strict)
        return "remove_lines(line_start=2\nnormalize(source_str)"
    if kind == 4:  # a realistic 4-op program
        return (
            "remove_lines(line_start=0, line_end=2)\n"
            f'normalize(source_str="{word}", target_str="[x]")\n'
            f"remove_lines(line_start={max(n - 3, 0)}, line_end={n - 1})\n"
            "keep_chunk()"
        )
    if kind == 5:  # everything removed: kept fraction too low
        return f"remove_lines(line_start=0, line_end={n - 1})"
    if kind == 6:
        return None
    if kind == 7:
        return ""
    return "Sure! Here is the program for this chunk:\nkeep_chunk()"  # model chatter


_DOC_PROGRAMS = ["keep_doc()", "drop_doc()", "keep_doc()  # fine", "", None, "drop_doc() - spam", "keep_doc("]


@pytest.fixture(scope="module")
def documents(shared_data: Path) -> pd.DataFrame:
    path = shared_data / "cleaning" / "trafilatura_eval_segments.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("noisy_text", "").strip():
                rows.append(record)
            if len(rows) == N_DOCS:
                break
    frame = pd.DataFrame(
        {
            "id": [str(r["id"]) for r in rows],
            "text": [r["noisy_text"] for r in rows],
            "doc_program": [_DOC_PROGRAMS[i % len(_DOC_PROGRAMS)] for i in range(len(rows))],
            "chunk_program": [_chunk_program(i, r["noisy_text"]) for i, r in enumerate(rows)],
        }
    )
    # Inputs a reader can hand over too: a null text and a whitespace-only one.
    extra = pd.DataFrame(
        {
            "id": ["null-text", "blank-text"],
            "text": [None, "  \n "],
            "doc_program": ["keep_doc()", "keep_doc()"],
            "chunk_program": ["remove_lines(line_start=0, line_end=0)", "keep_chunk()"],
        }
    )
    return pd.concat([frame, extra], ignore_index=True)


def _column(mode: tuple[str, str]) -> str:
    return f"{mode[0]}_{mode[1]}"


@pytest.fixture(scope="module")
def spark_results(spark, documents):
    """All four stage/dialect UDFs over the documents in one Spark job, collected by id."""
    from prox_spark.udfs import make_executor_udf

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")  # several Arrow batches per task
    try:
        df = spark.createDataFrame(documents, "id STRING, text STRING, doc_program STRING, chunk_program STRING")
        df = df.repartition(3)
        selected = [
            make_executor_udf(stage, dialect)("text", f"{stage}_program").alias(_column((stage, dialect)))
            for stage, dialect in MODES
        ]
        rows = df.select("id", *selected).collect()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    return {row.id: row.asDict(recursive=True) for row in rows}


@pytest.mark.spark
@pytest.mark.parametrize("mode", MODES, ids=_column)
def test_udf_rows_equal_execute_batch(spark_results, documents, mode):
    stage, dialect = mode
    expected = execute_batch(documents["text"], documents[f"{stage}_program"], stage=stage, dialect=dialect)
    assert list(expected.columns) == list(BATCH_COLUMNS)
    assert len(spark_results) == len(documents)
    for doc_id, want in zip(documents["id"], expected.to_dict("records")):
        got = spark_results[doc_id][_column(mode)]
        assert got == want, f"{doc_id} {stage}/{dialect}"


@pytest.mark.spark
def test_inputs_cover_the_interesting_outcomes(spark_results):
    """Guard for the test itself: the programs above really reach each decision path."""
    outcomes = {(r["chunk_reference"]["outcome"], r["chunk_reference"]["reason"]) for r in spark_results.values()}
    assert ("kept", None) in outcomes
    assert ("kept_original", "too_many_errors") in outcomes
    assert ("dropped", "kept_fraction_too_low") in outcomes
    assert ("dropped", "empty_text") in outcomes
    statuses = {op["status"] for r in spark_results.values() for op in r["chunk_reference"]["ops"]}
    assert {"applied", "not_found", "out_of_range", "parse_error", "ignored"} <= statuses
    doc_reasons = {r["doc_reference"]["reason"] for r in spark_results.values()}
    assert {None, "doc_program_drop", "empty_text"} <= doc_reasons


@pytest.mark.spark
def test_delta_round_trip_with_spark_sql(spark, documents, tmp_path):
    from prox_spark.udfs import make_executor_udf

    chunk = make_executor_udf("chunk", "reference")
    df = spark.createDataFrame(documents, "id STRING, text STRING, doc_program STRING, chunk_program STRING")
    out = df.select("id", chunk("text", "chunk_program").alias("r")).select("id", "r.*")
    path = str(tmp_path / "executed")
    out.write.format("delta").mode("overwrite").save(path)

    expected = execute_batch(documents["text"], documents["chunk_program"], stage="chunk", dialect="reference")
    totals = spark.sql(
        f"""SELECT count(*) AS docs, sum(CASE WHEN kept THEN 1 ELSE 0 END) AS kept,
                   sum(words_after) AS words_after, sum(errors) AS errors, sum(n_ops) AS n_ops
            FROM delta.`{path}`"""
    ).first()
    assert totals.docs == len(documents)
    assert totals.kept == int(expected["kept"].sum())
    assert totals.words_after == int(expected["words_after"].sum())
    assert totals.errors == int(expected["errors"].sum())
    assert totals.n_ops == int(expected["n_ops"].sum())

    by_status = {
        row.status: row.n
        for row in spark.sql(
            f"SELECT op.status AS status, count(*) AS n FROM delta.`{path}` LATERAL VIEW explode(ops) t AS op GROUP BY op.status"
        ).collect()
    }
    want_status: dict[str, int] = {}
    for ops in expected["ops"]:
        for op in ops:
            want_status[op["status"]] = want_status.get(op["status"], 0) + 1
    assert by_status == want_status

    reasons = dict(
        spark.sql(f"SELECT reason, count(*) FROM delta.`{path}` WHERE reason IS NOT NULL GROUP BY reason").collect()
    )
    assert reasons == expected["reason"].dropna().value_counts().to_dict()


def test_make_executor_udf_rejects_unknown_modes():
    from prox_spark.udfs import make_executor_udf

    with pytest.raises(ValueError, match="stage"):
        make_executor_udf("paragraph", "reference")
    with pytest.raises(ValueError, match="dialect"):
        make_executor_udf("chunk", "lenient")


def test_result_type_mirrors_the_batch_contract():
    from prox_spark.programs.batch import OP_FIELDS
    from prox_spark.udfs import EXECUTOR_RESULT_TYPE, OPS_TYPE

    assert tuple(EXECUTOR_RESULT_TYPE.fieldNames()) == tuple(BATCH_COLUMNS)
    assert tuple(OPS_TYPE.elementType.fieldNames()) == tuple(OP_FIELDS)


def test_missing_jars_error_names_make_jars(tmp_path, monkeypatch):
    from prox_spark.udfs.delta_jars import JARS_DIR_ENV, DeltaJarsMissing
    from prox_spark.udfs.session import local_session_conf

    monkeypatch.setenv(JARS_DIR_ENV, str(tmp_path / "no-jars-here"))
    with pytest.raises(DeltaJarsMissing, match="make jars"):
        local_session_conf()


@pytest.mark.spark
def test_get_session_returns_the_active_session(spark):
    from prox_spark.udfs.session import get_session

    assert get_session() is spark


# --- the sample corpus's hand-written programs -------------------------------------------------------------
# (``prox-spark apply`` re-executes a run's stored programs in Spark: tests/test_apply.py)

SAMPLE = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "sample_corpus.jsonl"
SAMPLE_EXPECTED = dict(docs_in=24, kept=18, dropped=6, program_ignored=1, words_before=3145, words_after=2224)


def _plain_pipeline(corpus: Path) -> dict:
    """The sample's numbers: doc stage, then chunk stage on the kept docs (the final text by id)."""
    frame = pd.read_json(corpus, lines=True, dtype=False)
    doc = execute_batch(frame["text"], frame["doc_program"], stage="doc")
    kept_docs = doc["kept"].to_numpy()
    chunk = execute_batch(doc["text"][kept_docs], frame["chunk_program"][kept_docs], stage="chunk")
    reasons = {("doc", r): n for r, n in doc["reason"][~kept_docs].value_counts().items()}
    for r, n in chunk["reason"][~chunk["kept"]].value_counts().items():
        reasons[("chunk", r)] = n
    return dict(
        docs_in=len(frame),
        kept=int(chunk["kept"].sum()),
        dropped=len(frame) - int(chunk["kept"].sum()),
        program_ignored=int((chunk["outcome"] == "kept_original").sum()),
        words_before=int(doc["words_before"].sum()),
        words_after=int(chunk["words_after"][chunk["kept"]].sum()),
        reasons=reasons,
        texts=dict(zip(frame["id"][kept_docs], chunk["text"])),
    )


def test_sample_corpus_programs_give_their_outcomes():
    plain = _plain_pipeline(SAMPLE)
    assert {k: plain[k] for k in SAMPLE_EXPECTED} == SAMPLE_EXPECTED
    assert plain["reasons"] == {
        ("doc", "doc_program_drop"): 4,
        ("chunk", "kept_fraction_too_low"): 1,
        ("chunk", "too_few_words"): 1,
    }
    cleaned = plain["texts"]["sample-01-recipe-lentil-soup"]
    assert cleaned.startswith("Smoky Red Lentil Soup (30 Minutes)\nPosted on 12 March by Hannah\n")
    assert "cookies" not in cleaned and "All rights reserved" not in cleaned
