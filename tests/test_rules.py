"""Heuristic rules (Gopher, C4, FineWeb): each threshold tripped by a hand-made document with its reason,
C4 line edits exactly, chain counting, the batch stage's bad input, and totality as a property."""

import subprocess
import sys
from functools import reduce

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox_spark.rules import (
    PRESETS,
    RULES_STAGE_COLUMNS,
    C4Quality,
    ChainStats,
    FineWebQuality,
    GopherQuality,
    GopherRepetition,
    RuleChain,
    RuleResult,
    get_preset,
    rules_stage_batch,
)
from prox_spark.rules.base import dropped, kept
from prox_spark.rules.c4 import count_sentences

GOOD = """The history of the river valley is told through the stones that line its banks.
Farmers arrived with cattle and seed, and they built low walls to mark their fields.
Over many generations the walls grew taller, and villages formed where the roads met.
A market opened near the old bridge, and traders came from towns across the region.
Today the valley is known for its orchards, quiet trails, and a small museum of farming tools.
Visitors often walk from the museum to the bridge, then follow the river toward the hills."""

VOCAB = "the river flows past old stone walls and green fields".split()


def prose(n_words: int) -> str:
    """``n_words`` words of plain English (mean length 4.5, two distinct stop words)."""
    return " ".join(VOCAB[i % len(VOCAB)] for i in range(n_words))


def distinct(prefix: str, n: int, start: int = 0) -> list[str]:
    """``n`` different 5-character words, so character fractions equal word fractions."""
    return [f"{prefix}{i:04d}" for i in range(start, start + n)]


def repeated_phrase_doc(phrase_words: int, occurrences: int, total_words: int) -> str:
    """A phrase of distinct words repeated, each occurrence followed by distinct filler (no longer repeats)."""
    phrase = distinct("p", phrase_words)
    filler = distinct("f", total_words - phrase_words * occurrences)
    per_gap = len(filler) // occurrences
    words: list[str] = []
    for k in range(occurrences):
        gap = filler[k * per_gap :] if k == occurrences - 1 else filler[k * per_gap : (k + 1) * per_gap]
        words += phrase + gap
    assert len(words) == total_words
    return " ".join(words)


# ---------------------------------------------------------------- Gopher quality


def test_gopher_quality_keeps_good_prose():
    result = GopherQuality().apply(GOOD)
    assert result == RuleResult(True, None, GOOD)


@pytest.mark.parametrize(
    "text, reason",
    [
        (prose(49), "gopher_short_doc"),
        ("", "gopher_short_doc"),
        ("... --- ### !!!", "gopher_short_doc"),  # symbol-only tokens are not words
        ("word " * 100_001, "gopher_long_doc"),
        (" ".join(["it is a go to be of"] * 9), "gopher_below_avg_word_length"),
        (" ".join(["internationalization"] * 60), "gopher_above_avg_word_length"),
        (prose(60) + " #tag" * 7, "gopher_too_many_hashes"),  # 7 / 67 words
        (prose(60) + " wait..." * 7, "gopher_too_many_ellipsis"),
        ("\n".join("• " + prose(8) for _ in range(10)), "gopher_too_many_bullets"),
        ("\n".join(prose(10) + ("..." if i < 4 else ".") for i in range(10)), "gopher_too_many_end_ellipsis"),
        (prose(60) + " 2023" * 20, "gopher_below_alpha_threshold"),  # 60 / 80 tokens alphabetic
        (" ".join(["river stone flows"] * 20), "gopher_not_enough_stop_words"),
        (" ".join(["the river stone"] * 20), "gopher_not_enough_stop_words"),  # one distinct stop word
    ],
)
def test_gopher_quality_drops(text, reason):
    result = GopherQuality().apply(text)
    assert (result.keep, result.reason, result.text) == (False, reason, text)


