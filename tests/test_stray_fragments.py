"""The line refiner's stray-fragment cut (``prox_spark.lines.fragments``): runs of kept lines far smaller
than the page's main text go, a page of small runs keeps them all, and the cuts compose in ``PageCuts``."""

from __future__ import annotations

import pytest

from prox_spark.lines import NO_CUTS, PageCuts, line_decisions
from prox_spark.lines.fragments import kept_runs, without_stray_fragments

PARAGRAPH = "The council approved the new tram line after a long debate about its cost and the route through town."
#: an article's paragraphs: distinct, as a page's are (the doubled-line cut removes a line repeated below itself)
ARTICLE = [f"{PARAGRAPH} Part {i} of the report." for i in range(6)]
TEASER = "More than sixty thousand people have left the region in three months, the agency said on Wednesday."


def test_runs_join_kept_lines_across_one_removed_line_and_blank_lines():
    lines = [PARAGRAPH, "", "Photo: City Times", PARAGRAPH, "Home", "Sports", TEASER]
    keep = [True, True, False, True, False, False, True]
    words = len(PARAGRAPH.split())
    assert kept_runs(lines, keep) == [(0, 3, 2 * words), (6, 6, len(TEASER.split()))]


def test_a_lone_teaser_far_from_the_article_is_a_stray_fragment():
    # the article (6 x 20 words) is long; each teaser (18 words) has less than a fifth of its words
    lines = ["Home", TEASER, "World", "Sports", *[PARAGRAPH] * 6, "Related", "More news", TEASER]
    keep = [False, True, False, False] + [True] * 6 + [False, False, True]
    assert without_stray_fragments(lines, keep) == [False] * 4 + [True] * 6 + [False] * 3


def test_a_page_of_small_runs_keeps_them_all():
    lines = [TEASER, "Home", "World", TEASER, "Sports", "Weather", TEASER]
    keep = [True, False, False, True, False, False, True]
    assert without_stray_fragments(lines, keep) == keep


def test_a_second_section_of_the_article_is_long_enough_to_stay():
    lines = [*[PARAGRAPH] * 6, "Advertisement", "Read more", *[PARAGRAPH] * 2]
    keep = [True] * 6 + [False, False] + [True] * 2
    assert without_stray_fragments(lines, keep) == keep


def test_mismatched_input_is_refused():
    with pytest.raises(ValueError, match="decisions"):
        kept_runs(["a", "b"], [True])


def test_page_cuts_compose_after_the_line_decisions():
    lines = ["Home", TEASER, "World", "Sports", *ARTICLE, "3 Comments", "Anna says:", PARAGRAPH]
    scores = [0.1, 0.9, 0.1, 0.1] + [0.9] * 6 + [0.2, 0.3, 0.9]
    plain = line_decisions(lines, scores, 0.5)
    assert plain == [False, True, False, False] + [True] * 6 + [False, False, True]
    assert line_decisions(lines, scores, 0.5, cuts=NO_CUTS) == plain
    cut = line_decisions(lines, scores, 0.5, cuts=PageCuts())
    assert cut == [False] * 4 + [True] * 6 + [False] * 3
    only_comments = line_decisions(lines, scores, 0.5, cuts=PageCuts(stray_fragments=False))
    assert only_comments == [False, True, False, False] + [True] * 6 + [False] * 3
