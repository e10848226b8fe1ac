"""Every command line entry point answers ``--help`` with exit code 0, without starting Spark or a model.

The list is discovered, not hand-kept: ``prox_spark.cli`` with each of its commands, and every module in
``jobs/`` that runs as ``python -m jobs.<name>``. Each runs in a fresh interpreter, as a user would call it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _job_modules() -> list[str]:
    return sorted(
        f"jobs.{path.stem}"
        for path in (REPO_ROOT / "jobs").glob("*.py")
        if path.stem != "__init__" and 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
    )


def _cli_commands() -> list[str]:
    from prox_spark.cli import COMMANDS

    return sorted(COMMANDS)


CASES = (
    [pytest.param(["-m", "prox_spark.cli", "--help"], id="prox-spark")]
    + [pytest.param(["-m", "prox_spark.cli", command, "--help"], id=f"prox-spark {command}") for command in _cli_commands()]
    + [pytest.param(["-m", module, "--help"], id=module) for module in _job_modules()]
)


def test_discovery_finds_the_known_entry_points():
    assert {"refine", "clean"} <= set(_cli_commands())
    assert {"jobs.refine", "jobs.spark", "jobs.delta_jars"} <= set(_job_modules())


@pytest.mark.parametrize("args", CASES)
def test_help_exits_zero(args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower() or "prox-spark" in done.stdout, done.stdout[:500]
    assert "SparkContext" not in done.stderr  # help never starts Spark


def test_refine_help_documents_the_log_format():
    from jobs.refine import build_parser

    assert "--log-format" in build_parser().format_help()


def test_no_job_module_hides_a_standard_library_module():
    """spark-submit runs ``jobs/<name>.py`` as a script, which puts ``jobs/`` first on ``sys.path``: a job module
    named like a standard library one (``concurrent``, ``logging``) would hide it from everything imported after."""
    clashes = sorted(path.stem for path in (REPO_ROOT / "jobs").glob("*.py") if path.stem in sys.stdlib_module_names)
    assert clashes == []
