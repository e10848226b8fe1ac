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
def shared_data() -> Path:
    """``../shared/data`` next to the checkout (real third-party web text; read in place, never copied)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real-data folder {SHARED_DATA} is absent: tests that read real documents are skipped")
    return SHARED_DATA
