"""The user-facing docs stay true to the repository: set-up commands first, no dead paths, code blocks that parse.

README.md is the product page: its first two commands are what a new user runs, every path it names must be in
the checkout (a link to a sibling folder or an issue tracker means nothing to someone who got the wheel or a
clone), and Python never hides inside a bash block.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/benchmarks.md", "docs/deployment.md"]
#: top-level folders whose paths the docs name in backticks
TOP = ("conf", "deploy", "docs", "jobs", "notebooks", "prox_spark", "udfs", "benchmarks", "tests")


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_starts_with_the_two_set_up_commands():
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    language, first = _blocks(text)[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert (language, commands) == ("bash", ["make demo", "make test"])


@pytest.mark.parametrize("name", DOCS)
def test_no_links_outside_the_repository(name):
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    assert "../" not in text, "a path outside the repository"
    assert not re.search(r"(?<![\w&])#\d+\b|/issues\b|\bissue #", text), "an issue reference"
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if not re.match(r"https?://", target):
            assert (REPO_ROOT / Path(name).parent / target.split("#")[0]).exists(), target


@pytest.mark.parametrize("name", DOCS)
def test_named_repository_paths_exist(name):
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    for path in sorted(set(re.findall(r"`((?:%s)/[\w./-]*)`" % "|".join(TOP), text))):
        if "*" in path or "<" in path:
            continue
        # a Databricks notebook task names its notebook without the extension
        found = (REPO_ROOT / path).exists() or (REPO_ROOT / f"{path}.ipynb").exists()
        assert found, f"{name} names {path}, which is not in the repository"


@pytest.mark.parametrize("name", DOCS)
def test_code_blocks_are_labelled_by_language(name):
    for language, body in _blocks((REPO_ROOT / name).read_text(encoding="utf-8")):
        if language == "python":
            ast.parse(body)
        elif language == "bash":
            assert not re.search(r"^\s*(from \w+(\.\w+)* import|import \w+$)", body, re.MULTILINE), body


def test_readme_python_example_runs():
    """The executor example prints what its comment says."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    example = next(body for language, body in _blocks(text) if language == "python" and "execute(" in body)
    lines = example.split("# a job config")[0]
    scope: dict = {}
    exec(compile(lines.replace("print(result.text)", "printed = result.text"), "README.md", "exec"), scope)
    expected = re.search(r'print\(result\.text\)\s+# "(.*)\\n"', example).group(1) + "\n"
    assert scope["printed"] == expected
