"""Unity Catalog names: outputs under ``catalog.schema.table``, every part quoted, and a metastore table as input.

Local Spark has one catalog, ``spark_catalog``, and its session catalog accepts only letters, digits and ``_``
in schema names; ``2027`` still needs quoting (unquoted, SQL reads it as a number), so the end-to-end tests use
``spark_catalog`` + ``2027`` through the real job's command line. Names a local catalog refuses (a hyphen, a
backtick) are checked on the name builder alone, as Unity Catalog accepts them quoted.

Spark tests: the refine job creates the schema only when it is missing (a rerun issues no ``CREATE SCHEMA``
and no ``CREATE TABLE``), the counts balance, a rerun rewrites nothing, and the audits run over the
metastore names; ``input.table`` reads a table with a JSONL record's columns and refines it as the JSONL
file would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from prox_spark.udfs import audit
from prox_spark.jobs.refine import main as refine_main
from prox_spark.udfs.tables import ALL_TABLES, quote_identifier, table_location
from prox_spark.config import ConfigError, OutputConfig, load_config, split_name

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO_ROOT / "conf" / "local.yaml"
#: a schema name the session catalog accepts that SQL misreads unless it is quoted
SCHEMA = "2027"


# --------------------------------------------------------------------------------------------------
# names (no Spark)
# --------------------------------------------------------------------------------------------------


def test_catalog_and_schema_from_two_keys_or_one():
    both = load_config(None, ["output.catalog=main", "output.database=prox-2026"]).output
    dotted = load_config(None, ["output.database=main.prox-2026"]).output
    assert both.namespace == dotted.namespace == ("main", "prox-2026")
    assert load_config(None, ["output.database=prox"]).output.namespace == ("prox",)
    assert load_config(None, ["output.path=/data/prox"]).output.namespace == ()
    quoted = load_config(None, ["output.database=`my.cat`.`pro``x`"]).output
    assert quoted.namespace == ("my.cat", "pro`x")
    for overrides, message in [
        (["output.catalog=main"], "output.catalog: 'main' needs output.database"),
        (["output.catalog=main", "output.database=other.prox"], "give the catalog once"),
        (["output.database=a.b.c"], "expected schema or catalog.schema"),
        (["output.database=main..prox"], "not a dotted name"),
        (["output.database=`main"], "not a dotted name"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)


def test_every_part_of_a_table_name_is_quoted_and_backticks_doubled():
    output = OutputConfig(catalog="main", database="prox-2026", refined_table="re`fined")
    names = {spec.key: table_location(output, spec) for spec in ALL_TABLES}
    assert names["refined"] == "`main`.`prox-2026`.`re``fined`"
    assert names["runs"] == "`main`.`prox-2026`.`runs`"
    assert table_location(OutputConfig(database="2026"), ALL_TABLES[0]) == "`2026`.`refined`"
    assert quote_identifier("a`b") == "`a``b`"
    # the audits' SQL parameters are the same quoted names
    assert audit.table_names(output) == names


def test_input_table_key():
    assert load_config(None, ["input.table=main.raw.crawl"]).input.reads_table
    assert split_name("main.`raw-2026`.crawl", "input.table") == ["main", "raw-2026", "crawl"]
    for overrides, message in [
        (["input.table=t", "input.path=/data"], "not both"),
        (["input.table=t", "input.format=jsonl"], "does not apply to input.table"),
        (["input.table=a.b.c.d"], "catalog.schema.table"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)


# --------------------------------------------------------------------------------------------------
# the refine job over three-level names (real Spark, real Delta)
# --------------------------------------------------------------------------------------------------


@pytest.fixture()
def statements(monkeypatch) -> list[str]:
    """Every SQL statement the job sends through ``SparkSession.sql`` while the test runs."""
    seen: list[str] = []
    original = SparkSession.sql

    def recording(self, query, *args, **kwargs):
        seen.append(" ".join(str(query).split()))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(SparkSession, "sql", recording)
    return seen


def _refine(*overrides: str) -> int:
    return refine_main(["--conf", str(LOCAL_CONF), "pipeline.mode=rules", "output.path=", *overrides])


@pytest.mark.spark
@pytest.mark.slow
def test_refine_into_three_level_names(spark, sample_shards, statements):
    corpus = sample_shards
    spark.sql(f"DROP SCHEMA IF EXISTS `spark_catalog`.`{SCHEMA}` CASCADE")
    names = ["output.catalog=spark_catalog", f"output.database={SCHEMA}"]
    assert _refine(f"input.path={corpus}", "run_id=uc", *names) == 0
    output = OutputConfig(catalog="spark_catalog", database=SCHEMA)
    tables = {spec.key: table_location(output, spec) for spec in ALL_TABLES}
    assert tables["refined"] == f"`spark_catalog`.`{SCHEMA}`.`refined`"
    assert all(spark.catalog.tableExists(name) for name in tables.values())
    # the schema was missing: created once, and every table under its three-level name
    assert [s for s in statements if s.startswith("CREATE SCHEMA")] == [f"CREATE SCHEMA IF NOT EXISTS `spark_catalog`.`{SCHEMA}`"]
    created = sorted(s.split(" (", 1)[0] for s in statements if s.startswith("CREATE TABLE"))
    assert created == sorted(f"CREATE TABLE IF NOT EXISTS {name}" for name in tables.values())

    run = spark.read.table(tables["runs"]).where("run_id = 'uc'").first()
    assert run.status == "succeeded" and run.shards == 2
    assert run.input_docs == 25 == run.kept_docs + run.dropped_docs + run.quarantined_docs
    assert run.quarantined_docs == 1
    refined_before = sorted(spark.read.table(tables["refined"]).collect())
    assert len(refined_before) == 24

    # a rerun, the schema named the other way: the schema and the tables exist, so no CREATE at all, and
    # every shard is committed, so nothing is rewritten
    statements.clear()
    assert _refine(f"input.path={corpus}", "run_id=uc", f"output.database=spark_catalog.{SCHEMA}") == 0
    assert not [s for s in statements if s.startswith(("CREATE SCHEMA", "CREATE DATABASE", "CREATE TABLE"))]
    assert sorted(spark.read.table(tables["refined"]).collect()) == refined_before
    assert spark.read.table(tables["shards"]).count() == 2
    assert [r.attempt for r in spark.read.table(tables["runs"]).orderBy("attempt").collect()] == [1, 2]

    # the audits, as functions and as the plain SQL files, over the metastore names
    reasons = {f"{r.outcome}:{r.reason}": r.docs for r in audit.audit_drop_reasons(spark, output, "uc").collect()}
    assert sum(reasons.values()) == 25 and reasons["quarantined:invalid_json"] == 1
    assert sum(r.documents for r in audit.audit(spark, output, "shard_retention", "uc").collect()) == 24
    by_file = spark.sql(audit.load_sql("drop_reasons"), args=audit.table_names(output)).where("run_id = 'uc'")
    assert sum(r.docs for r in by_file.collect()) == 25
    assert audit.latest_run_id(spark, output) == "uc"


@pytest.mark.spark
@pytest.mark.slow
def test_refine_a_metastore_table_as_input(spark, sample_shards, tmp_path):
    """``input.table``: the JSONL records as a table (id, text, url), two data files, plus a row without text."""
    corpus = sample_shards
    records = [json.loads(line) for path in sorted(corpus.glob("*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{\"")]
    rows = [(r["id"], r["text"], f"https://example.org/{r['id']}") for r in records] + [("no-text", None, None)]
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS `spark_catalog`.`{SCHEMA}`")
    spark.sql(f"DROP TABLE IF EXISTS `spark_catalog`.`{SCHEMA}`.`crawl`")
    (spark.createDataFrame(rows, "id string, text string, url string").repartition(2)
     .write.format("delta").saveAsTable(f"`spark_catalog`.`{SCHEMA}`.`crawl`"))
    table = f"spark_catalog.{SCHEMA}.crawl"  # written unquoted: the job quotes each part
    from_table, from_files = tmp_path / "from-table", tmp_path / "from-files"

    assert _refine("input.path=", f"input.table={table}", f"output.path={from_table}", "run_id=uc-input") == 0
    assert _refine("input.path=", f"input.table={table}", f"output.path={from_table}", "run_id=uc-input") == 0
    assert _refine(f"input.path={corpus}", f"output.path={from_files}", "run_id=uc-files") == 0

    def read(output: Path, name: str):
        return spark.read.format("delta").load(str(output / name))

    runs = read(from_table, "runs").orderBy("attempt").collect()
    assert [r.attempt for r in runs] == [1, 2] and runs[0].input_path == table
    assert runs[0].shards == 2 and runs[0].input_docs == 25 and runs[0].quarantined_docs == 1
    assert [r.reason for r in read(from_table, "quarantine").collect()] == ["missing_text"]
    assert read(from_table, "shards").count() == 2  # the rerun found both data files committed
    key = ["doc_id", "text", "kept", "drop_stage", "drop_reason", "words_before", "words_after"]
    assert sorted(read(from_table, "refined").select(key).collect()) == sorted(read(from_files, "refined").select(key).collect())
    urls = {r.doc_id: r.url for r in read(from_table, "refined").collect()}
    assert urls[records[0]["id"]] == f"https://example.org/{records[0]['id']}"
    # the audits re-read the input table, as they re-read files
    assert audit.read_input_texts(spark, str(from_table), "uc-input").count() == 24
