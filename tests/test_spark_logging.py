"""The JVM of a local session logs through the shipped log4j2 file (WARN), not Spark's INFO default.

Each case starts its own JVM in a fresh interpreter: log4j reads its configuration once, when the JVM starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
PROBE = """
import sys
from prox_spark.udfs.session import build_local_session
spark = build_local_session("log-probe", shuffle_partitions=1, extra_conf=dict(a.split("=", 1) for a in sys.argv[1:]))
print("property:", spark._jvm.java.lang.System.getProperty("log4j2.configurationFile"))
spark.range(10).selectExpr("sum(id)").collect()
spark.stop()
"""


def _probe(*conf: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *conf], cwd=REPO_ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_local_sessions_log_spark_at_warn():
    from prox_spark.udfs.session import LOG4J2_CONFIG

    done = _probe()
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"property: {LOG4J2_CONFIG.as_uri()}" in done.stdout
    assert "Using Spark's default log4j profile" not in done.stderr
    assert [line for line in done.stderr.splitlines() if " INFO " in line] == []


@pytest.mark.slow
def test_a_log_configuration_set_by_the_caller_is_kept(tmp_path):
    own = tmp_path / "own.properties"
    own.write_text("rootLogger.level = error\n")
    done = _probe(f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile={own.as_uri()} -Dprobe=1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"property: {own.as_uri()}" in done.stdout
