"""Databricks serverless: the config and the job definition agree with the project, and the job copes with what
serverless does not give (an active session before one is asked for, session settings it refuses, a launcher
that ignores return codes). No Spark: serverless itself cannot run here (tests/test_connect.py runs the job
through a local Spark Connect server, tests/test_unity_catalog.py writes three-level names).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from prox_spark.udfs import connect
from prox_spark.jobs.refine import build_parser
from prox_spark.udfs.staging import staging_place, staging_root
from prox_spark.udfs.tables import commit_metadata
from prox_spark import cli
from prox_spark.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
WHEEL_NAME = f"prox_spark-{PYPROJECT['project']['version']}-py3-none-any.whl"
JOB = json.loads((REPO_ROOT / "deploy" / "databricks_serverless_job.json").read_text(encoding="utf-8"))
CONF = REPO_ROOT / "conf" / "databricks_serverless.yaml"


def _pin(package: str) -> str:
    lines = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    return next(line for line in lines if line.startswith(package + "=="))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_config_loads_for_serverless():
    config = load_config(CONF)
    assert config.spark.staging == "delta"  # serverless refuses persist/cache
    assert config.spark.remote == "" and config.spark.conf == {}  # the platform's session, as it is
    assert config.output.namespace == ("main", "prox") and not config.output.path
    # the staging tables are managed tables in the output schema: Databricks allows no table in a Volume
    assert staging_root(config) == ""
    assert re.fullmatch(r"`main`\.`prox`\.`_prox_staging_crawl_2026_11_[0-9a-f]{8}_stages`",
                        staging_place(config, "crawl-2026-11").table("stages"))
    assert config.models.provider == "cpu"
    for path in (config.input.path, config.models.doc.path, config.models.chunk.path):
        assert path.startswith("/Volumes/"), path  # Volume paths: plain paths to the job's readers and loaders


def test_job_runs_the_wheel_on_serverless_compute():
    text = json.dumps(JOB)
    assert not re.search(r'"(job_clusters|new_cluster|existing_cluster_id|job_cluster_key|libraries)"', text)
    environments = {env["environment_key"]: env["spec"] for env in JOB["environments"]}
    [task] = JOB["tasks"]
    spec = environments[task["environment_key"]]
    assert spec["environment_version"]
    dependencies = spec["dependencies"]
    assert any(d.startswith("/Volumes/") and d.endswith("/" + WHEEL_NAME) for d in dependencies)
    assert _pin("onnxruntime") in dependencies and _pin("tokenizers") in dependencies  # CPU only: no GPU there
    # conf/databricks_serverless.yaml reads `format: auto` Volume folders that may hold WARC: the `warc` extra's packages
    assert _pin("resiliparse") in dependencies and _pin("fastwarc") in dependencies
    # the platform brings Spark, Delta and the Connect client: installing pyspark would replace its client
    assert not any(re.match(r"(pyspark|delta-spark|onnxruntime-gpu|grpcio)\b", d) for d in dependencies)

    wheel_task = task["python_wheel_task"]
    assert _normalized(wheel_task["package_name"]) == _normalized(PYPROJECT["project"]["name"])
    target = PYPROJECT["project"]["scripts"][wheel_task["entry_point"]]  # an entry point the wheel declares
    module, function = target.split(":")
    assert getattr(importlib.import_module(module), function) is cli.main
    command, *args = wheel_task["parameters"]
    assert cli.COMMANDS[command].module == "prox_spark.jobs.refine"
    parsed = build_parser().parse_args(args)
    assert parsed.conf == "{{job.parameters.conf}}" and parsed.overrides == ["run_id={{job.parameters.run_id}}"]
    defaults = {p["name"]: p["default"] for p in JOB["parameters"]}
    assert defaults["conf"].startswith("/Volumes/") and defaults["conf"].endswith("/" + CONF.name)


def test_a_failed_command_fails_a_launcher_that_ignores_return_codes(monkeypatch, tmp_path, capsys):
    missing = str(tmp_path / "absent.yaml")
    assert cli.main(["refine", "--conf", missing]) == 2  # called with arguments: the code is returned
    monkeypatch.setattr(sys, "argv", ["prox-spark", "refine", "--conf", missing])
    with pytest.raises(SystemExit) as exited:  # as the console script and a python_wheel_task call it
        cli.main()
    assert exited.value.code == 2 and "config file not found" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["prox-spark", "--version"])
    assert cli.main() == 0


class _RefusingConf:
    """A serverless-like ``spark.conf``: some keys cannot be set, some cannot even be read."""

    def __init__(self):
        self.values: dict[str, str] = {}

    def get(self, key, default=None):
        if key.startswith("spark.hidden"):
            raise RuntimeError("[CONFIG_NOT_AVAILABLE] hidden")
        return self.values.get(key, default)

    def set(self, key, value):
        if key.startswith(("spark.hidden", "spark.refused")):
            raise RuntimeError(f"[CANNOT_MODIFY_CONFIG] {key}")
        self.values[key] = value

    def unset(self, key):
        self.values.pop(key, None)


class _Session:
    def __init__(self):
        self.conf = _RefusingConf()


def test_session_settings_the_server_refuses_are_skipped(caplog):
    spark = _Session()
    assert connect.set_conf(spark, "spark.sql.shuffle.partitions", "8") and spark.conf.values == {"spark.sql.shuffle.partitions": "8"}
    assert not connect.set_conf(spark, "spark.refused.key", "1")
    assert "spark.refused.key refused" in caplog.text
    with connect.session_conf(spark, "spark.refused.key", "1") as took:
        assert not took
    with connect.session_conf(spark, "spark.a", "1") as took:
        assert took and spark.conf.values["spark.a"] == "1"
    assert "spark.a" not in spark.conf.values  # restored: it was unset before
    assert connect.get_conf(spark, "spark.hidden.key") is None
    from prox_spark.udfs import tables

    with commit_metadata(spark, "r1"):  # the creation commits' run id where the server allows the setting
        assert json.loads(spark.conf.values[tables.USER_METADATA_CONF]) == {"prox_spark_run_id": "r1"}
    assert tables.USER_METADATA_CONF not in spark.conf.values


def test_on_databricks_the_platform_session_is_asked_for(monkeypatch):
    """A serverless task's Python has no active session until one is asked for, and no JVM of its own."""
    from prox_spark.udfs import session as session_module

    platform = object()

    class Builder:
        def getOrCreate(self):
            return platform

    class FakeSparkSession:
        builder = Builder()

        @staticmethod
        def getActiveSession():
            return None

    monkeypatch.setattr(session_module, "SparkSession", FakeSparkSession)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.0")
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    assert session_module.get_session() is platform
