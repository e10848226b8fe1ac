"""The ``prox-spark`` command line, and every entry point answering ``--help`` with exit code 0.

The list is discovered, not hand-kept: ``prox_spark.cli`` with each of its commands, and every module in
``jobs/`` that runs as ``python -m jobs.<name>``. Each runs in a fresh interpreter, as a user would call it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prox_spark.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=180)


def _job_modules() -> list[str]:
    return sorted(
        f"jobs.{path.stem}"
        for path in (REPO_ROOT / "jobs").glob("*.py")
        if path.stem != "__init__" and 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    )


def _cli_commands() -> list[str]:
    from prox_spark.cli import COMMANDS

    return sorted(COMMANDS)


def _skip_unless_present(command: str) -> list:
    """A command registered ahead of its module (``eval``: jobs.evaluate_cleaning) is checked once it exists."""
    from prox_spark.cli import COMMANDS

    module = COMMANDS[command].module
    present = importlib.util.find_spec(module) is not None
    return [] if present else [pytest.mark.skip(reason=f"{module} is not in this checkout yet")]


CASES = (
    [pytest.param(["-m", "prox_spark.cli", "--help"], id="prox-spark")]
    + [pytest.param(["-m", "prox_spark.cli", command, "--help"], id=f"prox-spark {command}",
                    marks=_skip_unless_present(command)) for command in _cli_commands()]
    + [pytest.param(["-m", module, "--help"], id=module) for module in _job_modules()]
)


def test_discovery_finds_the_known_entry_points():
    assert {"refine", "clean", "pretrain", "compare", "build-seed", "annotate-seed", "train-refiner",
            "evaluate-refiner", "eval"} <= set(_cli_commands())
    assert {"jobs.refine", "jobs.spark", "jobs.delta_jars"} <= set(_job_modules())


@pytest.mark.parametrize("args", CASES)
def test_help_exits_zero(args):
    done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower() or "prox-spark" in done.stdout, done.stdout[:500]
    assert "SparkContext" not in done.stderr  # help never starts Spark


def test_refine_help_documents_the_log_format():
    from prox_spark.jobs.refine import build_parser

    assert "--log-format" in build_parser().format_help()


def test_no_job_module_hides_a_standard_library_module():
    """spark-submit runs ``jobs/<name>.py`` as a script, which puts ``jobs/`` first on ``sys.path``: a job module
    named like a standard library one (``concurrent``, ``logging``) would hide it from everything imported after."""
    clashes = sorted(path.stem for path in (REPO_ROOT / "jobs").glob("*.py") if path.stem in sys.stdlib_module_names)
    assert clashes == []


def test_help_lists_every_command_and_imports_no_spark_or_torch():
    """``prox-spark --help`` is instant on any install: the commands' modules load only when one runs."""
    from prox_spark.cli import COMMANDS

    probe = ("import sys; from prox_spark.cli import main; code = main(['--help']); "
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'torch', 'onnxruntime', 'transformers') "
             "or m.startswith(('prox_spark.jobs', 'jobs'))); "
             "print('heavy:', heavy); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^  (\S+)  ", done.stdout, re.MULTILINE))
    assert listed == set(COMMANDS)
    assert "heavy: []" in done.stdout


def test_no_arguments_prints_the_usage_and_exits_2():
    done = _cli()
    assert done.returncode == 2
    assert done.stderr.startswith("usage: prox-spark COMMAND") and "train-refiner" in done.stderr
    assert _cli("-h").returncode == 0


def test_unknown_command_is_named_and_exits_2():
    done = _cli("refnie", "--conf", "x.yaml")
    assert done.returncode == 2
    first_line, rest = done.stderr.split("\n", 1)
    assert first_line == "prox-spark: unknown command 'refnie'"
    assert "usage: prox-spark COMMAND" in rest and done.stdout == ""


def test_version_is_the_package_version():
    done = _cli("--version")
    assert (done.returncode, done.stdout) == (0, f"prox-spark {VERSION}\n")
    script = Path(sys.executable).with_name("prox-spark")  # the installed console script, when this venv has one
    if script.is_file():
        installed = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
        assert installed.stdout == f"prox-spark {VERSION}\n"


@pytest.mark.parametrize(("command", "package"), [("train-refiner", "torch"), ("compare", "py3langid")])
def test_a_missing_dependency_names_the_extra_to_install(command, package):
    """On a light install (no training extra) a training command says what to install instead of a traceback."""
    probe = (f"import sys; sys.modules['{package}'] = None; from prox_spark.cli import main; "
             f"sys.exit(main(['{command}', '--help']))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"prox-spark {command}: needs the Python package '{package}', which is not installed " \
                                  "(pip install 'prox-spark[train]')"


@pytest.mark.parametrize("option", ["--conf", "--config"])
def test_train_refiner_takes_conf_like_every_job(option, tmp_path):
    """--conf is the option of every job; train-refiner keeps --config as an alias for existing scripts."""
    done = _cli("train-refiner", option, str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert f"config file not found: {tmp_path / 'missing.yaml'}" in done.stderr


def test_clean_without_a_config_serves_the_bundled_models_from_any_directory(tmp_path):
    """No --conf, started outside the checkout: the bundled models and their settings, as conf/local.yaml serves them."""
    sample = (REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl").read_text(encoding="utf-8").splitlines()[:8]
    (tmp_path / "x.jsonl").write_text("\n".join(sample) + "\n", encoding="utf-8")
    done = _cli("clean", "--input", "x.jsonl", "--output", "y.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "y.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [json.loads(line)["id"] for line in sample]
    assert all(r["doc_program"] in ("keep_doc()", "drop_doc()") for r in records)
    local = _cli("clean", "--input", str(tmp_path / "x.jsonl"), "--output", "-", "--conf", "conf/local.yaml")
    assert local.returncode == 0, local.stderr[-2000:]
    assert records == [json.loads(line) for line in local.stdout.splitlines()]
