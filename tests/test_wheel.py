"""Deployment: the wheel installs on its own and runs the job under spark-submit; deploy files agree.

``test_wheel_installs_and_runs_under_spark_submit`` (slow) does what a cluster does: ``make wheel``, a fresh
virtualenv without this checkout or its venv's packages, ``pip install <wheel>[spark,cpu]`` (pip's cache
makes the second time fast), ``prox-spark --version`` and ``prox-spark clean`` (no ``--conf``: the bundled models)
from another directory, then ``spark-submit`` of the *installed* ``prox_spark/jobs/refine.py`` with the Delta
jars passed as ``--jars`` (as on EMR) over a tiny corpus and the untrained fixture models. The wheel ships the
repository's ``jobs/`` and ``udfs/`` as ``prox_spark.jobs`` / ``prox_spark.udfs``: nothing of it is importable as
``jobs`` or ``udfs`` from site-packages, where such names would clash with a cluster's own code.

The fast tests check that conf/databricks.yaml, conf/emr.yaml and deploy/* load and agree with each other,
with the job's CLI and with the pins in constraints.txt.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from prox_spark.jobs.refine import build_parser
from prox_spark.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
WHEEL_NAME = f"prox_spark-{VERSION}-py3-none-any.whl"


CONSTRAINTS = REPO_ROOT / "constraints.txt"


def _pin(extra: str, package: str) -> str:
    """``package==version`` as constraints.txt pins it (what the tests and deploy/ install) for a package of
    ``extra`` (pyproject.toml declares a range there)."""
    assert any(re.match(rf"{re.escape(package)}\s*[<>=]", req) for req in PYPROJECT["project"]["optional-dependencies"][extra])
    return next(line for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines() if line.startswith(package + "=="))


# --------------------------------------------------------------------------------------------------
# the deploy files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["databricks", "emr"])
def test_cluster_configs_load_and_use_node_local_input_paths(name):
    config = load_config(REPO_ROOT / "conf" / f"{name}.yaml")
    assert config.models.provider == "auto"
    # the input reader and the model loader open files with plain Python: local / FUSE paths only
    for path in (config.input.path, config.models.doc.path, config.models.chunk.path):
        assert path.startswith("/") and "://" not in path, path
    assert config.output.path.startswith({"databricks": "dbfs:/", "emr": "s3://"}[name])


def test_databricks_job_runs_the_refine_script_with_the_wheel():
    job = json.loads((REPO_ROOT / "deploy" / "databricks_job.json").read_text(encoding="utf-8"))
    tasks = {t["task_key"]: t for t in job["tasks"]}
    refine = tasks["refine"]
    script = refine["spark_python_task"]
    assert script["python_file"] == "jobs/refine.py" and (REPO_ROOT / script["python_file"]).is_file()
    args = build_parser().parse_args(script["parameters"])
    assert args.conf == "{{job.parameters.conf}}" and args.log_format == "json"
    assert {p["name"] for p in job["parameters"]} >= {"conf", "run_id"}
    libraries = refine["libraries"]
    assert any(lib.get("whl", "").endswith("/" + WHEEL_NAME) for lib in libraries)
    assert {"pypi": {"package": _pin("gpu", "onnxruntime-gpu")}} in libraries
    assert not any("onnxruntime==" in lib.get("pypi", {}).get("package", "") for lib in libraries)
    # conf/databricks.yaml reads `format: auto` crawl folders that may hold WARC: the `warc` extra's packages, pinned;
    # the audit's before/after diffs re-read that input
    for task in (refine, tasks["audit"]):
        for package in ("resiliparse", "fastwarc"):
            assert {"pypi": {"package": _pin("warc", package)}} in task["libraries"], task["task_key"]
    cluster = next(c for c in job["job_clusters"] if c["job_cluster_key"] == refine["job_cluster_key"])
    assert "gpu" in cluster["new_cluster"]["spark_version"]
    audit = tasks["audit"]
    assert audit["depends_on"] == [{"task_key": "refine"}]
    assert (REPO_ROOT / (audit["notebook_task"]["notebook_path"] + ".ipynb")).is_file()


def test_emr_step_submits_the_wheel_with_the_clusters_delta_jars():
    steps = json.loads((REPO_ROOT / "deploy" / "emr_step.json").read_text(encoding="utf-8"))
    args = steps[-1]["Args"]
    assert args[0] == "spark-submit"
    assert args[args.index("--py-files") + 1].endswith("/" + WHEEL_NAME)
    jars = args[args.index("--jars") + 1].split(",")
    assert jars and all(jar.startswith("/usr/share/aws/delta/lib/") for jar in jars)
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in args
    main = next(i for i, a in enumerate(args) if a.endswith("refine.py"))
    parsed = build_parser().parse_args(args[main + 1:])
    assert parsed.conf.endswith("emr.yaml") and any(o.startswith("run_id=") for o in parsed.overrides)
    fetch = " ".join(steps[0]["Args"])
    assert "aws s3 cp" in fetch  # the job files reach the master node first


def test_emr_bootstrap_installs_exactly_one_onnxruntime_at_the_pinned_versions():
    script = (REPO_ROOT / "deploy" / "emr_bootstrap.sh").read_text(encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(REPO_ROOT / "deploy" / "emr_bootstrap.sh")]).returncode == 0
    assert f'ORT_GPU="{_pin("gpu", "onnxruntime-gpu")}"' in script
    assert f'ORT_CPU="{_pin("cpu", "onnxruntime")}"' in script
    # conf/emr.yaml reads `format: auto` crawl folders that may hold WARC: the `warc` extra's packages, pinned, on
    # GPU and CPU nodes alike
    assert f'RESILIPARSE="{_pin("warc", "resiliparse")}"' in script and f'FASTWARC="{_pin("warc", "fastwarc")}"' in script
    installs = [line for line in script.splitlines() if "pip\" install" in line and "$WHEEL_NAME" in line]
    assert len(installs) == 2 and all('"$RESILIPARSE" "$FASTWARC"' in line for line in installs), installs
    assert f'WHEEL_NAME="{WHEEL_NAME}"' in script


def test_notebooks_have_papermill_parameter_cells():
    for name, params in {"audit": ("output_path", "run_id"), "scheduled_refresh": ("input_path", "run_id", "conf")}.items():
        notebook = json.loads((REPO_ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
        cells = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1, name
        source = "".join(cells[0]["source"])
        assert all(re.search(rf"^{p} = ", source, re.M) for p in params), source
        assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")  # stored clean


def test_code_imports_the_spark_layers_by_their_installed_names():
    """``import jobs.x`` / ``from udfs import y`` resolve in a checkout only; the wheel has prox_spark.jobs / .udfs."""
    bare = re.compile(r"^\s*(?:from|import)\s+(?:jobs|udfs)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("prox_spark", "jobs", "udfs", "benchmarks", "tests")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if bare.search(path.read_text(encoding="utf-8"))
    ]
    for notebook in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if any(bare.search("".join(c["source"])) for c in cells if c["cell_type"] == "code"):
            offenders.append(str(notebook.relative_to(REPO_ROOT)))
    assert offenders == []


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of ``tree`` names (``from a import b`` counts ``a.b``
    too, since ``b`` may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_and_udfs_never_import_the_entry_points():
    """The layers import downwards only (jobs -> udfs -> prox_spark): an entry point may change or go with its
    command line, and nothing the job's Spark plan or the core runs may depend on one."""
    offenders = sorted(
        str(path.relative_to(REPO_ROOT))
        for folder in ("prox_spark", "udfs")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if any(name == "prox_spark.jobs" or name.startswith("prox_spark.jobs.")
               for name in _imported_modules(ast.parse(path.read_text(encoding="utf-8"))))
    )
    assert offenders == []


