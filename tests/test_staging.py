"""``spark.staging``: a commit's results kept in Spark storage (``persist``) or in staging Delta tables (``delta``).

Real Spark + Delta: the bundled sample pages refined with the bundled models, two commits, once per strategy.
``delta`` must write the same tables as ``persist``, never call ``persist``/``cache`` (Databricks serverless
refuses them), and leave its staging tables empty after each shard commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from jobs.preflight import preflight
from jobs.refine import run_refine
from jobs.staging import run_folder, staging_root
from prox_spark.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO_ROOT / "conf" / "local.yaml"
#: programs columns that do not depend on timing (latency_ms does)
PROGRAM_KEY = ["shard", "doc_id", "stage", "chunk_index", "program", "errors", "outcome", "reason", "words_after"]


def test_staging_location_and_key():
    config = load_config(None, ["output.path=/data/prox", "spark.staging=delta"])
    assert staging_root(config) == "/data/prox/_staging"
    assert staging_root(load_config(None, ["output.path=s3://b/prox", "output.staging_path=s3://b/tmp"])) == "s3://b/tmp"
    with pytest.raises(ConfigError, match="output.staging_path: required"):
        staging_root(load_config(None, ["output.database=prox", "spark.staging=delta"]))
    with pytest.raises(ConfigError, match="spark.staging"):
        load_config(None, ["spark.staging=cache"])
    assert run_folder("crawl/2026 11") != run_folder("crawl_2026_11") and "/" not in run_folder("crawl/2026 11")


@pytest.fixture(scope="module")
def corpus(sample_shards) -> Path:
    """The bundled sample pages in two files (two shards), one of them with a line that is not JSON."""
    return sample_shards


def _run(spark, corpus: Path, output: Path, staging: str):
    config = load_config(str(LOCAL_CONF), [f"input.path={corpus}", f"output.path={output}", "run_id=staged",
                                           "input.shards_per_commit=1", f"spark.staging={staging}"])
    return run_refine(spark, config, preflight(config))


@pytest.mark.spark
@pytest.mark.slow
def test_delta_staging_writes_the_tables_persist_writes_without_persisting(spark, corpus, tmp_path, monkeypatch):
    persisted = _run(spark, corpus, tmp_path / "persist", "persist")

    def refuse(self, *args, **kwargs):
        raise AssertionError("spark.staging=delta must not persist or cache (serverless refuses both)")

    with monkeypatch.context() as patch:
        patch.setattr(DataFrame, "persist", refuse)
        patch.setattr(DataFrame, "cache", refuse)
        staged = _run(spark, corpus, tmp_path / "delta", "delta")
        rerun = _run(spark, corpus, tmp_path / "delta", "delta")  # every shard committed: nothing staged

    assert (persisted.records_read, persisted.quarantined) == (25, 1)
    assert (staged.records_read, staged.kept, staged.dropped, staged.quarantined) == (
        persisted.records_read, persisted.kept, persisted.dropped, persisted.quarantined)
    assert (rerun.records_read, rerun.kept) == (staged.records_read, staged.kept)

    def table(kind: str, name: str):
        return spark.read.format("delta").load(str(tmp_path / kind / name))

    assert sorted(table("delta", "refined").collect()) == sorted(table("persist", "refined").collect())
    assert sorted(table("delta", "programs").select(PROGRAM_KEY).collect()) == sorted(
        table("persist", "programs").select(PROGRAM_KEY).collect())
    assert sorted(table("delta", "quarantine").drop("detail").collect()) == sorted(
        table("persist", "quarantine").drop("detail").collect())
    assert table("delta", "shards").count() == 2 and table("delta", "refined").count() == 24

    # both commits went through the staging tables, and each left them empty
    folder = tmp_path / "delta" / "_staging" / run_folder("staged")
    for name in ("records", "stages"):
        assert spark.read.format("delta").load(str(folder / name)).count() == 0, name
        history = spark.sql(f"DESCRIBE HISTORY delta.`{folder / name}`").collect()
        assert sum(h.operation == "WRITE" for h in history) == 2, name  # one overwrite per commit
        assert not list((folder / name).glob("*.parquet")), name  # vacuumed: the staged text is off the disk