@pytest.mark.parametrize(
    "text",
    [
        prose(50),
        prose(54) + " #x" * 6,  # hash ratio exactly 0.1 is not above it
        "\n".join(("• " if i < 9 else "") + prose(8) for i in range(10)),  # 90% bullets
        "\n\n".join("• " + prose(8) for _ in range(9)) + "\n\n" + prose(8),  # 90%, blank separators not counted
        "\n".join(prose(10) + ("..." if i < 3 else ".") for i in range(10)),  # 30% ellipsis lines
        prose(64) + " 2023" * 16,  # exactly 80% alphabetic tokens
        " ".join(["The river, of stone!"] * 15),  # case and punctuation do not hide stop words
    ],
)
def test_gopher_quality_boundaries_keep(text):
    assert GopherQuality().apply(text).keep


def test_gopher_quality_bullet_ratio_ignores_blank_lines():
    text = "\n\n".join("• " + prose(8) for _ in range(10))
    assert GopherQuality().apply(text).reason == "gopher_too_many_bullets"


def test_gopher_quality_thresholds_are_configurable():
    assert GopherQuality(min_doc_words=10).apply(prose(20)).keep
    assert GopherQuality(min_doc_words=5, max_doc_words=10).apply(prose(20)).reason == "gopher_long_doc"


# ---------------------------------------------------------------- Gopher repetition


def test_gopher_repetition_keeps_good_prose():
    assert GopherRepetition().apply(GOOD).keep


def _lines(n: int, words: int, prefix: str) -> list[str]:
    return [" ".join(distinct(prefix, words, start=i * words)) for i in range(n)]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("\n\n".join(_lines(6, 8, "a") + _lines(1, 8, "a") * 3), "gopher_dup_para_frac"),  # 3 / 9 paragraphs
        ("\n\n".join(_lines(10, 3, "a") + _lines(1, 30, "b") * 2), "gopher_dup_para_char_frac"),  # 1 / 12
        ("\n".join(_lines(6, 8, "a") + _lines(1, 8, "a") * 4), "gopher_dup_line_frac"),  # 4 / 10 lines
        ("\n".join(_lines(10, 3, "a") + _lines(1, 30, "b") * 2), "gopher_dup_line_char_frac"),
        (repeated_phrase_doc(2, 6, 50), "gopher_top_2_gram"),  # 24% of chars in the top 2-gram
        (repeated_phrase_doc(3, 4, 60), "gopher_top_3_gram"),  # 3-gram 20%, its 2-grams 13%
        (repeated_phrase_doc(4, 3, 60), "gopher_top_4_gram"),  # 4-gram 20%, 3-gram 15%, 2-gram 10%
        # a 10-word phrase twice: its second copy is the duplicated-n-gram coverage for every n in 5..10,
        # so coverage just above threshold(n) and at most threshold(n - 1) trips exactly check n.
        (repeated_phrase_doc(10, 2, 55), "gopher_dup_5_gram"),  # 18.2% > 15%
        (repeated_phrase_doc(10, 2, 69), "gopher_dup_6_gram"),  # 14.5%
        (repeated_phrase_doc(10, 2, 74), "gopher_dup_7_gram"),  # 13.5%
        (repeated_phrase_doc(10, 2, 80), "gopher_dup_8_gram"),  # 12.5%
        (repeated_phrase_doc(10, 2, 87), "gopher_dup_9_gram"),  # 11.5%
        (repeated_phrase_doc(10, 2, 95), "gopher_dup_10_gram"),  # 10.5%
    ],
)
def test_gopher_repetition_drops(text, reason):
    result = GopherRepetition().apply(text)
    assert (result.keep, result.reason) == (False, reason)


def test_gopher_repetition_boundaries_keep():
    assert GopherRepetition().apply(repeated_phrase_doc(10, 2, 100)).keep  # 10% is not above 10%
    assert GopherRepetition().apply(repeated_phrase_doc(2, 5, 50)).keep  # top 2-gram exactly 20%
    short_dup = _lines(6, 8, "a") + ["b0000"] * 4  # 3 / 10 lines duplicated, 6% of line characters
    assert GopherRepetition().apply("\n".join(short_dup)).keep


