"""The two supported Spark lines, Spark 3.5 + Delta 3.3 and Spark 4.0 + Delta 4.0: the Delta jars each line gets,
the pins of each line's constraints file, and the bridges for the APIs Spark 3.5 lacks. No Spark session: these
run on either line (`make test` runs them on 4.0, `make test-spark35` on 3.5).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from prox_spark.udfs import connect, delta_jars, job_tags, side_by_side
from prox_spark.udfs.spark_line import PYSPARK_VERSION, SPARK4

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSTRAINTS = {"4.0": REPO_ROOT / "constraints.txt", "3.5": REPO_ROOT / "constraints-spark35.txt"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize("version, delta, jar", [
    ("3.5.5", "3.3.2", "delta-spark_2.12-3.3.2.jar"),
    ("3.5.3", "3.3.2", "delta-spark_2.12-3.3.2.jar"),
    ("4.0.1", "4.0.1", "delta-spark_2.13-4.0.1.jar"),
])
def test_each_spark_line_gets_its_delta_jars(version, delta, jar):
    line = delta_jars.delta_line(version)
    assert line.delta == delta
    assert [a.file_name for a in line.artifacts] == [jar, f"delta-storage-{delta}.jar"]
    assert all(a.group == "io.delta" and len(a.sha1) == 40 for a in line.artifacts)
    assert line.artifacts[0].url("https://repo.example/m2") == (
        f"https://repo.example/m2/io/delta/delta-spark_{line.scala}/{delta}/{jar}")


@pytest.mark.parametrize("version", ["3.4.4", "4.1.0", "2.4.8"])
def test_an_unsupported_pyspark_is_refused_with_the_supported_lines(version):
    with pytest.raises(delta_jars.UnsupportedSpark, match=r"Spark 3\.5 \+ Delta 3\.3\.2, Spark 4\.0 \+ Delta 4\.0\.1"):
        delta_jars.delta_line(version)


def test_the_installed_pyspark_picks_the_session_jars(tmp_path):
    line = delta_jars.delta_line()
    assert line.spark == ".".join(map(str, PYSPARK_VERSION)) and SPARK4 == (line.spark == "4.0")
    with pytest.raises(delta_jars.DeltaJarsMissing, match=rf"Spark {line.spark} \(Delta {line.delta}\).*make jars"):
        delta_jars.delta_jar_paths(tmp_path)
    for artifact in line.artifacts:
        (tmp_path / artifact.file_name).write_bytes(b"jar")
    assert [p.name for p in delta_jars.delta_jar_paths(tmp_path)] == [a.file_name for a in line.artifacts]
    other = delta_jars.delta_line("3.5.5" if SPARK4 else "4.0.1")
    with pytest.raises(delta_jars.DeltaJarsMissing):  # the other line's jars are not this session's
        delta_jars.delta_jar_paths(tmp_path, spark_version=other.spark + ".0")


def test_fetch_skips_jars_already_present(tmp_path, monkeypatch):
    line = delta_jars.delta_line("3.5.5")
    monkeypatch.setattr(delta_jars, "_sha1", lambda path: {a.file_name: a.sha1 for a in line.artifacts}[path.name])
    for artifact in line.artifacts:
        (tmp_path / artifact.file_name).write_bytes(b"jar")
    # present with the pinned checksum: left alone, no network (the repository given cannot be reached)
    paths = delta_jars.fetch(tmp_path, repo="http://127.0.0.1:9/none", quiet=True, spark_version="3.5.5")
    assert [p.name for p in paths] == [a.file_name for a in line.artifacts]


@pytest.mark.parametrize("spark", ["3.5", "4.0"])
def test_each_constraints_file_pins_its_line(spark):
    pins = _pins(CONSTRAINTS[spark])
    line = delta_jars.DELTA_LINES[spark]
    assert pins["delta-spark"] == line.delta
    assert ".".join(pins["pyspark"].split(".")[:2]) == spark
    # the pins both lines share agree, so either file installs the same model runtime and readers
    shared = _pins(CONSTRAINTS["4.0"]).keys() & _pins(CONSTRAINTS["3.5"]).keys() - {"pyspark", "delta-spark", "py4j"}
    assert {"onnxruntime", "tokenizers", "resiliparse", "fastwarc"} <= shared
    assert all(_pins(CONSTRAINTS["4.0"])[name] == _pins(CONSTRAINTS["3.5"])[name] for name in shared)


def test_the_spark_extra_admits_both_lines():
    spark = PYPROJECT["project"]["optional-dependencies"]["spark"]
    assert any(re.fullmatch(r"pyspark>=3\.5\.\d+,<4\.1", req) for req in spark), spark
    assert any(re.fullmatch(r"delta-spark>=3\.3\.\d+,<4\.1", req) for req in spark), spark


class _Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_job_tags_on_a_classic_spark35_session_go_on_the_spark_context(monkeypatch):
    monkeypatch.setattr(job_tags, "SPARK4", False)
    context = _Recorder()
    session = SimpleNamespace(sparkContext=context)  # a classic 3.5 session: its addTag refuses classic sessions
    with job_tags.job_tag(session, "prox-run, 1") as tag:
        assert context.calls == [("addJobTag", tag)]
    assert context.calls == [("addJobTag", "prox-run_1"), ("removeJobTag", "prox-run_1")]


def test_job_tags_on_spark4_use_the_session(monkeypatch):
    monkeypatch.setattr(job_tags, "SPARK4", True)
    session = _Recorder()
    with job_tags.job_tag(session, "prox-read"):
        pass
    assert session.calls == [("addTag", "prox-read"), ("removeTag", "prox-read")]


def test_side_by_side_wraps_thread_targets_the_way_each_line_takes_them(monkeypatch):
    seen = []

    def fake_inheritable(arg):
        seen.append(arg)
        return (lambda action: action) if arg == "session" else arg

    monkeypatch.setattr(side_by_side, "inheritable_thread_target", fake_inheritable)
    action = lambda: 1  # noqa: E731
    for spark4 in (True, False):
        monkeypatch.setattr(side_by_side, "SPARK4", spark4)
        assert side_by_side.inheriting("session", action)() == 1
    assert seen == ["session", action]  # 4.0: the session first; 3.5: the target itself


def test_a_local_connect_server_is_refused_on_spark35_with_the_reason(monkeypatch):
    monkeypatch.setattr(connect, "SPARK4", False)
    with pytest.raises(RuntimeError, match="local Spark Connect server needs the Spark 4.0 line"):
        connect.connect_session("local[2]")
