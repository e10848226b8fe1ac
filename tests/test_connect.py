"""The refine job under Spark Connect (what Databricks serverless and standard access mode run): real Spark, real Delta.

The job runs in a separate process (``python -m jobs.refine ... spark.remote=local[2]``, through its CLI): it
starts a local Spark Connect server there with the Delta jars and talks to it over gRPC only, so nothing on
the job path may touch ``sparkContext``, the JVM or RDDs (a Connect session has none of them). The test's own
classic session then refines the same input, and both runs' Delta tables must agree row for row, in
``pipeline.mode=rules`` (under Connect with ``spark.staging: delta``, no persist) and in the default ``prox``
mode with the bundled models (``persist``).

Core tests (no Spark): the ``spark.remote`` key, token redaction, job tags and the parallelism fallbacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prox_spark.udfs.connect import is_connect, is_local_remote, redact_remote
from prox_spark.udfs.job_tags import run_tag, tag_of
from prox_spark.udfs.preflight import preflight
from prox_spark.jobs.refine import ONE_THREAD_PER_TASK, concurrent_tasks, run_refine
from prox_spark.udfs.run_row import redacted_config
from prox_spark.udfs.staging import run_folder
from prox_spark.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO_ROOT / "conf" / "local.yaml"

#: what the Connect process runs: the job's CLI twice (rules with staging Delta tables instead of persist, prox
#: with persist) and a rerun of prox on one Connect session, then the serverless combination (rules, staging
#: tables in the output schema, metastore tables under a three-level name) twice; reports which files its Python
#: workers imported the project from, the staging tables left in the schema, and audits
CONNECT_DRIVER = r"""
import json, sys
from prox_spark.jobs.refine import main
from prox_spark.udfs.session import get_session
from prox_spark.udfs.connect import is_connect

conf, inp, out_rules, out_prox, warehouse, uc_schema = sys.argv[1:7]
common = ["--conf", conf, f"input.path={inp}", "spark.remote=local[2]", "run_id=connect", "input.shards_per_commit=0",
          f"spark.conf.spark.sql.warehouse.dir={warehouse}"]  # the local server's managed tables
uc = ["output.path=", "output.catalog=spark_catalog", f"output.database={uc_schema}", "pipeline.mode=rules",
      "spark.staging=delta", "run_id=connect-uc"]  # staging tables in the schema, as on serverless
codes = [
    main(common + [f"output.path={out_rules}", "pipeline.mode=rules", "spark.staging=delta"]),  # no persist at all
    main(common + [f"output.path={out_prox}"]),
    main(common + [f"output.path={out_prox}"]),  # a rerun: every shard committed, nothing rewritten
    main(common + uc),
    main(common + uc),  # the schema and the tables exist now
]
spark = get_session()

def where(frames):
    from prox_spark.udfs import stage_pass
    for frame in frames:
        frame["file"] = stage_pass.__file__
        yield frame[["file"]]

worker_files = sorted({row.file for row in spark.range(2, numPartitions=2).mapInPandas(where, "file string").collect()})
from prox_spark.udfs.audit import audit_drop_reasons
reasons = {f"{row.outcome}:{row.reason}": row.docs for row in audit_drop_reasons(spark, out_prox, "connect").collect()}
from prox_spark.config import OutputConfig
names = OutputConfig(catalog="spark_catalog", database=uc_schema)
uc_runs = spark.read.table(f"`spark_catalog`.`{uc_schema}`.`runs`").orderBy("attempt").collect()
uc_report = {
    "runs": [[r.attempt, r.status, r.input_docs, r.kept_docs + r.dropped_docs + r.quarantined_docs] for r in uc_runs],
    "refined": spark.read.table(f"`spark_catalog`.`{uc_schema}`.`refined`").count(),
    "audited": sum(row.docs for row in audit_drop_reasons(spark, names, "connect-uc").collect()),
    "tables": sorted(row.tableName for row in spark.sql(f"SHOW TABLES IN `spark_catalog`.`{uc_schema}`").collect()),
}
print("CONNECT-RESULT " + json.dumps({"codes": codes, "connect": is_connect(spark), "worker_files": worker_files,
                                      "drop_reasons": reasons, "uc": uc_report}))
