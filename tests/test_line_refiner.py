"""The line refiner: features, labels from gold, rendering to programs, and a trained graph that gives
the same decisions in torch and onnxruntime and runs as the chunk stage of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from prox_spark.lines import line_decisions, page_features, removed_ranges, render_program
from prox_spark.lines.features import MAX_TOKENS_PER_LINE, N_DENSE, pad_pages, token_ids
from prox_spark.programs import execute
from prox_spark.training.line_labels import line_labels

ARTICLE = (
    "The river authority opened the new flood gates on Monday after three years of construction work.\n"
    "Engineers said the gates would protect more than two thousand homes along the lower valley.\n"
    "Residents who had lived through the floods of the past decade welcomed the news with relief."
)
MENU = "Home\nNews\nSport\nWeather\nContact us"
FOOTER = "© 2024 Valley Times. All rights reserved.\nPrivacy policy | Terms of use | Cookies"


def page(*parts: str) -> str:
    return "\n".join(parts)


def test_features_cover_every_line_with_fixed_widths():
    text = page(MENU, "", ARTICLE, FOOTER)
    features = page_features(text)
    assert features.dense.shape == (len(text.split("\n")), N_DENSE)
    assert features.tokens.shape == (len(text.split("\n")), MAX_TOKENS_PER_LINE)
    blank = text.split("\n").index("")
    assert features.dense[blank, 2] == 1.0 and not features.tokens[blank].any()
    assert np.isfinite(features.dense).all()


def test_token_ids_are_stable_case_and_digit_folded():
    assert token_ids("Copyright 2024") == token_ids("copyright 1999")
    assert token_ids("menu") != token_ids("article")
    assert all(0 < i < 16384 for i in token_ids("Ünïcödé 漢字 text | »"))
    assert len(token_ids(" ".join(["word"] * 200))) == MAX_TOKENS_PER_LINE


def test_padding_is_masked_not_mixed_between_pages():
    short, long = page_features("one line only"), page_features(page(MENU, ARTICLE))
    dense, tokens, mask = pad_pages([short, long])
    assert dense.shape[:2] == tokens.shape[:2] == mask.shape == (2, long.lines)
    assert mask[0].sum() == 1 and mask[1].sum() == long.lines
    assert not dense[0, 1:].any() and not tokens[0, 1:].any()


def test_labels_keep_gold_lines_and_drop_menus_and_footers():
    text = page(MENU, "", "Flood gates open", ARTICLE, "", FOOTER)
    gold = "Flood gates open\n" + ARTICLE.replace("\n", " ")
    labels = line_labels(text, gold)
    lines = text.split("\n")
    assert [labels[lines.index(m)] for m in MENU.split("\n")] == [False] * 5
    assert labels[lines.index("Flood gates open")] is True  # a short line that is a whole gold line
    assert all(labels[lines.index(a)] for a in ARTICLE.split("\n"))
    assert labels[lines.index("")] is None
    assert not any(labels[lines.index(f)] for f in FOOTER.split("\n"))


def test_human_snippets_override_the_clean_text():
    text = page("Kontakt", ARTICLE)
    labels = line_labels(text, "unrelated teacher text", must_keep=["river authority"], must_remove=["Kontakt"])
    assert labels == [False, True, False, False]


def test_short_menu_words_inside_the_article_are_not_kept():
    text = page("News", "The News of the day was that the river authority opened the gates.")
    assert line_labels(text, "The News of the day was that the river authority opened the gates.") == [False, True]


def test_blank_lines_join_removals_on_both_sides_only():
    lines = ["menu", "", "menu", "", "article", "", "footer"]
    keep = line_decisions(lines, [0.1, 0.0, 0.2, 0.0, 0.9, 0.0, 0.3], threshold=0.5)
    assert keep == [False, False, False, True, True, True, False]
    assert removed_ranges(keep) == [(0, 2), (6, 6)]
    assert render_program(removed_ranges(keep)) == (
        "remove_lines(line_start=0, line_end=2)\nremove_lines(line_start=6, line_end=6)"
    )
    assert render_program([]) == "keep_chunk()"


def test_a_page_no_line_clears_keeps_its_best_lines_not_nothing():
    lines = ["menu", "headline", "", "body", "footer"]
    assert line_decisions(lines, [0.1, 0.3, 0.0, 0.25, 0.05], threshold=0.5) == [False, True, True, True, False]
    assert line_decisions(lines, [0.0] * 5, threshold=0.5) == [False] * 5
    # a page with one line over the threshold is decided by the threshold alone
    assert line_decisions(lines, [0.1, 0.6, 0.0, 0.25, 0.05], threshold=0.5) == [False, True, True, False, False]


def test_a_relative_bar_removes_what_the_model_half_believes_next_to_an_article():
    lines = ["article one", "article two", "comment", "menu"]
    scores = [0.95, 0.9, 0.55, 0.1]
    assert line_decisions(lines, scores, threshold=0.5) == [True, True, True, False]
    assert line_decisions(lines, scores, threshold=0.5, relative=0.7) == [True, True, False, False]
    # a page without a confident line is decided by the absolute threshold
    assert line_decisions(lines, [0.6, 0.55, 0.52, 0.1], threshold=0.5, relative=0.7) == [True, True, True, False]


def test_rendered_program_executes_to_the_kept_lines():
    text = page(MENU, ARTICLE, FOOTER)
    lines = text.split("\n")
    scores = [0.0] * 5 + [1.0] * 3 + [0.0] * 2
    keep = line_decisions(lines, scores, 0.5)
    result = execute(text, render_program(removed_ranges(keep)), stage="chunk")
    assert result.text == ARTICLE
    assert result.errors == 0 and result.kept


# --- a trained graph: torch -> ONNX -> programs ----------------------------------------------------

torch = pytest.importorskip("torch")

from prox_spark.evaluation.gold import Page  # noqa: E402
from prox_spark.evaluation.shingles import shingle_f1  # noqa: E402
from prox_spark.inference import ModelLoadError  # noqa: E402
from prox_spark.pipeline import Serving, load_stage_model, verify_stage_model  # noqa: E402
from prox_spark.pipeline.model_kinds.lines import write_line_programs  # noqa: E402
from prox_spark.training.line_export import export_line_model  # noqa: E402
from prox_spark.training.line_model import LineEnsemble  # noqa: E402
from prox_spark.training.line_train import (  # noqa: E402
    LineTrainConfig, choose_among_ties, collate, keep_scores, make_example, mean_f1, page_scores, train_line_model,
)


def _pages(n: int) -> list[Page]:
    """Hand-made pages: menus and footers around articles, shuffled a little per page."""
    out = []
    for i in range(n):
        article = "\n".join(f"{line} Story {i} continues here with more words." for line in ARTICLE.split("\n"))
        parts = [MENU, article, FOOTER] if i % 2 else [MENU, "", article, "", FOOTER, "Share on social media"]
        out.append(Page(f"toy:{i}", "toy", "train", page(*parts), article))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pages = _pages(24)
    config = LineTrainConfig(epochs=6, batch_pages=4, shape={"hidden": 16, "embed": 8, "dilations": (1, 2)}, buckets=512)
    examples = [make_example(p, config.buckets) for p in pages]
    model, threshold, relative, history = train_line_model(examples[:20], examples[20:], pages[20:], config, _f1)
    out = tmp_path_factory.mktemp("lines") / "model"
    manifest = export_line_model(
        model, out, model_id="toy-lines", keep_threshold=threshold, relative_threshold=relative,
        check_pages=[e.features for e in examples[20:]],
    )
    return model, manifest, out, pages, examples


def _f1(pairs):
    from prox_spark.evaluation.shingles import shingle_f1

    return shingle_f1(pairs).f1


def test_a_page_weighs_what_its_set_weight_says():
    page = _pages(1)[0]
    assert make_example(page).weights.sum() == pytest.approx(1.0)
    assert make_example(page, page_weight=0.3).weights.sum() == pytest.approx(0.3)


def test_the_ensemble_scores_the_mean_keep_probability_of_its_seeds(trained):
    model, _, _, _, examples = trained
    assert isinstance(model, LineEnsemble) and len(model.members) == LineTrainConfig().members == 3
    batch = collate(examples[20:])
    with torch.no_grad():
        members = [torch.sigmoid(m(batch["dense"], batch["tokens"], batch["mask"])) for m in model.members]
        ensemble = torch.sigmoid(model(batch["dense"], batch["tokens"], batch["mask"]))
    assert not torch.allclose(members[0], members[1])  # different seeds, different scorers
    assert torch.allclose(ensemble, torch.stack(members).mean(dim=0), atol=1e-5)


def test_thresholds_within_the_validation_noise_are_ties():
    rng = np.random.default_rng(0)
    noisy = rng.uniform(0.3, 0.9, size=(200, 2))
    # at 0.5 some pages gain and others lose: a small mean gap over such pages is noise
    scores = {0.45: noisy, 0.5: noisy + rng.normal(-0.002, 0.05, size=(200, 2)), 0.6: noisy - 0.2}
    assert mean_f1(scores[0.45]) > mean_f1(scores[0.5]) > mean_f1(scores[0.6])
    assert choose_among_ties(scores, prefer=lambda t: abs(t - 0.5)) == 0.5
    # a gap far outside the noise is no tie, whatever the preference
    assert choose_among_ties({0.45: noisy, 0.6: scores[0.6]}, prefer=lambda t: -t) == 0.45
    # identical pages: no noise, the best alone wins
    same = np.full((50, 2), 0.8)
    assert choose_among_ties({0.0: same, 0.3: same - 0.001}, prefer=lambda r: -r) == 0.0


def test_page_scores_follow_the_shingle_metric():
    pairs = [("one two three four five", "one two three four five"), ("alpha beta gamma delta", ""), ("", "")]
    rows = page_scores(pairs)
    assert rows[0].tolist() == [1.0, 1.0]
    assert np.isnan(rows[1, 0]) and rows[1, 1] == 0.0  # nothing predicted: recall only
    assert np.isnan(rows[2]).all()  # neither side has a shingle: the page does not count
    assert mean_f1(rows) == pytest.approx(shingle_f1(pairs).f1)


def test_training_learns_the_toy_pages(trained):
    model, manifest, _, pages, examples = trained
    scores = keep_scores(model, examples[20:])
    for example, page_scores in zip(examples[20:], scores):
        decided = np.asarray(page_scores) >= manifest.keep_threshold
        labelled = example.weights > 0
        assert (decided[labelled] == (example.labels[labelled] > 0.5)).mean() >= 0.9


def test_onnxruntime_decides_as_torch_and_renders_programs(trained):
    model, manifest, out, pages, examples = trained
    refiner = load_stage_model(out, "lines", Serving(provider="cpu"))
    texts = [p.noisy_text for p in pages[20:]]
    onnx_scores = refiner.keep_scores(texts)
    torch_scores = keep_scores(model, examples[20:])
    for a, b, text in zip(onnx_scores, torch_scores, texts):
        assert np.allclose(a, b, atol=1e-4)
        lines = text.split("\n")
        assert refiner.decisions(text, a.tolist()) == line_decisions(lines, b.tolist(), manifest.keep_threshold, manifest.relative_threshold)
    programs = write_line_programs(refiner, texts + ["", "   "])
    assert programs[-2:] == [[], []]
    for text, (program,) in zip(texts, programs[:-2]):
        assert (program.first_line, program.last_line) == (0, len(text.split("\n")) - 1)
        assert program.prompt_tokens == len(text.split("\n"))
        result = execute(text, program.program, stage="chunk")
        assert result.errors == 0
        assert "Home" not in result.text.split("\n") and "Story" in result.text


def test_a_page_scores_the_same_alone_and_in_a_batch(trained):
    _, _, out, pages, _ = trained
    refiner = load_stage_model(out, "lines", Serving(provider="cpu"))
    texts = [p.noisy_text for p in pages[:6]] + [MENU]
    together = refiner.keep_scores(texts)
    for text, scores in zip(texts, together):
        assert np.allclose(refiner.keep_scores([text])[0], scores, atol=1e-5)


def test_kind_mismatches_and_damaged_files_fail_clearly(trained, tmp_path):
    _, manifest, out, _, _ = trained
    assert verify_stage_model(out, "lines", "chunk") == (manifest.model_id, manifest.checksum)
    with pytest.raises(ModelLoadError, match="line refiner"):
        verify_stage_model(out, "generative", "chunk")
    with pytest.raises(ModelLoadError, match="chunk-stage"):
        verify_stage_model(out, "lines", "doc")
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(out, damaged)
    (damaged / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_stage_model(damaged, "lines", Serving(provider="cpu"))
