"""One reading of a document's text (``prox_spark.text``) and one learning-rate schedule
(``prox_spark.training.schedule``), shared by every layer that used to restate them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from prox_spark import text
from prox_spark.programs import Reason as ExecutorReason
from prox_spark.programs import execute
from prox_spark.readers.records import Reason as QuarantineReason
from prox_spark.rules import EMPTY_TEXT as RULES_EMPTY_TEXT
from prox_spark.rules import rules_stage_batch


def test_every_layer_names_a_document_without_text_the_same():
    assert ExecutorReason.EMPTY_TEXT.value == QuarantineReason.EMPTY_TEXT == RULES_EMPTY_TEXT == text.EMPTY_TEXT


@pytest.mark.parametrize(
    "value, expected",
    [("a\nb", "a\nb"), (b"caf\xc3\xa9", "café"), (b"\xff", "\ufffd"), (None, ""), (float("nan"), ""), (7, None), (["a"], None)],
)
def test_coerce_text_reads_untrusted_values_one_way(value, expected):
    assert text.coerce_text(value) == expected
    assert text.is_missing(value) is (value is None or isinstance(value, float))


def test_the_executor_and_the_rules_read_and_count_a_text_alike():
    """Both stages reach the same verdict on missing and invalid values, and count lines as programs do."""
    values = ["one\ntwo\n", None, 7]
    executed = [execute(v, "keep_chunk()", stage="chunk") for v in values]
    rules = rules_stage_batch(pd.Series(values, dtype=object), "fineweb")
    assert [r.reason.value if r.reason else None for r in executed][1:] == rules["reason"].tolist()[1:] == ["empty_text", "invalid_text"]
    assert executed[0].lines_before == rules["lines_before"][0] == text.count_lines("one\ntwo\n") == 3


def test_warmup_cosine_factor():
    from prox_spark.training.schedule import warmup_cosine_factor

    factor = [warmup_cosine_factor(step, warmup_steps=4, max_steps=20, floor=0.1) for step in range(25)]
    assert factor[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factor[4] == 1.0 and all(a >= b for a, b in zip(factor[4:], factor[5:]))
    assert math.isclose(factor[12], 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factor[20:] == [pytest.approx(0.1)] * 5
    # in rates: from the peak to the floor (pre-training's optim.lr, optim.min_lr)
    assert warmup_cosine_factor(100, warmup_steps=10, max_steps=100, peak=5e-4, floor=5e-5) * 5e-4 == pytest.approx(5e-5)