def test_gopher_repetition_counts_overlapping_ngrams_once():
    # 40 equal words: the 35 repeated 5-grams (175 word slots) cover words 2..40 once each: 39 / 40 = 97.5%
    text = " ".join(["abcde"] * 40)
    only_5 = dict(max_top_ngram_char_frac=())
    assert GopherRepetition(**only_5, max_dup_ngram_char_frac=((5, 0.974),)).apply(text).reason == "gopher_dup_5_gram"
    assert GopherRepetition(**only_5, max_dup_ngram_char_frac=((5, 0.975),)).apply(text).keep


def test_gopher_repetition_single_occurrence_is_not_a_top_ngram():
    assert GopherRepetition().apply("two words").keep
    assert GopherRepetition().apply("").keep  # emptiness is the chain's job; the rule is still total


# ---------------------------------------------------------------- C4

C4_DOC = """Title Of Page
This is the first sentence of the page. It has two sentences.
Click here
We use cookies to improve your experience.
Please enable JavaScript to view the comments.
The third line is proper and ends well.

Short one.
A line with an ellipsis at the end...
  An indented line is kept verbatim, with its spaces.  \r
Final line makes the count of sentences reach five!
function (x) { return x; }
A line with a huge word """ + "x" * 1001 + "."


def test_c4_removes_lines_exactly():
    result = C4Quality().apply(C4_DOC)
    assert result.keep and result.reason is None
    assert result.text == (
        "This is the first sentence of the page. It has two sentences.\n"
        "The third line is proper and ends well.\n"
        "  An indented line is kept verbatim, with its spaces.  \r\n"
        "Final line makes the count of sentences reach five!"
    )
    assert dict(result.lines_removed) == {
        "c4_line_no_terminal_punct": 4,  # title, "Click here", the ellipsis line, the code line
        "c4_line_policy": 1,
        "c4_line_javascript": 1,
        "c4_line_empty": 1,
        "c4_line_too_few_words": 1,
        "c4_line_long_word": 1,
    }


@pytest.mark.parametrize(
    "extra, reason",
    [
        ("Lorem ipsum dolor sit amet, consectetur.", "c4_lorem_ipsum"),
        ("The config is {a: 1} in this sentence.", "c4_curly_bracket"),
    ],
)
def test_c4_drops_page(extra, reason):
    text = GOOD + "\n" + extra
    result = C4Quality().apply(text)
    assert (result.keep, result.reason, result.text) == (False, reason, text)


def test_c4_curly_bracket_on_a_removed_line_does_not_drop_the_page():
    result = C4Quality().apply(GOOD + "\nint main() {")
    assert result.keep and result.text == GOOD
    assert dict(result.lines_removed) == {"c4_line_no_terminal_punct": 1}


def test_c4_too_few_sentences():
    four = "\n".join(GOOD.split("\n")[:4])
    assert C4Quality().apply(four).reason == "c4_too_few_sentences"
    assert C4Quality().apply(four + "\nOne more line makes five.").keep
    assert C4Quality().apply("").reason == "c4_too_few_sentences"


def test_c4_without_terminal_punct_rule_keeps_unpunctuated_lines():
    text = GOOD + "\nRead more about the valley here"
    assert C4Quality().apply(text).text == GOOD
    assert C4Quality(filter_no_terminal_punct=False).apply(text).text == text


@pytest.mark.parametrize(
    "line, n",
    [
        ("One sentence.", 1),
        ("One. Two! Three? Four", 4),
        ('He said "stop." Then left.', 2),
        ("Version 2.0 is out.", 1),
        ("", 0),
    ],
)
def test_count_sentences(line, n):
    assert count_sentences(line) == n


# ---------------------------------------------------------------- FineWeb


def test_fineweb_keeps_good_prose():
    assert FineWebQuality().apply(GOOD).keep


