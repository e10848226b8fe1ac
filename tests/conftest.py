"""Shared fixtures: one local SparkSession per test session, and the shared real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``connect`` (a local Spark Connect server) run on the Spark 4.0 line only: on Spark 3.5 each
    is skipped with the reason (pyspark 3.5's package ships no Connect server; `make test-spark35`)."""
    from prox_spark.udfs.spark_line import PYSPARK_VERSION, SPARK4

    if SPARK4:
        return
    version = ".".join(map(str, PYSPARK_VERSION))
    skip = pytest.mark.skip(reason=f"Spark Connect is tested on the Spark 4.0 line only: pyspark {version}'s package "
                                   "ships no Connect server (the Spark 3.5 venv has no Connect client either)")
    for item in items:
        if item.get_closest_marker("connect") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """ONE local SparkSession with Delta for the whole test session, stopped at the end.

    Uses the jars cached by ``make jars``; when they are missing the fixture errors with a message
    naming ``make jars`` (tests never download).
    """
    from prox_spark.udfs.session import build_local_session

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


#: where a venv without the training stack (the Spark 3.5 leg, `make test-spark35`) finds the fixture models,
#: exported ahead of time by `python -m prox_spark.training.untrained DIR --max-prompt-tokens 192`
PREBUILT_MODELS_ENV = "PROX_SPARK_TEST_MODELS"
UNTRAINED_MAX_PROMPT_TOKENS = 192


@pytest.fixture(scope="session")
def untrained_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny doc and chunk models with a tokenizer trained on the bundled sample corpus.

    They run the whole serving path in seconds; what they write is arbitrary, the executor decides. Built here
    (torch), or read from ``$PROX_SPARK_TEST_MODELS`` when set (the same models, exported before the session)."""
    import json

    prebuilt = os.environ.get(PREBUILT_MODELS_ENV, "").strip()
    if prebuilt:
        dirs = {kind: Path(prebuilt) / kind for kind in ("doc", "chunk")}
        for kind, folder in dirs.items():
            manifest = folder / "prox_model.json"
            if not manifest.is_file():
                pytest.fail(f"{PREBUILT_MODELS_ENV}={prebuilt} holds no {kind} model ({manifest} is missing)")
            budget = json.loads(manifest.read_text(encoding="utf-8"))["max_prompt_tokens"]
            if budget != UNTRAINED_MAX_PROMPT_TOKENS:
                pytest.fail(f"{manifest}: max_prompt_tokens {budget}, the fixture models use {UNTRAINED_MAX_PROMPT_TOKENS}")
        return dirs

    from prox_spark.training.untrained import build_untrained_refiners

    sample = REPO_ROOT / "prox_spark" / "resources" / "sample_corpus.jsonl"
    texts = [json.loads(line)["text"] for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    return build_untrained_refiners(tmp_path_factory.mktemp("untrained-models"), texts * 4,
                                    max_prompt_tokens=UNTRAINED_MAX_PROMPT_TOKENS)


@pytest.fixture(scope="session", autouse=True)
def _drop_log_handlers_on_captured_streams():
    """Remove, after the session, the root handler ``udfs.logs.configure_logging`` installs when a test runs
    the job: it writes to the stderr pytest captured, which is closed by the time py4j logs its shutdown."""
    import logging

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_prox_spark", False)]:
        root.removeHandler(handler)
