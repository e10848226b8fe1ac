"""Shared fixtures: one local SparkSession per test session, and the shared real-data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """ONE local SparkSession with Delta for the whole test session, stopped at the end.

    Uses the jars cached by ``make jars``; when they are missing the fixture errors with a message
    naming ``make jars`` (tests never download).
    """
    from jobs.spark import build_local_session

    session = build_local_session(
        "prox-spark-tests",
        shuffle_partitions=2,
        master="local[2]",
        warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"),
        driver_memory="1g",
        ui=False,
        log_level="ERROR",
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory) -> Path:
    """The bundled sample pages in two JSONL files (two shards), the second ending in a line that is not JSON:
    24 documents and 1 quarantined record (read-only: tests write their outputs elsewhere)."""
    folder = tmp_path_factory.mktemp("sample-shards")
    sample = REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl"
    lines = [line for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    half = len(lines) // 2
    (folder / "part-0.jsonl").write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    (folder / "part-1.jsonl").write_text("\n".join(lines[half:]) + "\n{not json\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the checkout (real third-party web text; read in place, never copied)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real-data folder {SHARED_DATA} is absent: tests that read real documents are skipped")
    return SHARED_DATA


@pytest.fixture(scope="session")
def untrained_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny doc and chunk models with a tokenizer trained on the bundled sample corpus.

    They run the whole serving path in seconds; what they write is arbitrary, the executor decides."""
    import json

    from prox_spark.training.untrained import build_untrained_refiners

    sample = REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl"
    texts = [json.loads(line)["text"] for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    return build_untrained_refiners(tmp_path_factory.mktemp("untrained-models"), texts * 4, max_prompt_tokens=192)


@pytest.fixture(scope="session", autouse=True)
def _drop_log_handlers_on_captured_streams():
    """Remove, after the session, the root handler ``jobs.logs.configure_logging`` installs when a test runs
    the job: it writes to the stderr pytest captured, which is closed by the time py4j logs its shutdown."""
    import logging

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_prox_spark", False)]:
        root.removeHandler(handler)