LONG_NO_PUNCT = [f"Navigation entry number {i} for the home page menu" for i in range(9)]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("\n".join(LONG_NO_PUNCT + ["The only sentence that ends with a full stop."]), "fineweb_line_punct_ratio"),
        ("\n".join([f"Short line number {i}." for i in range(7)] + GOOD.split("\n")[:3]), "fineweb_short_line_ratio"),
        (GOOD + "\n" + GOOD.split("\n")[0], "fineweb_char_dup_ratio"),
        ("\n".join(f"Extraordinarilymagnificent{i} unbelievable." for i in range(20)), "fineweb_list_ratio"),
        ("\n\n\n", "fineweb_line_punct_ratio"),
    ],
)
def test_fineweb_drops(text, reason):
    result = FineWebQuality().apply(text)
    assert (result.keep, result.reason) == (False, reason)


def test_fineweb_boundaries():
    # 2 of 10 punctuated lines (0.2 > 0.12) passes the punctuation check; 6 of 10 short lines (< 0.67) passes
    text = "\n".join(LONG_NO_PUNCT[:2] + [f"Short line number {i}." for i in range(6)] + GOOD.split("\n")[:2])
    assert FineWebQuality().apply(text).keep
    # 10 lines of 3 tokens: 9 newlines / 30 tokens is exactly 0.3, not above it
    assert FineWebQuality().apply("\n".join(f"Extraordinarilymagnificent{i} unbelievable." for i in range(10))).keep


def test_fineweb_ignores_trailing_whitespace_on_line_ends():
    assert FineWebQuality().apply(GOOD.replace("\n", "\r\n")).keep


# ---------------------------------------------------------------- contract and chain


def test_rule_result_requires_consistent_reason():
    with pytest.raises(ValueError):
        RuleResult(True, "why", "x")
    with pytest.raises(ValueError):
        RuleResult(False, None, "x")


class Stub:
    def __init__(self, name, reason=None):
        self.name, self.reason, self.calls = name, reason, 0

    def apply(self, text):
        self.calls += 1
        return dropped(text, self.reason) if self.reason else kept(text.upper())


def test_chain_stops_at_first_drop_and_counts():
    first, second, third = Stub("first"), Stub("second", reason="too_loud"), Stub("third")
    chain = RuleChain([first, second, third])
    verdict = chain.apply("hello")
    assert verdict.rule == "second"
    assert verdict.result == RuleResult(False, "too_loud", "HELLO")  # the text the dropping rule saw
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)
    assert verdict.stats.as_dict() == {
        "non_empty": {"forwarded": 1, "dropped": {}, "lines_removed": {}},
        "first": {"forwarded": 1, "dropped": {}, "lines_removed": {}},
        "second": {"forwarded": 0, "dropped": {"too_loud": 1}, "lines_removed": {}},
    }


def test_chain_counts_per_reason_across_documents():
    chain = RuleChain([C4Quality(), GopherQuality()])
    docs = [GOOD, C4_DOC, "   ", GOOD + "\nLorem ipsum is placeholder text here.", prose(60) + "."]
    verdicts = [chain.apply(doc) for doc in docs]
    assert [v.rule for v in verdicts] == [None, "gopher_quality", "non_empty", "c4", "c4"]
    total = reduce(ChainStats.merge, (v.stats for v in verdicts), ChainStats())
    assert total["non_empty"].forwarded == 4 and dict(total["non_empty"].dropped) == {"empty_text": 1}
    assert total["c4"].forwarded == 2
    assert dict(total["c4"].dropped) == {"c4_lorem_ipsum": 1, "c4_too_few_sentences": 1}
    assert total["c4"].lines_removed["c4_line_no_terminal_punct"] == 4
    assert total["gopher_quality"].forwarded == 1
    assert dict(total["gopher_quality"].dropped) == {"gopher_short_doc": 1}  # C4 left 43 words of C4_DOC


