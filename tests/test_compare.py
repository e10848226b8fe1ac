"""``jobs/compare.py`` on a tiny corpus: every variant refined and trained, the table files consistent."""

from __future__ import annotations

import json

import pytest

from prox_spark.jobs.compare import CompareConfig, run_compare
from prox_spark.comparison import CORPUS_GOLD_SETS, VARIANTS, build_corpus, corpus_gold, main_text, shuffle_windows
from prox_spark.config import load_config
from prox_spark.evaluation.gold import gold_pages
from prox_spark.training.seed_sources import read_jsonl_dicts


@pytest.mark.spark
@pytest.mark.slow
def test_compare_writes_the_table_for_every_variant(spark, untrained_models, shared_data, tmp_path):
    cfg = load_config("conf/compare_local.yaml", [
        f"out_dir={tmp_path / 'compare'}", f"corpus.shared_data={shared_data}", "corpus.max_pages=3",
        "corpus.max_dclm=3", "corpus.warc_pages=false",
        f"refine={{models.doc.path: {untrained_models['doc']}, models.chunk.kind: generative, models.chunk.path: {untrained_models['chunk']}, "
        "models.chunk.max_new_tokens: 16, models.doc.max_new_tokens: 16, input.partitions: 1}",
        "pretrain.train.max_steps=2", "pretrain.train.batch_size=2", "pretrain.data.tokenizer_train_vocab=300",
        "pretrain.eval.max_blocks=4",
    ], cls=CompareConfig)
    paths = run_compare(cfg, spark=spark)
    assert all(path.is_file() and path.stat().st_size for path in paths.values())
    report = json.loads(paths["json"].read_text())
    rows = {row["name"]: row for row in report["variants"]}
    assert list(rows) == list(VARIANTS)
    assert report["meta"]["corpus"]["documents"] == 6
    assert rows["raw"]["docs_kept"] == rows["raw"]["docs_in"] == 6
    budget = report["meta"]["token_budget"]
    assert budget == 2 * 2 * 128
    for row in rows.values():
        assert row["docs_in"] == 6 and 0 <= row["docs_kept"] <= 6
        assert row["tokens_kept"] <= rows["raw"]["tokens_kept"]
        if row["tokens_kept"]:  # trained on the same budget, evaluated on the same held-out text
            assert row["tokens_trained"] == budget and row["held_out_ppl"] > 1
            assert [p["step"] for p in row["loss_curve"]][-1] == 2
        assert row["shuffle_windows"] == 1  # the bundled window holds a whole pass of the tiny corpus
        # the tiny corpus' 3 pages are trafilatura pages: no human gold to measure against
        assert row["main_text"] == {"gold_pages": 0, "pages_kept": 0, "share": None, "gold_kept": None}
    table = paths["md"].read_text()
    assert all(f"| {name} |" in table for name in VARIANTS)


def test_a_bad_model_path_fails_before_any_variant_runs(shared_data, tmp_path, capsys):
    """Every refine variant is preflighted up front: a missing chunk model is a clear error in seconds, not
    after the raw and rules variants have been refined and trained."""
    from prox_spark.jobs.compare import main

    out = tmp_path / "compare"
    code = main(["--conf", "conf/compare_local.yaml", f"out_dir={out}", f"corpus.shared_data={shared_data}",
                 "corpus.max_pages=3", "corpus.max_dclm=3", "corpus.warc_pages=false",
                 f"refine={{models.chunk.path: {tmp_path / 'no-such-model'}}}"])
    assert code == 2
    assert "models.chunk.path" in capsys.readouterr().err
    assert (out / "corpus").is_dir()  # the corpus was built, then the check failed
    assert not any((out / name).exists() for name in VARIANTS)  # no variant started