"""

#: the schema (needs quoting) the Connect run writes its metastore tables to, in catalog spark_catalog
UC_SCHEMA = "2028"


def test_spark_remote_key_is_validated():
    assert load_config(None, ["spark.remote=local[2]"]).spark.remote == "local[2]"
    assert load_config(None, ["spark.remote=sc://db.example:443/;token=abc"]).spark.remote.startswith("sc://")
    assert load_config(None, []).spark.remote == ""
    with pytest.raises(ConfigError, match="spark.remote: expected sc://host:port"):
        load_config(None, ["spark.remote=localhost:15002"])
    assert is_local_remote("local") and is_local_remote("local[*]") and not is_local_remote("sc://localhost")


def test_remote_tokens_never_reach_the_runs_table():
    assert redact_remote("sc://h:443/;token=dapiSECRET;x-databricks-cluster-id=1") == (
        "sc://h:443/;token=***redacted***;x-databricks-cluster-id=***redacted***")
    assert redact_remote("sc://localhost:15002") == "sc://localhost:15002"
    config = load_config(None, ["spark.remote=sc://h:443/;token=dapiSECRET"])
    assert "dapiSECRET" not in json.dumps(redacted_config(config))


def test_job_tags_are_valid_spark_tags():
    assert run_tag("crawl, 2026 11") == "prox-refine-crawl_2026_11"  # Spark refuses commas in tags
    assert tag_of("") == "prox"


class _Conf:
    def __init__(self, values: dict[str, str]):
        self.values = values

    def get(self, key, default=None):
        if key == "spark.hidden":
            raise RuntimeError("CONFIG_NOT_AVAILABLE")
        return self.values.get(key, default)


class _Session:
    """Only ``conf``: ``concurrent_tasks`` must not need anything else (a Connect session has no SparkContext)."""

    def __init__(self, values: dict[str, str]):
        self.conf = _Conf(values)


def test_concurrent_tasks_come_from_spark_conf_alone():
    assert concurrent_tasks(_Session({"spark.executor.cores": "8", "spark.task.cpus": "2"})) == 4
    assert concurrent_tasks(_Session({"spark.default.parallelism": "3", "spark.master": "local[2]"})) == 3
    assert concurrent_tasks(_Session({"spark.master": "local[2]"})) == 2
    assert concurrent_tasks(_Session({"spark.master": "local[*]"})) == max(1, os.cpu_count() or 1)
    assert concurrent_tasks(_Session({"spark.master": "yarn"})) == ONE_THREAD_PER_TASK
    assert not is_connect(_Session({}))


@pytest.fixture(scope="module")
def corpus(sample_shards) -> Path:
    """The bundled sample pages in two files (two shards), one of them with a line that is not JSON."""
    return sample_shards


@pytest.fixture(scope="module")
def connect_run(corpus, tmp_path_factory) -> dict:
    """Run the job under a local Spark Connect server in its own process; its report and output folders."""
    out = tmp_path_factory.mktemp("connect-out")
    outputs = {"rules": out / "rules", "prox": out / "prox"}
    env = dict(os.environ)
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-c", CONNECT_DRIVER, str(LOCAL_CONF), str(corpus), str(outputs["rules"]), str(outputs["prox"]),
         str(out / "warehouse"), UC_SCHEMA],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    report = next((line for line in done.stdout.splitlines() if line.startswith("CONNECT-RESULT ")), None)
    assert done.returncode == 0 and report is not None, f"connect run failed ({done.returncode}):\n{done.stderr[-6000:]}"
    return {"report": json.loads(report.split(" ", 1)[1]), "outputs": outputs}


def _tables(spark, output: Path) -> dict:
    return {name: spark.read.format("delta").load(str(output / name)) for name in
            ("refined", "programs", "quarantine", "runs", "shards")}


#: programs columns that do not depend on timing (latency_ms does)
PROGRAM_KEY = ["shard", "doc_id", "stage", "chunk_index", "first_line", "last_line", "model_id", "program",
               "errors", "outcome", "reason", "words_before", "words_after", "lines_before", "lines_after"]


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.connect
@pytest.mark.parametrize("mode", ["rules", "prox"])
def test_refine_under_spark_connect_matches_classic(spark, connect_run, corpus, tmp_path, mode):
    report = connect_run["report"]
    assert report["connect"] is True
    assert report["codes"] == [0, 0, 0, 0, 0]
    # the Connect server's Python workers import this checkout, not whatever the venv's install points at
    assert report["worker_files"] and all(f.startswith(str(REPO_ROOT) + os.sep) for f in report["worker_files"])

    connect = _tables(spark, connect_run["outputs"][mode])
    runs = connect["runs"].orderBy("attempt").collect()
    expected_attempts = 2 if mode == "prox" else 1  # prox was run twice
    assert [r.attempt for r in runs] == list(range(1, expected_attempts + 1))
    assert all(r.status == "succeeded" and r.input_docs == r.kept_docs + r.dropped_docs + r.quarantined_docs for r in runs)
    assert runs[0].input_docs == 25 and runs[0].quarantined_docs == 1 and runs[0].shards == 2
    assert connect["refined"].count() == 24 and connect["shards"].count() == 2  # the rerun duplicated nothing
    assert connect["quarantine"].collect()[0].reason == "invalid_json"

    config = load_config(str(LOCAL_CONF), [f"input.path={corpus}", f"output.path={tmp_path / mode}",
                                           "run_id=connect", f"pipeline.mode={mode}"])
    summary = run_refine(spark, config, preflight(config))
    classic = _tables(spark, tmp_path / mode)
    assert (summary.kept, summary.dropped, summary.quarantined) == (runs[0].kept_docs, runs[0].dropped_docs, 1)
    assert sorted(connect["refined"].collect()) == sorted(classic["refined"].collect())
    assert sorted(connect["programs"].select(PROGRAM_KEY).collect()) == sorted(classic["programs"].select(PROGRAM_KEY).collect())
    quarantine_key = ["shard", "source_file", "record_index", "reason"]
    assert sorted(connect["quarantine"].select(quarantine_key).collect()) == sorted(classic["quarantine"].select(quarantine_key).collect())
    if mode == "rules":  # spark.staging=delta: the staging tables were emptied after the shard commit
        staging = connect_run["outputs"][mode] / "_staging" / run_folder("connect")
        assert [spark.read.format("delta").load(str(staging / name)).count() for name in ("records", "stages")] == [0, 0]
        # the serverless combination: metastore tables under a three-level name, counts balanced, the rerun
        # rewrote nothing, the audit over the metastore names accounts for every record read, and the
        # staging tables the run kept in the schema were dropped once its shards were committed
        assert report["uc"] == {"runs": [[1, "succeeded", 25, 25], [2, "succeeded", 25, 25]], "refined": 24,
                                "audited": 25, "tables": ["programs", "quarantine", "refined", "runs", "shards"]}
    if mode == "prox":
        # the audits run over the Connect session too: every record read is in exactly one group
        reasons = report["drop_reasons"]
        assert sum(reasons.values()) == runs[0].input_docs and reasons["quarantined:invalid_json"] == 1
        assert sum(n for key, n in reasons.items() if key.startswith("dropped:")) == runs[0].dropped_docs
