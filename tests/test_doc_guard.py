"""The doc stage's main-text guard (``models.doc_guard_words``), with the bundled models on real pages.

The bundled doc model reads a page's first 512 tokens. On these two CleanEval pages (human gold: a
15,000-character essay, a 15,800-character product review) those tokens are menus, and the model drops
them; the line refiner finds the article's text further down, and the guard keeps the page.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from prox_spark.config import DEFAULT_DOC_GUARD_WORDS, bundled_model_dir
from prox_spark.evaluation.gold import gold_pages
from prox_spark.pipeline import Serving, load_stage_model
from prox_spark.pipeline.refine import refine_batch
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.model_stages import DocProgram, spare_main_text_pages

DROPPED_ARTICLES = ("cleaneval:test-584", "cleaneval:test-405")
MENU_ONLY = "Home\nNews\nSport\nWeather\nContact us\nLogin | Register\nCopyright 2024"


@pytest.fixture(scope="module")
def models():
    return {
        "doc": load_stage_model(bundled_model_dir("doc"), "generative", Serving(provider="cpu")),
        "chunk": load_stage_model(bundled_model_dir("chunk", "lines"), "lines", Serving(provider="cpu")),
    }


@pytest.fixture(scope="module")
def articles(shared_data):
    pages = {p.page_id: p for p in gold_pages(shared_data, "cleaneval") if p.page_id in DROPPED_ARTICLES}
    assert sorted(pages) == sorted(DROPPED_ARTICLES)
    return [pages[page_id].noisy_text for page_id in DROPPED_ARTICLES]


def test_the_guard_keeps_articles_the_doc_model_drops_and_audits_the_override(models, articles):
    texts = articles + [MENU_ONLY]
    ids = ["a", "b", "menu"]
    unguarded, _ = refine_batch(ids, texts, models, RefineSettings(doc_guard_words=0))
    assert unguarded.set_index("doc_id").loc[["a", "b"], "drop_stage"].tolist() == ["doc", "doc"]

    documents, programs = refine_batch(ids, texts, models, RefineSettings())
    documents = documents.set_index("doc_id")
    assert documents.loc[["a", "b"], "kept"].tolist() == [True, True]
    assert (documents.loc[["a", "b"], "words_after"] >= DEFAULT_DOC_GUARD_WORDS).all()
    doc_rows = programs[programs["stage"] == "doc"].set_index("doc_id")
    assert doc_rows.loc[["a", "b"], "program"].tolist() == ["keep_doc()", "keep_doc()"]
    assert doc_rows.loc[["a", "b"], "model_program"].tolist() == ["drop_doc()", "drop_doc()"]
    # the chunk stage then refines the spared pages like any other
    assert set(programs[programs["stage"] == "chunk"]["doc_id"]) >= {"a", "b"}


def test_only_drops_with_enough_main_text_are_rewritten(models, articles):
    line_refiner = models["chunk"]
    drop, keep = DocProgram("drop_doc()", 512, 1.0), DocProgram("keep_doc()", 512, 1.0)
    texts = [articles[0], MENU_ONLY, articles[1], ""]
    spared = spare_main_text_pages([drop, drop, keep, drop], texts, line_refiner, DEFAULT_DOC_GUARD_WORDS)
    assert spared[0] == replace(drop, program="keep_doc()", model_program="drop_doc()")
    assert spared[1:] == [drop, keep, drop]  # a menu, a keep, a blank page: unchanged
    assert spare_main_text_pages([drop], texts[:1], line_refiner, 0) == [drop]
    # a bar no page reaches leaves every drop alone
    assert spare_main_text_pages([drop], texts[:1], line_refiner, 10**9) == [drop]
