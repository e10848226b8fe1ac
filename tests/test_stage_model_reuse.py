"""A Python worker builds each stage model (onnxruntime session, decoder, tokenizer) once and hands the same object
to every Arrow batch whose settings are equal; different settings never share one. Real onnxruntime, with the
untrained fixture models."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prox_spark.config import bundled_model_dir
from prox_spark.pipeline import Serving, StageModel
from prox_spark.udfs.worker_models import StageModelSettings


def _served(settings: StageModelSettings, **serving) -> StageModelSettings:
    """``settings`` with some of its serving options changed."""
    return replace(settings, serving=replace(settings.serving, **serving))


@pytest.fixture(scope="module")
def doc_settings(untrained_models) -> StageModelSettings:
    return StageModelSettings(str(untrained_models["doc"]), serving=Serving(provider="cpu", intra_op_threads=1))


def test_batches_with_equal_settings_reuse_one_loaded_model(doc_settings):
    """Each batch calls ``load()`` on its own copy of the settings (unpickled with the task): equal, not identical."""
    first_batch, second_batch = doc_settings, replace(doc_settings)
    assert first_batch == second_batch and first_batch is not second_batch
    model = first_batch.load()
    assert isinstance(model, StageModel)
    again = second_batch.load()
    assert again is model
    assert again.decoder is model.decoder and again.loaded is model.loaded and again.tokenizer is model.tokenizer


def test_different_settings_do_not_share_a_loaded_model(doc_settings, untrained_models):
    model = doc_settings.load()
    other_prefill = _served(doc_settings, prefill_tokens=64).load()
    other_threads = _served(doc_settings, intra_op_threads=2).load()
    other_dir = StageModelSettings(str(untrained_models["chunk"]), serving=Serving(provider="cpu", intra_op_threads=1)).load()
    for other in (other_prefill, other_threads, other_dir):
        assert other is not model and other.decoder is not model.decoder
    assert other_threads.loaded.session is not model.loaded.session
    assert other_dir.loaded.session is not model.loaded.session
    # the prefill size is the decoder's own setting: it gets its own decoder over the same session
    assert other_prefill.loaded is model.loaded
    # each is itself reused
    assert _served(doc_settings, prefill_tokens=64).load() is other_prefill
    assert _served(doc_settings, intra_op_threads=2).load() is other_threads


def test_line_refiner_settings_are_reused_too():
    lines = StageModelSettings(str(bundled_model_dir("chunk", "lines")), "lines", Serving(provider="cpu", intra_op_threads=1))
    refiner = lines.load()
    assert replace(lines).load() is refiner
    assert _served(lines, intra_op_threads=2).load() is not refiner


@pytest.mark.spark
def test_one_model_serves_every_arrow_batch_of_a_partition(spark, doc_settings):
    """In a real Python worker: three Arrow batches of one partition each load the doc model, and get one object."""
    import pyarrow as pa

    settings = doc_settings

    def check(batches):
        seen = []
        for batch in batches:
            model = settings.load()  # what stage_documents does for every batch
            seen.append(model)
            yield pa.RecordBatch.from_pydict({
                "rows": [batch.num_rows],
                "same": [all(m is model for m in seen)],
                "session": [id(model.loaded.session)],
            })

    docs = spark.createDataFrame([(f"d{i}",) for i in range(6)], "doc_id string").coalesce(1)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2")
    try:
        rows = docs.mapInArrow(check, "rows long, same boolean, session long").collect()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert [row.rows for row in rows] == [2, 2, 2]
    assert all(row.same for row in rows) and len({row.session for row in rows}) == 1