def test_held_out_texts_come_from_human_gold_or_a_given_file(shared_data, tmp_path):
    from prox_spark.comparison import HELD_OUT_SETS, write_held_out
    from prox_spark.evaluation.gold import GOLD_SETS, gold_pages

    assert all(GOLD_SETS[name] == "evaluation" for name in HELD_OUT_SETS)  # no bundled model trains on them
    out = tmp_path / "held_out.jsonl"
    count, described = write_held_out(shared_data, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    first = next(gold_pages(shared_data, HELD_OUT_SETS[0]))
    assert count == len(rows) > 1000 and rows[0] == {"id": first.page_id, "text": first.gold_text}
    assert "human gold" in described
    given = tmp_path / "mine.jsonl"
    given.write_text('{"id": "a", "gold_text": "gold wins", "text": "not this"}\n{"text": "plain text"}\n{"text": "  "}\n')
    assert write_held_out(shared_data, out, given) == (2, f"clean texts of {given}")
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["gold wins", "plain text"]
    given.write_text('{"id": "b", "body": "no text field"}\n')
    with pytest.raises(ValueError, match="mine.jsonl:1: a held-out record needs"):
        write_held_out(shared_data, out, given)


def test_the_corpus_is_in_the_held_out_language_and_outside_every_test_split(shared_data, tmp_path):
    """The comparison's corpus: English documents only (the held-out gold is English; the trafilatura pages are
    half German), the trainable gold sets' report pages, and no page any model trained on from those sets."""
    from prox_spark.comparison import CORPUS_GOLD_SETS, HELD_OUT_SETS, build_corpus
    from prox_spark.evaluation.gold import GOLD_SETS, gold_pages
    from prox_spark.language import language_filter

    english = language_filter(["en"])

    assert all(GOLD_SETS[name] != "evaluation" for name in CORPUS_GOLD_SETS)
    counts = build_corpus(shared_data, tmp_path / "en", languages=["en"])
    docs = {name: [json.loads(line) for line in (tmp_path / "en" / f"{name}.jsonl").open()]
            for name in ("pages", "warc", "dclm")}
    assert (counts.pages, counts.warc_pages, counts.dclm_docs) == tuple(map(len, docs.values()))
    assert counts.other_languages > 300  # most of the trafilatura pages are German
    assert all(english(doc["text"]) for rows in docs.values() for doc in rows)
    ids = {doc["id"] for doc in docs["pages"]}
    for set_name in CORPUS_GOLD_SETS:
        pages = list(gold_pages(shared_data, set_name))
        english_report = {f"page-{p.page_id}" for p in pages
                          if p.split == "test" and english(p.noisy_text)}
        trained = {f"page-{p.page_id}" for p in pages if p.split != "test"}
        assert english_report and english_report <= ids and not trained & ids
    held_out = {f"page-{p.page_id}" for name in HELD_OUT_SETS for p in gold_pages(shared_data, name)}
    assert not held_out & ids

    every = build_corpus(shared_data, tmp_path / "all", languages=[])
    assert every.other_languages == 0
    assert every.documents == counts.documents + counts.other_languages


def test_shuffle_windows_counts_the_windows_one_pass_fills():
    """One window per pass means every block of the pass is drawn in one permutation; more, and the file order
    decides what a part-epoch sees."""
    assert shuffle_windows(tokens=129 * 100, block_size=128, window=100) == 1
    assert shuffle_windows(tokens=129 * 101, block_size=128, window=100) == 2
    assert shuffle_windows(tokens=129 * 250, block_size=128, window=100) == 3
    assert shuffle_windows(tokens=0, block_size=128, window=100) == 1


def test_main_text_measures_the_gold_share_of_kept_text_and_the_gold_kept():
    gold = {"a": "one two three four five six", "b": "red green blue yellow", "c": "alpha beta gamma delta"}
    kept = {"a": "menu home about one two three four five six", "b": "red green blue yellow"}  # c dropped
    measured = main_text(kept, gold)
    # a: 6 kept shingles, 3 of them gold (one..six); b: its one shingle; c: nothing kept of its one shingle
    assert (measured.gold_pages, measured.pages_kept) == (3, 2)
    assert measured.share == pytest.approx(4 / 7)
    assert measured.gold_kept == pytest.approx(4 / 5)
    assert main_text({}, gold).share is None and main_text({}, gold).gold_kept == 0
    assert main_text(kept, {}) == type(measured)(gold_pages=0, pages_kept=0, share=None, gold_kept=None)


def test_corpus_gold_is_the_human_gold_of_the_corpus_pages_that_have_one(shared_data, tmp_path):
    build_corpus(shared_data, tmp_path, max_dclm=1, warc_pages=False)
    noisy = {row["id"]: row["text"] for row in read_jsonl_dicts(tmp_path / "pages.jsonl")}
    ids = list(noisy)
    gold = corpus_gold(shared_data, ids)
    report_pages = {f"page-{page.page_id}": page for name in CORPUS_GOLD_SETS for page in gold_pages(shared_data, name)
                    if page.split == "test"}
    assert gold and set(gold) == set(ids) & set(report_pages)  # the trafilatura pages have a teacher, not gold
    assert all(gold[i] == report_pages[i].gold_text for i in gold)
    as_read = main_text({i: noisy[i] for i in gold}, gold)
    assert as_read.pages_kept == len(gold) and as_read.gold_kept > 0.9 and as_read.share < as_read.gold_kept
