"""The notebooks run headless (papermill, a kernel on this interpreter) and print the right numbers.

- ``notebooks/audit.ipynb`` on the audit tables of tests/test_audit.py (a refine run with the untrained
  fixture models and a run with hand-written programs): no error cell, its ``AUDIT_`` lines equal the
  numbers in the tables (kept documents per shard included), its plots rendered with keep_chunk labelled a
  no-op, its before/after sample diffs against the re-read input.
- ``notebooks/scheduled_refresh.ipynb`` on a folder where this test already refined one shard under a fixed
  run id and a second shard has arrived: the notebook refines only the new shard. Its config overrides arrive
  as text, as ``papermill -p overrides '[...]'`` passes them.
- both parameter cells as papermill parses them: every parameter found, none "unknown".

Each notebook starts its own kernel and local Spark session (a second JVM next to the test session's).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

papermill = pytest.importorskip("papermill", reason="the notebooks extra (papermill) is not installed")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def kernel_env(monkeypatch_module):
    """The kernel inherits this environment: the checkout importable, jars and Python as the tests use."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch_module.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), *parts]))
    monkeypatch_module.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def kernel_name() -> str:
    """The ``python3`` kernel must run this interpreter (the venv), not some other Python on PATH."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    python = spec.argv[0]
    assert python in ("python", "python3", sys.executable) or Path(python).resolve() == Path(sys.executable).resolve(), (
        f"kernel python3 runs {python}, not {sys.executable}: run `{sys.executable} -m ipykernel install --sys-prefix`")
    return "python3"


def run_notebook(name: str, out_dir: Path, parameters: dict) -> dict:
    """Execute ``notebooks/<name>.ipynb`` with papermill; returns the executed notebook (as JSON)."""
    executed = out_dir / f"{name}.executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(executed),
        parameters=parameters,
        kernel_name=kernel_name(),
        cwd=str(REPO_ROOT),
        progress_bar=False,
        execution_timeout=900,
    )
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    return notebook


def stream_text(notebook: dict) -> str:
    return "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"
    )


def tagged(text: str, tag: str) -> list:
    return [json.loads(line[len(tag) + 1:]) for line in text.splitlines() if line.startswith(tag + " ")]


def test_audit_notebook(spark, untrained_models, tmp_path_factory, tmp_path, kernel_env):
    from test_audit import RUN_MODELS, RUN_SCRIPTED, build_audit_tables

    tables = build_audit_tables(spark, untrained_models, tmp_path_factory.getbasetemp() / "audit-tables")
    notebook = run_notebook("audit", tmp_path, {"output_path": tables.output, "run_id": "", "sample_size": 1})
    text = stream_text(notebook)

    runs = {r.run_id: r for r in spark.read.format("delta").load(f"{tables.output}/runs").collect()}
    [summary] = tagged(text, "AUDIT_SUMMARY")
    latest = runs[RUN_SCRIPTED]  # run_id "" audits the latest run
    assert summary["run_id"] == RUN_SCRIPTED
    assert summary["kept_docs"] == latest.kept_docs and summary["dropped_docs"] == latest.dropped_docs
    assert summary["quarantined_docs"] == latest.quarantined_docs == 1
    assert (summary["words_before"], summary["words_after"]) == (latest.words_before, latest.words_after)
    assert summary["word_retention"] == round(latest.words_after / latest.words_before, 6)

    programs = spark.read.format("delta").load(f"{tables.output}/programs").toPandas()
    failures = {(f["run_id"], f["stage"]): f for f in tagged(text, "AUDIT_FAILURE")}
    assert set(failures) == {(r, s) for r in (RUN_MODELS, RUN_SCRIPTED) for s in ("doc", "chunk")}
    for (run_id, stage), got in failures.items():
        rows = programs[(programs.run_id == run_id) & (programs.stage == stage)]
        bad = sum(any(op["status"] in ("parse_error", "out_of_range") for op in ops) for ops in rows.ops)
        assert (got["programs"], got["failed_programs"]) == (len(rows), bad)
    assert failures[(RUN_SCRIPTED, "chunk")]["failed_programs"] == 4

    [positions] = tagged(text, "AUDIT_REMOVED_BY_POSITION")
    from prox_spark.udfs.audit import audit_removed_lines

    assert sum(positions) == audit_removed_lines(spark, tables.output, RUN_SCRIPTED).count() > 0

    refined = spark.read.format("delta").load(f"{tables.output}/refined").toPandas()
    refined = refined[refined.run_id == RUN_SCRIPTED]
    shards = {s["shard"]: (s["documents"], s["kept_docs"]) for s in tagged(text, "AUDIT_SHARD_KEPT")}
    assert shards == {shard: (len(group), int(group.kept.sum())) for shard, group in refined.groupby("shard")}
    # keep_chunk is a no-op by design: the op counts call it so, not "ignored"
    assert "no-op (by design)" in text

    images = [o for c in notebook["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # drop reasons, retention histogram, kept per shard, failures, op counts, positions
    assert "##### edited: 1 document(s)" in text and "-- diff input -> final:" in text
    assert "##### dropped: 1 document(s)" in text


def test_scheduled_refresh_notebook_refines_only_new_shards(spark, untrained_models, tmp_path, kernel_env):
    import yaml

    from prox_spark.udfs.preflight import preflight
    from prox_spark.jobs.refine import run_refine
    from prox_spark.config import load_config
    from test_audit import sample_rows

    rows = sample_rows()
    corpus, output = tmp_path / "incoming", tmp_path / "out"
    corpus.mkdir()

    def write_shard(name, docs):
        with open(corpus / name, "w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")

    conf = tmp_path / "refresh.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": str(corpus), "partitions": 2},
        "models": {"doc": {"path": str(untrained_models["doc"])}, "chunk": {"path": str(untrained_models["chunk"])},
                   "provider": "cpu", "max_chunk_tokens": 128},
        "output": {"path": str(tmp_path / "not-the-output")},  # the notebook's overrides point it at output
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "conf": {"spark.driver.memory": "1g"}},
    }))
    write_shard("day-1.jsonl", rows[:2])
    config = load_config(conf, ["run_id=nightly", f"output.path={output}"])
    run_refine(spark, config, preflight(config))  # yesterday's run
    first_commit = spark.sql(
        f"SELECT committed_at FROM delta.`{output}/shards` WHERE source_file = '{corpus / 'day-1.jsonl'}'").first()[0]
    write_shard("day-2.jsonl", rows[2:5])  # today's shard arrives

    # overrides as text, as `papermill -p overrides '[...]'` passes them: the output folder comes from them
    notebook = run_notebook("scheduled_refresh", tmp_path, {
        "input_path": str(corpus), "run_id": "nightly", "conf": str(conf),
        "overrides": json.dumps([f"output.path={output}", "input.partitions=2"])})
    text = stream_text(notebook)
    [plan] = tagged(text, "REFRESH_PLAN")
    assert plan == {"run_id": "nightly", "shards": 2, "already_committed": 1, "to_refine": 1}
    [result] = tagged(text, "REFRESH_RESULT")
    assert result["status"] == "refined" and result["refined_shards"] == 1
    assert result["records_read"] == 5 == result["kept"] + result["dropped"] + result["quarantined"]

    # shard = <file name>@<hash of its full path>; shards.source_file holds the path
    shards = {r.shard.split("@")[0]: r for r in spark.sql(
        f"SELECT * FROM delta.`{output}/shards` WHERE run_id = 'nightly'").collect()}
    assert set(shards) == {"day-1.jsonl", "day-2.jsonl"}
    assert {name: r.source_file for name, r in shards.items()} == {n: str(corpus / n) for n in shards}
    assert shards["day-1.jsonl"].committed_at == first_commit  # yesterday's shard was not redone
    assert shards["day-2.jsonl"].documents == 3
    refined = spark.sql(f"SELECT count(*) AS n FROM delta.`{output}/refined` WHERE run_id = 'nightly'").first().n
    assert refined == 5


@pytest.mark.parametrize("name, expected", [
    ("audit", ["output_path", "database", "run_id", "input_path", "sample_size"]),
    ("scheduled_refresh", ["input_path", "run_id", "conf", "overrides"]),
])
def test_papermill_sees_every_parameter(name, expected):
    """papermill only passes the parameters it finds in the tagged cell ("Passed unknown parameter" otherwise)."""
    assert list(papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))) == expected
