"""The cleaning evaluation (issue #19): the shingle scorer on hand-made pairs with hand-computed values
and against the shared benchmark tool on real gold pairs, the harness's per-set scores, and
``jobs.evaluate_cleaning`` end to end on a few real gold pages."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from prox_spark.evaluation.gold import Page
from prox_spark.evaluation.harness import long_lines, report_pages, score_set
from prox_spark.evaluation.shingles import page_counts, shingle_f1, shingles

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXTSCORE = REPO_ROOT.parent / "shared" / "tools" / "textscore.py"

SEVEN = "one two three four five six seven"  # 4 shingles
#: shares its first two shingles with SEVEN (one..four, two..five) and has two of its own
HALF = "one two three four five eight nine"


@pytest.fixture(scope="module")
def textscore() -> ModuleType:
    """The shared benchmark scorer, imported by path (it is no package)."""
    if not TEXTSCORE.is_file():
        pytest.skip(f"shared scorer {TEXTSCORE} is absent: the comparison with it is skipped")
    spec = importlib.util.spec_from_file_location("shared_textscore", TEXTSCORE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scores(pairs: list[tuple[str, str]]) -> tuple[float, float, float]:
    result = shingle_f1(pairs)
    return result.f1, result.precision, result.recall


# --- the scorer on hand-made pairs ------------------------------------------------------------------


def test_tokens_are_word_runs_and_shingles_are_counted_4grams():
    assert shingles("It's a fine day, isn't it?") == shingles("It s a fine day isn t it")
    assert sum(shingles("It's a fine day, isn't it?").values()) == 5  # 8 tokens
    assert shingles("café über naïve straße") == {("café", "über", "naïve", "straße"): 1}
    assert shingles("a b c d a b c d")[("a", "b", "c", "d")] == 2
    assert shingles("only three tokens") == {}


def test_identical_texts_score_one():
    assert scores([(SEVEN, SEVEN)]) == (1.0, 1.0, 1.0)


def test_disjoint_texts_score_zero():
    assert page_counts("alpha beta gamma delta epsilon", "pi rho sigma tau upsilon") == (0.0, 0.5, 0.5)
    assert scores([("alpha beta gamma delta epsilon", "pi rho sigma tau upsilon")]) == (0.0, 0.0, 0.0)


def test_half_overlap():
    # tp 2, fp 2, fn 2 -> each 1/3 of the page; P = R = 1/2
    assert page_counts(SEVEN, HALF) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert scores([(SEVEN, HALF)]) == pytest.approx((0.5, 0.5, 0.5))
    # a prediction that is half the gold: nothing wrong (P 1), half missing (R 1/2), F1 2/3
    assert scores([(SEVEN, "one two three four five")]) == pytest.approx((2 / 3, 1.0, 0.5))


def test_repeated_shingles_count_once_per_occurrence():
    # gold has one..four twice among its 5 shingles; the prediction has it once: tp 1, fn 4
    assert scores([("a b c d a b c d", "a b c d")]) == pytest.approx((1 / 3, 1.0, 0.2))


def test_empty_prediction():
    # no predicted shingle: the page counts for recall (0) but not for precision
    assert page_counts(SEVEN, "") == (0.0, 0.0, 1.0)
    assert scores([(SEVEN, SEVEN), (SEVEN, "")]) == pytest.approx((2 / 3, 1.0, 0.5))
    # no page predicted anything: precision has no page; 0 where textscore.py stops with an error
    assert scores([(SEVEN, "")]) == (0.0, 0.0, 0.0)


def test_texts_under_four_tokens():
    # neither side has a shingle: the page counts for neither average
    assert page_counts("a b c", "a b c") == (0.0, 0.0, 0.0)
    assert scores([("a b c", "a b c"), (SEVEN, HALF)]) == pytest.approx((0.5, 0.5, 0.5))
    # a short gold: the page counts for precision only (all predicted shingles are wrong)
    assert scores([(SEVEN, HALF), ("a b c", "a b c d e")]) == pytest.approx((1 / 3, 0.25, 0.5))
    # a short prediction against a real gold is an empty prediction
    assert scores([(SEVEN, SEVEN), (SEVEN, "one two")]) == pytest.approx((2 / 3, 1.0, 0.5))


def test_hand_made_pairs_agree_with_the_shared_tool(textscore):
    cases = [
        [(SEVEN, SEVEN)],
        [(SEVEN, HALF)],
        [(SEVEN, "one two three four five")],
        [("a b c d a b c d", "a b c d")],
        [(SEVEN, SEVEN), (SEVEN, "")],
        [("a b c", "a b c"), (SEVEN, HALF)],
        [(SEVEN, HALF), ("a b c", "a b c d e")],
    ]
    for pairs in cases:
        assert scores(pairs) == textscore.shingle_f1(pairs), pairs


def test_real_gold_pairs_agree_with_the_shared_tool(textscore, shared_data):
    pages = [p for ps in report_pages(shared_data, ["cleanportaleval", "trafilatura"], max_pages=15).values() for p in ps]
    predictions = {
        "gold": [p.gold_text for p in pages],
        "noisy": [p.noisy_text for p in pages],
        "long lines": [long_lines(p.noisy_text) for p in pages],
        # every third page dropped, the rest cut in half: empty predictions and partial overlaps
        "mixed": ["" if i % 3 == 0 else p.noisy_text[: len(p.noisy_text) // 2] for i, p in enumerate(pages)],
    }
    for name, outputs in predictions.items():
        pairs = [(p.gold_text, output) for p, output in zip(pages, outputs)]
        assert scores(pairs) == textscore.shingle_f1(pairs), name
    assert scores([(p.gold_text, p.gold_text) for p in pages])[0] == 1.0


# --- the harness's parts ------------------------------------------------------------------------------


def test_long_lines_keeps_lines_of_twelve_words_or_more():
    long = "one two three four five six seven eight nine ten eleven twelve"
    text = f"Home | About\n{long}\neleven words are not quite enough for this rule to keep\n{long} more"
    assert long_lines(text) == f"{long}\n{long} more"
    assert long_lines("Menu\nLogin") == ""


def test_score_set_counts_drops_and_only_snippets_in_the_page():
    page = Page(
        page_id="t:1", set_name="trafilatura", split="test",
        noisy_text=f"Menu\n{SEVEN}\nFooter text here", gold_text=SEVEN,
        must_keep=("two three four", "not in the page"), must_remove=("Footer text",),
    )
    dropped = Page(page_id="t:2", set_name="trafilatura", split="test", noisy_text=f"Menu\n{HALF}", gold_text=HALF,
                   must_keep=(HALF,))
    score = score_set([page, dropped], [SEVEN, ""], seconds=0.5)
    assert (score.pages, score.dropped, score.pages_per_s) == (2, 1, 4.0)
    assert (score.precision, score.recall) == (1.0, 0.5)
    assert score.must_keep == (1, 2) and score.must_keep_retained == 0.5
    assert score.must_remove == (1, 1) and score.must_remove_removed == 1.0
    gold_page = Page(page_id="cleaneval:1", set_name="cleaneval", split="test", noisy_text=SEVEN, gold_text=SEVEN)
    assert score_set([gold_page], [SEVEN], seconds=0.1).must_keep is None


def test_report_pages_are_test_pages_capped_per_set(shared_data):
    pages = report_pages(shared_data, ["trafilatura", "cleanportaleval"], max_pages=3)
    assert list(pages) == ["cleanportaleval", "trafilatura"]  # report order, not request order
    assert all(len(p) == 3 and all(page.split == "test" for page in p) for p in pages.values())
    with pytest.raises(ValueError, match="unknown set"):
        report_pages(shared_data, ["nosuchset"])


# --- the command end to end -------------------------------------------------------------------------


def run_job(args: list[str], capsys, monkeypatch) -> tuple[int, dict, str]:
    from prox_spark.jobs.evaluate_cleaning import main

    monkeypatch.chdir(REPO_ROOT)  # config model paths are relative to the checkout, as for prox-spark clean
    code = main(args)
    out = capsys.readouterr().out
    report_file = Path(args[args.index("--out") + 1]) / "cleaning.json"
    return code, json.loads(report_file.read_text(encoding="utf-8")) if code == 0 else {}, out


def check_report(report: dict, sets: list[str], variants: list[str]) -> None:
    assert list(report["sets"]) == sets
    assert list(report["results"]) == variants
    for variant in variants:
        for set_name in sets:
            score = report["results"][variant][set_name]
            for field in ("f1", "precision", "recall"):
                assert 0.0 <= score[field] <= 1.0, (variant, set_name, field)
            assert isinstance(score["dropped"], int) and 0 <= score["dropped"] <= score["pages"]
            assert score["pages_per_s"] > 0
    snippets = report["results"]["none"]["trafilatura"]
    assert snippets["must_keep_retained"] == 1.0 and snippets["must_remove_removed"] == 0.0


def test_job_with_baselines_and_the_rules_mode(shared_data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "reports"
    args = ["--conf", "conf/local.yaml", "pipeline.mode=rules", "--data-dir", str(shared_data),
            "--sets", "cleanportaleval,trafilatura", "--max-pages", "3", "--out", str(out)]
    code, report, stdout = run_job(args, capsys, monkeypatch)
    assert code == 0
    assert (out / "cleaning.md").is_file() and (out / "cleaning.json").is_file()
    check_report(report, ["cleanportaleval", "trafilatura"], ["none", "lines>=12 words", "rules", "default"])
    assert report["variants"]["default"]["pipeline_mode"] == "rules"
    assert report["results"]["none"]["cleanportaleval"]["recall"] > 0.95  # gold text is in the page
    for field in ("f1", "precision", "recall", "dropped"):  # the same pipeline twice, once as the baseline
        assert report["results"]["rules"]["cleanportaleval"][field] == report["results"]["default"]["cleanportaleval"][field]
    assert "## Shingle F1" in stdout and "| rules |" in stdout
    assert stdout == (out / "cleaning.md").read_text(encoding="utf-8") + "\n"


def test_job_with_the_default_models_on_every_set(shared_data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "reports"
    args = ["--data-dir", str(shared_data), "--max-pages", "2", "--out", str(out)]
    code, report, _ = run_job(args, capsys, monkeypatch)
    assert code == 0
    sets = ["cleaneval", "readability", "cleanportaleval", "dragnet", "msv_chaos", "trafilatura"]
    check_report(report, sets, ["none", "lines>=12 words", "rules", "default"])
    default = report["variants"]["default"]
    assert default["pipeline_mode"] == "prox" and default["doc_model"]["id"] and default["chunk_model"]["id"]
    for set_name in sets[:-1]:
        assert report["results"]["none"][set_name]["recall"] > 0.9, set_name


def test_job_exits_2_on_a_missing_data_folder(tmp_path, capsys):
    from prox_spark.jobs.evaluate_cleaning import main

    assert main(["--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_variant_specs_name_a_config_and_its_overrides(monkeypatch):
    from prox_spark.jobs.evaluate_cleaning import parse_variant
    from prox_spark.config import ConfigError

    monkeypatch.chdir(REPO_ROOT)
    variant = parse_variant("doc only=conf/local.yaml,pipeline.mode=prox-doc,models.doc.batch_size=4")
    assert variant.name == "doc only"
    assert variant.cleaner.pipeline.mode == "prox-doc" and variant.cleaner.models.doc.batch_size == 4
    assert parse_variant("builtin=").cleaner.pipeline.mode == "prox"  # empty path: the built-in defaults
    with pytest.raises(ConfigError, match="NAME=CONF_PATH"):
        parse_variant("conf/local.yaml")
