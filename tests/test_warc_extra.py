"""WARC input is the ``warc`` extra (resiliparse, fastwarc), not a base dependency.

Without the extra the package still imports and reads JSONL, and WARC input fails early with a message naming
``prox-spark[warc]``: ``read_warc`` raises ``WarcUnavailableError`` before opening the file, the job's preflight
raises ``ConfigError`` before any Spark stage, and ``prox-spark clean`` exits 2 with the message. The absence is
real: a fresh interpreter with ``sys.modules["fastwarc"] = sys.modules["resiliparse"] = None`` set before
anything is imported, which makes every import of those packages raise ImportError, as when they are not
installed. Runs this checkout's code (PYTHONPATH), whatever the venv's editable install points at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

#: run first in the subprocess: the WARC libraries are "not installed" from here on
_BLOCK = """
import sys
sys.modules["fastwarc"] = None
sys.modules["resiliparse"] = None
"""


def _without_warc(body: str, *args: str) -> dict:
    """Run ``body`` in a fresh interpreter without the WARC libraries; it fills the dict ``out``, returned here."""
    script = _BLOCK + "import json\nout = {}\n" + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _jsonl(folder: Path) -> Path:
    path = folder / "docs.jsonl"
    records = [{"id": "a", "text": "A first document.\nWith two lines."}, {"id": "b", "text": "A second one."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{broken\n", encoding="utf-8")
    return path


def test_pyproject_makes_warc_an_extra():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = lambda reqs: {req.split(">")[0].split("=")[0].split("<")[0].strip().lower() for req in reqs}  # noqa: E731
    assert not {"resiliparse", "fastwarc"} & names(project["dependencies"]), project["dependencies"]
    assert names(project["optional-dependencies"]["warc"]) == {"resiliparse", "fastwarc"}


def test_without_the_extra_the_package_imports_and_reads_jsonl(tmp_path):
    out = _without_warc(
        """
        try:
            import fastwarc  # noqa: F401
            out["fastwarc"] = "imported"
        except ImportError:
            out["fastwarc"] = "missing"
        import prox_spark.readers
        import prox_spark.jobs.refine  # noqa: F401  (the Spark job's module, and through it the readers and preflight)
        from prox_spark.readers import read_file
        from prox_spark.readers.dispatch import reader_options
        from prox_spark.readers.warc import WARC_UNAVAILABLE
        out["unavailable"] = WARC_UNAVAILABLE
        out["options"] = sorted(reader_options())
        out["records"] = [(type(r).__name__, r.doc_id) for r in read_file(sys.argv[1])]

        from prox_spark.udfs.preflight import preflight
        from prox_spark.config import load_config
        config = load_config(None, [f"input.path={sys.argv[1]}", f"output.path={sys.argv[2]}", "pipeline.mode=rules"])
        out["preflight_files"] = preflight(config).files
        """,
        str(_jsonl(tmp_path)),
        str(tmp_path / "out"),
    )
    assert out["fastwarc"] == "missing"
    assert "pip install 'prox-spark[warc]'" in out["unavailable"]
    # the WARC reader's signature is still there: read_file accepts its options for a mixed corpus
    assert {"max_record_bytes", "only_2xx", "quirks_mode", "id_field", "text_field"} <= set(out["options"])
    assert out["records"] == [["Document", "a"], ["Document", "b"], ["Quarantined", None]]
    assert out["preflight_files"] == [str(tmp_path / "docs.jsonl")]


def test_without_the_extra_warc_input_fails_naming_it(shared_data, tmp_path):
    warc = shared_data / "warc" / "sample-0000.warc.gz"
    if not warc.is_file():
        pytest.skip(f"shared WARC file {warc} is absent: the WARC-without-the-extra checks need a real WARC file")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _jsonl(mixed)
    (mixed / "crawl.warc.gz").symlink_to(warc)
    out = _without_warc(
        """
        from pathlib import Path
        from prox_spark.readers import WarcUnavailableError, read_file, read_warc

        warc, mixed, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])

        def error(call):
            try:
                call()
            except Exception as exc:
                return {"type": type(exc).__name__, "import_error": isinstance(exc, ImportError),
                        "specific": isinstance(exc, WarcUnavailableError), "message": str(exc)}
            return None

        out["read_warc"] = error(lambda: read_warc(warc))
        out["read_file"] = error(lambda: read_file(warc))  # input.format auto: from the name

        from prox_spark.udfs.preflight import preflight
        from prox_spark.config import load_config

        def checked(path, *overrides):
            config = load_config(None, [f"input.path={path}", f"output.path={work / 'out'}", "pipeline.mode=rules",
                                        *overrides])
            return error(lambda: preflight(config))

        out["preflight_file"] = checked(warc)
        out["preflight_format_warc"] = checked(warc, "input.format=warc")
        out["preflight_mixed_folder"] = checked(mixed)
        out["preflight_mixed_folder_as_jsonl"] = checked(f"{mixed}/*.jsonl")

        import contextlib, io
        from prox_spark.cli import main
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            out["clean_code"] = main(["clean", "--input", warc, "--output", str(work / "clean.jsonl"),
                                      "pipeline.mode=rules"])
        out["clean_stderr"] = stderr.getvalue()
        """,
        str(warc),
        str(mixed),
        str(tmp_path),
    )
    for key in ("read_warc", "read_file"):
        assert out[key] is not None, f"{key} read WARC without fastwarc/resiliparse"
        assert out[key]["type"] == "WarcUnavailableError" and out[key]["import_error"] and out[key]["specific"]
        assert "pip install 'prox-spark[warc]'" in out[key]["message"], out[key]
        assert "fastwarc" in out[key]["message"]  # the original import error, for whoever debugs the install
    for key in ("preflight_file", "preflight_format_warc", "preflight_mixed_folder"):
        assert out[key] is not None and out[key]["type"] == "ConfigError", (key, out[key])
        assert "input.path:" in out[key]["message"] and "prox-spark[warc]" in out[key]["message"], out[key]
    assert "crawl.warc.gz" in out["preflight_mixed_folder"]["message"]  # names the WARC file it found
    assert out["preflight_mixed_folder_as_jsonl"] is None  # a glob that lists only the JSONL passes
    assert out["clean_code"] == 2
    assert "prox-spark clean: " in out["clean_stderr"] and "prox-spark[warc]" in out["clean_stderr"]
    assert "Traceback" not in out["clean_stderr"]
    assert not (tmp_path / "clean.jsonl").exists() or not (tmp_path / "clean.jsonl").read_text(encoding="utf-8")