def test_chain_rejects_duplicate_names():
    with pytest.raises(ValueError, match="unique"):
        RuleChain([C4Quality(), C4Quality()])
    RuleChain([C4Quality(), C4Quality(name="c4_loose", filter_no_terminal_punct=False)])


def test_presets():
    assert set(PRESETS) == {"gopher", "c4", "fineweb", "gopher_c4_fineweb"}
    assert get_preset("gopher_c4_fineweb").names == (
        "non_empty",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb_quality",
    )
    with pytest.raises(ValueError, match="gopher_c4_fineweb"):
        get_preset("gopher-c4")
    for chain in PRESETS.values():
        verdict = chain.apply(GOOD)
        assert verdict.result.keep and verdict.result.text == GOOD


# ---------------------------------------------------------------- batch stage


def test_batch_rows_and_bad_input():
    frame = rules_stage_batch([GOOD, None, "", " \n\t", 42, b"bytes are decoded", C4_DOC], "c4")
    assert tuple(frame.columns) == RULES_STAGE_COLUMNS
    assert frame["kept"].tolist() == [True, False, False, False, False, False, True]
    assert frame["reason"].tolist()[1:6] == [
        "empty_text",
        "empty_text",
        "empty_text",
        "invalid_text",
        "c4_too_few_sentences",
    ]
    assert frame["rule"].tolist()[:5] == [None, "non_empty", "non_empty", "non_empty", None]
    good = frame.iloc[0]
    assert (good.text, good.lines_before, good.lines_after, good.words_before, good.words_after) == (
        GOOD,
        6,
        6,
        len(GOOD.split()),
        len(GOOD.split()),
    )
    edited = frame.iloc[6]
    assert (edited.lines_before, edited.lines_after) == (13, 4)
    assert edited.words_after == len(edited.text.split()) < edited.words_before
    assert (frame.iloc[5].text, frame.iloc[5].lines_after, frame.iloc[5].words_after) == ("", 0, 0)


def test_batch_accepts_series_arrow_and_empty():
    series = pd.Series([GOOD, None, float("nan"), pd.NA], dtype=object)
    frame = rules_stage_batch(series, "fineweb")
    assert frame["reason"].tolist() == [None, "empty_text", "empty_text", "empty_text"]
    arrow = rules_stage_batch(pa.array([GOOD, None]), PRESETS["gopher"])
    assert arrow["kept"].tolist() == [True, False]
    empty = rules_stage_batch([], "gopher")
    assert empty.empty and tuple(empty.columns) == RULES_STAGE_COLUMNS


def test_rules_package_imports_without_pandas():
    code = "import sys, prox_spark.rules; assert 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- properties

TOKENS = [
    "the", "river", "and", "of", "stone", "with", "{", "}", "javascript", "lorem", "ipsum", "...", "…", "#",
    "•", "-", "2023", "cookies", "use", "privacy", "policy", ".", "!", "?", '"', "x" * 1001, "\r", "\t", "é",
]  # fmt: skip
lines = st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join)
structured = st.lists(lines, min_size=1, max_size=30).map("\n".join)
texts = st.one_of(structured, st.text(max_size=300))


def is_subsequence(sub: list[str], seq: list[str]) -> bool:
    remaining = iter(seq)
    return all(any(item == candidate for candidate in remaining) for item in sub)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, preset=st.sampled_from(sorted(PRESETS)))
def test_rules_are_total_and_only_remove_lines(text, preset):
    verdict = PRESETS[preset].apply(text)
    assert verdict.result.keep == (verdict.rule is None)
    if verdict.result.keep:
        assert is_subsequence(verdict.result.text.split("\n"), text.split("\n"))
    else:
        assert verdict.result.reason


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.one_of(texts, st.none(), st.integers(), st.binary(max_size=20)), max_size=5))
def test_batch_never_raises(values):
    frame = rules_stage_batch(values, "gopher_c4_fineweb")
    assert len(frame) == len(values)
    assert frame["reason"].isna().tolist() == frame["kept"].tolist()
