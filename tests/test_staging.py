"""``spark.staging``: a commit's results kept in Spark storage (``persist``) or in staging Delta tables (``delta``).

Real Spark + Delta: the bundled sample pages refined with the bundled models, two commits, once per strategy.
``delta`` must write the same tables as ``persist``, never call ``persist``/``cache`` (Databricks serverless
refuses them), and leave its staging tables empty after each shard commit; with metastore outputs its staging
tables live in the output schema and are dropped once the run is done. A run interrupted after a commit's
results were staged (``faults.fail_after_staging_commit``) resumes from them: the rerun reads the staged rows
instead of running the models again, and writes exactly the tables of an uninterrupted run; staged rows of
other input files or settings are discarded and computed again.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from prox_spark.udfs.commit_loop import InjectedFailure
from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import run_refine
from prox_spark.udfs.staging import commit_fingerprints, run_folder, run_table_prefix, staging_place, staging_root
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


def test_commit_fingerprints_follow_what_the_staged_rows_are_computed_from():
    config = load_config(None, ["output.path=/data/prox", "spark.staging=delta"])
    files, versions = ["/in/b.jsonl", "/in/a.jsonl"], {"model.doc": "doc@abc", "prox-spark": "0.1.0"}
    base = commit_fingerprints(config, files, None, versions, None)
    assert base == commit_fingerprints(config, list(reversed(files)), None, versions, None)

    def changed(config_overrides=(), **kwargs) -> dict[str, bool]:
        args = {"files": files, "listed_rows": None, "versions": versions, "source_run_id": None, **kwargs}
        other = commit_fingerprints(load_config(None, ["output.path=/data/prox", "spark.staging=delta",
                                                       *config_overrides]), **args)
        return {name: other[name] != base[name] for name in base}

    # what cannot change a staged row leaves both as they were
    for overrides in (["output.path=/elsewhere"], ["spark.master=local[4]"], ["input.shards_per_commit=3"],
                      ["input.partitions=8"], ["faults.fail_after_staging_commit=0"], ["run_id=other"]):
        assert changed(overrides) == {"records": False, "stages": False}, overrides
    # other input files, or other rows listed in them: both are stale
    assert changed(files=files[:1]) == {"records": True, "stages": True}
    assert changed(listed_rows={"/in/a.jsonl": 3, "/in/b.jsonl": 4}) == {"records": True, "stages": True}
    assert changed(["input.max_text_bytes=1000"]) == {"records": True, "stages": True}
    # the same records, other models or settings: the stage results are stale, the records are not
    for overrides in (["executor.dialect=strict"], ["pipeline.mode=rules"], ["models.doc_guard_words=50"]):
        assert changed(overrides) == {"records": False, "stages": True}, overrides
    assert changed(versions={**versions, "model.doc": "doc@def"})["stages"]
    assert changed(source_run_id="run-1") == {"records": False, "stages": True}


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


def _staging_writes(spark, table: Path) -> list[str]:
    """The fingerprints of the staging writes to a path-based staging table, oldest first."""
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").orderBy("version").collect()
    return [json.loads(h.userMetadata)["prox_spark_staging"] for h in history
            if h.userMetadata and "prox_spark_staging" in h.userMetadata]


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
        assert len(_staging_writes(spark, folder / name)) == 2, name  # one overwrite per commit
        assert not list((folder / name).glob("*.parquet")), name  # vacuumed: the staged text is off the disk


@pytest.mark.spark
@pytest.mark.slow
def test_a_run_interrupted_after_staging_resumes_from_the_staged_rows(spark, corpus, persisted, tmp_path, caplog):
    output = tmp_path / "out"
    # the second commit stops once its records and stage results are staged, before any output table is written
    with pytest.raises(InjectedFailure):
        _run(spark, corpus, output, "delta", "faults.fail_after_staging_commit=1")
    folder = output / "_staging" / run_folder("staged")
    tables = _tables(spark, output)
    assert tables["shards"].count() == 1 and tables["runs"].count() == 0  # one shard committed, no runs row
    assert spark.read.format("delta").load(str(folder / "stages")).count() > 0  # the failed commit's results stay
    writes = {name: _staging_writes(spark, folder / name) for name in ("records", "stages")}
    assert all(len(w) == 2 for w in writes.values())

    caplog.set_level(logging.INFO, logger="prox_spark.staging")
    summary = _run(spark, corpus, output, "delta")  # the rerun: same run id, same input, same settings
    assert summary.balanced and summary.records_read == 25
    resumed = [r.getMessage() for r in caplog.records if "resuming from staging" in r.getMessage()]
    assert len(resumed) == 2, caplog.text  # records and stage results
    # nothing was staged again: the input was not read and the models did not run for the staged documents
    assert {name: _staging_writes(spark, folder / name) for name in ("records", "stages")} == writes
    assert [spark.read.format("delta").load(str(folder / name)).count() for name in ("records", "stages")] == [0, 0]
    _assert_same_outputs(spark, persisted, output)
    runs = _tables(spark, output)["runs"].collect()
    assert [(r.attempt, r.status, r.input_docs) for r in runs] == [(1, "succeeded", 25)]


@pytest.mark.spark
@pytest.mark.slow
def test_stale_staging_is_discarded_and_metastore_staging_lives_in_the_output_schema(spark, corpus, persisted, caplog):
    database = "staging2030"
    # interrupted after staging its first commit of one shard, in the metastore schema
    with pytest.raises(InjectedFailure):
        _run(spark, corpus, None, "delta", "faults.fail_after_staging_commit=0", database=database)
    place = staging_place(_config(corpus, None, "delta", database=database), "staged")
    assert place.namespace == ("spark_catalog", database)
    assert all(spark.catalog.tableExists(place.table(name)) for name in ("records", "stages"))
    assert spark.read.table(place.table("stages")).count() > 0

    # the rerun commits both shards at once: other input files than the staged commit's, so its staged rows are
    # stale, discarded and computed again
    caplog.set_level(logging.INFO, logger="prox_spark.staging")
    summary = _run(spark, corpus, None, "delta", "input.shards_per_commit=0", database=database)
    assert summary.balanced and summary.records_read == 25
    assert "resuming from staging" not in caplog.text
    assert len([r for r in caplog.records if "(stale): discarded" in r.getMessage()]) == 2, caplog.text
    _assert_same_outputs(spark, persisted, None, database)
    # every shard committed: the run's staging tables are gone from the schema
    assert not any(spark.catalog.tableExists(place.table(name)) for name in ("records", "stages"))
    # SHOW TABLES also lists the session's temporary views, whatever the schema: other tests register some
    tables = spark.sql(f"SHOW TABLES IN `spark_catalog`.`{database}`").collect()
    left = [row.tableName for row in tables if not row.isTemporary]
    assert sorted(left) == ["programs", "quarantine", "refined", "runs", "shards"]


def _count_batches(log: Path):
    """A stage pass that records each batch it runs on in ``log`` (a file the local workers share)."""
    def run(batches):
        for batch in batches:
            with open(log, "a") as out:
                out.write(f"{batch.num_rows}\n")
            yield batch
    return run


@pytest.mark.spark
def test_persisted_stage_results_outlive_the_commit_s_own_writes(spark, tmp_path):
    """The commit derives its stage input from the run's committed ids (``committed_doc_ids``, read from the
    output tables) and then writes those same tables: each write must still read the persisted stage results,
    not run the stage again. A plain Delta read in that lineage is planned against the table's newest version,
    so the first write that lands makes every later write's plan differ from the persisted one."""
    from pyspark.sql import functions as F

    from prox_spark.udfs import refine_plan as plan
    from prox_spark.udfs.tables import REFINED, SHARDS, ensure_tables, replace_rows

    config = load_config(None, [f"output.path={tmp_path / 'out'}", "run_id=pinned"])
    ensure_tables(spark, config.output)
    log = tmp_path / "batches.txt"
    log.write_text("")
    docs = spark.range(40).select(F.col("id").cast("string").alias("doc_id"), F.lit("s0").alias("shard")).repartition(2)
    earlier = plan.committed_doc_ids(spark, config.output, "pinned")
    tagged = docs.join(earlier.withColumnRenamed("shard", "earlier_shard"), "doc_id", "left")
    staged = plan.persist(tagged.mapInArrow(_count_batches(log), tagged.schema))
    assert staged.count() == 40
    computed = len(log.read_text().split())

    # the commit's own writes land on the tables the lineage reads ...
    refined_rows = spark.read.format("delta").load(str(tmp_path / "out" / "refined")).limit(0)
    replace_rows(refined_rows, config.output, REFINED, "pinned", ["s0"])
    shard_rows = spark.read.format("delta").load(str(tmp_path / "out" / "shards")).limit(0)
    replace_rows(shard_rows, config.output, SHARDS, "pinned", ["s0"])
    # ... and frames derived from the stage results, written after them, read the persisted rows
    staged.select("doc_id").write.format("delta").save(str(tmp_path / "derived"))
    assert staged.filter(F.col("earlier_shard").isNull()).count() == 40
    assert len(log.read_text().split()) == computed
    staged.unpersist()
