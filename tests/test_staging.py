"""``spark.staging``: a commit's results kept in Spark storage (``persist``) or in staging Delta tables (``delta``).

Real Spark + Delta: the bundled sample pages refined with the bundled models, two commits, once per strategy.
``delta`` must write the same tables as ``persist``, never call ``persist``/``cache`` (Databricks serverless
refuses them), and leave its staging tables empty after each shard commit; with metastore outputs its staging
tables live in the output schema and are dropped once the run is done.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from jobs.preflight import preflight
from jobs.refine import run_refine
from jobs.staging import run_folder, run_table_prefix, staging_place, staging_root
from prox_spark.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO_ROOT / "conf" / "local.yaml"
#: programs columns that do not depend on timing (latency_ms does)
PROGRAM_KEY = ["shard", "doc_id", "stage", "chunk_index", "program", "errors", "outcome", "reason", "words_after"]


def test_staging_location_and_key():
    config = load_config(None, ["output.path=/data/prox", "spark.staging=delta"])
    assert staging_root(config) == "/data/prox/_staging"
    assert staging_place(config, "r1").table("stages") == f"/data/prox/_staging/{run_folder('r1')}/stages"
    assert staging_root(load_config(None, ["output.path=s3://b/prox", "output.staging_path=s3://b/tmp"])) == "s3://b/tmp"
    # metastore outputs: managed staging tables in the output schema, one pair per run id
    schema = load_config(None, ["output.catalog=main", "output.database=prox-2026", "spark.staging=delta"])
    assert staging_root(schema) == ""
    place = staging_place(schema, "Crawl/2026 11")
    assert place.namespace == ("main", "prox-2026") and place.prefix == run_table_prefix("Crawl/2026 11")
    assert re.fullmatch(r"`main`\.`prox-2026`\.`_prox_staging_crawl_2026_11_[0-9a-f]{8}_records`", place.table("records"))
    assert run_table_prefix("crawl/2026 11") != run_table_prefix("crawl_2026_11")
    assert staging_root(load_config(None, ["output.database=prox", "output.staging_path=s3://b/tmp"])) == "s3://b/tmp"
    # a Unity Catalog Volume holds files, not tables: refused, whichever key put the staging tables there
    for overrides in (["output.database=main.prox", "output.staging_path=/Volumes/main/prox/staging"],
                      ["output.path=dbfs:/Volumes/main/prox/out"]):
        with pytest.raises(ConfigError, match="Unity Catalog Volume"):
            staging_root(load_config(None, overrides + ["spark.staging=delta"]))
    with pytest.raises(ConfigError, match="spark.staging"):
        load_config(None, ["spark.staging=cache"])
    assert run_folder("crawl/2026 11") != run_folder("crawl_2026_11") and "/" not in run_folder("crawl/2026 11")


@pytest.fixture(scope="module")
def corpus(sample_shards) -> Path:
    """The bundled sample pages in two files (two shards), one of them with a line that is not JSON."""
    return sample_shards


def _config(corpus: Path, output: Path | None, staging: str, *overrides: str, database: str = ""):
    where = [f"output.path={output}"] if output is not None else ["output.path=", "output.catalog=spark_catalog",
                                                                  f"output.database={database}"]
    return load_config(str(LOCAL_CONF), [f"input.path={corpus}", *where, "run_id=staged",
                                         "input.shards_per_commit=1", f"spark.staging={staging}", *overrides])


def _run(spark, corpus: Path, output: Path | None, staging: str, *overrides: str, database: str = ""):
    config = _config(corpus, output, staging, *overrides, database=database)
    return run_refine(spark, config, preflight(config))


@pytest.fixture(scope="module")
def persisted(spark, corpus, tmp_path_factory) -> Path:
    """An uninterrupted run with ``persist``: the tables every other run here must equal."""
    output = tmp_path_factory.mktemp("staging") / "persist"
    summary = _run(spark, corpus, output, "persist")
    assert (summary.records_read, summary.quarantined) == (25, 1)
    return output


def _tables(spark, output: Path | None, database: str = "") -> dict[str, DataFrame]:
    def table(name: str) -> DataFrame:
        if output is None:
            return spark.read.table(f"`spark_catalog`.`{database}`.`{name}`")
        return spark.read.format("delta").load(str(output / name))

    return {name: table(name) for name in ("refined", "programs", "quarantine", "shards", "runs")}


def _assert_same_outputs(spark, expected: Path, output: Path | None, database: str = "") -> None:
    """The tables of an uninterrupted persist run, row for row: no duplicates, nothing missing."""
    want, got = _tables(spark, expected), _tables(spark, output, database)
    assert sorted(got["refined"].collect()) == sorted(want["refined"].collect())
    assert sorted(got["programs"].select(PROGRAM_KEY).collect()) == sorted(want["programs"].select(PROGRAM_KEY).collect())
    assert sorted(got["quarantine"].drop("detail").collect()) == sorted(want["quarantine"].drop("detail").collect())
    assert sorted(got["shards"].drop("committed_at").collect()) == sorted(want["shards"].drop("committed_at").collect())
    assert got["refined"].count() == 24 and got["shards"].count() == 2


def _staging_writes(spark, table: Path) -> int:
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()
    return sum(h.operation == "WRITE" for h in history)


@pytest.mark.spark
@pytest.mark.slow
def test_delta_staging_writes_the_tables_persist_writes_without_persisting(spark, corpus, persisted, tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("spark.staging=delta must not persist or cache (serverless refuses both)")

    with monkeypatch.context() as patch:
        patch.setattr(DataFrame, "persist", refuse)
        patch.setattr(DataFrame, "cache", refuse)
        staged = _run(spark, corpus, tmp_path / "delta", "delta")
        rerun = _run(spark, corpus, tmp_path / "delta", "delta")  # every shard committed: nothing staged

    assert (staged.records_read, staged.kept, staged.quarantined) == (25, _tables(spark, persisted)["refined"]
                                                                      .filter("kept").count(), 1)
    assert (rerun.records_read, rerun.kept) == (staged.records_read, staged.kept)
    _assert_same_outputs(spark, persisted, tmp_path / "delta")

    # both commits went through the staging tables, and each left them empty
    folder = tmp_path / "delta" / "_staging" / run_folder("staged")
    for name in ("records", "stages"):
        assert spark.read.format("delta").load(str(folder / name)).count() == 0, name
        assert _staging_writes(spark, folder / name) == 2, name  # one overwrite per commit
        assert not list((folder / name).glob("*.parquet")), name  # vacuumed: the staged text is off the disk


@pytest.mark.spark
@pytest.mark.slow
def test_metastore_outputs_stage_in_the_output_schema(spark, corpus, persisted):
    database = "staging2030"
    summary = _run(spark, corpus, None, "delta", database=database)
    assert summary.balanced and summary.records_read == 25
    _assert_same_outputs(spark, persisted, None, database)
    # every shard committed: the run's staging tables are gone from the schema
    place = staging_place(_config(corpus, None, "delta", database=database), "staged")
    assert place.namespace == ("spark_catalog", database)
    assert not any(spark.catalog.tableExists(place.table(name)) for name in ("records", "stages"))
    left = [row.tableName for row in spark.sql(f"SHOW TABLES IN `spark_catalog`.`{database}`").collect()]
    assert sorted(left) == ["programs", "quarantine", "refined", "runs", "shards"]