# --------------------------------------------------------------------------------------------------
# the wheel, installed and run like on a cluster
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(["make", "-s", "wheel", f"DIST_DIR={dist}"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = dist.glob("*.whl")
    assert built.name == WHEEL_NAME
    return built


@pytest.mark.slow
def test_wheel_contents_and_base_dependencies(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"prox_spark-{VERSION}.dist-info/METADATA").decode()
        entry_points = whl.read(f"prox_spark-{VERSION}.dist-info/entry_points.txt").decode()
    assert {"prox_spark/jobs/refine.py", "prox_spark/udfs/refine_plan.py", "prox_spark/udfs/audit.py",
            "prox_spark/udfs/log4j2.properties", "prox_spark/udfs/executor.py", "prox_spark/cli.py",
            "prox_spark/resources/sample_corpus.jsonl"} <= names
    # one top-level package: the project's own name
    assert {n.split("/")[0] for n in names} == {"prox_spark", f"prox_spark-{VERSION}.dist-info"}, sorted(names)[:20]
    assert "__pycache__" not in "".join(names)
    # every Python file of the core and of both Spark layers ships (the package list in pyproject is explicit)
    sources = {f"prox_spark/{p.relative_to(REPO_ROOT / 'prox_spark')}" for p in (REPO_ROOT / "prox_spark").rglob("*.py")}
    for layer in ("jobs", "udfs"):
        sources |= {f"prox_spark/{layer}/{p.relative_to(REPO_ROOT / layer)}" for p in (REPO_ROOT / layer).rglob("*.py")}
    assert sources - names == set()
    # the entry point deploy/databricks_serverless_job.json's python_wheel_task names
    assert re.search(r"^\[console_scripts\]\nprox-spark = prox_spark\.cli:main$", entry_points, re.M), entry_points
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not any(re.search(r"\b(torch|transformers|optimum|pyspark|resiliparse|fastwarc)\b", line) for line in base), base


@pytest.mark.slow
def test_wheel_ships_the_audit_sql(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert {f"prox_spark/udfs/sql/audit/{p.name}" for p in (REPO_ROOT / "udfs" / "sql" / "audit").glob("*.sql")} <= names


@pytest.mark.slow
def test_wheel_installs_and_runs_under_spark_submit(wheel, untrained_models, tmp_path):
    from prox_spark.udfs.delta_jars import delta_jar_paths

    jars = ",".join(str(p) for p in delta_jar_paths())  # the cached jars, as a cluster ships its own
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_PYTHON",
                                                             "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-c", str(CONSTRAINTS), f"{wheel}[spark,cpu]"], capture_output=True, text=True, env=env, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]

    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u, prox_spark.jobs.refine as refine; "
         "print(refine.__file__); print(u.find_spec('torch') is None, u.find_spec('transformers') is None); "
         "print(u.find_spec('jobs') is None, u.find_spec('udfs') is None)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    refine_py, no_torch, no_top_level_layers = probe.stdout.split("\n")[:3]
    assert refine_py.startswith(str(venv)) and refine_py.endswith("prox_spark/jobs/refine.py"), refine_py  # installed, not this checkout
    assert no_torch == "True True"
    assert no_top_level_layers == "True True"  # no site-packages module named jobs or udfs
    assert subprocess.run([str(venv / "bin" / "prox-spark"), "refine", "--help"], capture_output=True, env=env,
                          timeout=120).returncode == 0
    version = subprocess.run([str(venv / "bin" / "prox-spark"), "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120)
    assert version.returncode == 0 and VERSION in version.stdout, version

    # `prox-spark clean` from another directory, no --conf: the installed wheel's bundled models
    sample = (REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl").read_text(encoding="utf-8").splitlines()
    pages = [json.loads(line) for line in sample[:3]]
    (tmp_path / "x.jsonl").write_text("".join(json.dumps({"id": p["id"], "text": p["text"]}) + "\n" for p in pages),
                                      encoding="utf-8")
    clean = subprocess.run([str(venv / "bin" / "prox-spark"), "clean", "--input", "x.jsonl", "--output", "y.jsonl"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    cleaned = [json.loads(line) for line in (tmp_path / "y.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in cleaned] == [p["id"] for p in pages]
    assert all(r["doc_program"] in ("keep_doc()", "drop_doc()") for r in cleaned)  # the bundled doc model ran

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    records = [json.dumps({"id": r["id"], "text": r["text"]}) for r in map(json.loads, sample[:3])]
    (corpus / "tiny.jsonl").write_text("\n".join(records + ["{broken"]) + "\n", encoding="utf-8")
    command = [
        str(venv / "bin" / "spark-submit"), "--master", "local[2]", "--driver-memory", "1g", "--jars", jars,
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.sql.shuffle.partitions=2",
        refine_py,
        f"input.path={corpus}", f"output.path={tmp_path / 'out'}", f"models.doc.path={untrained_models['doc']}",
        f"models.chunk.path={untrained_models['chunk']}", "models.provider=cpu", "models.max_chunk_tokens=128",
        "run_id=wheel-run",
    ]
    run_env = {**env, "PYSPARK_PYTHON": str(python), "PYSPARK_DRIVER_PYTHON": str(python)}
    done = subprocess.run(command, capture_output=True, text=True, env=run_env, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, f"{shlex.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    out = done.stdout
    assert "prox-spark refine: run wheel-run" in out
    assert re.search(r"records read\s+4\b", out) and re.search(r"quarantined\s+1\b", out), out
    assert "balance           ok" in out
    assert "[run=wheel-run]" in out  # driver logs carry the run id
