"""The line refiner's doubled-line cut (``prox_spark.lines.doubled``): a kept line repeated right below itself
goes with its copy; a line repeated far away, or with a removed line between, stays."""

from __future__ import annotations

import pytest

from prox_spark.lines import NO_CUTS, PageCuts, line_decisions
from prox_spark.lines.doubled import without_doubled_lines

CAPTION = "Japan's Ryosuke Kikuchi hits a home run during the sixth inning of a semifinal in Los Angeles."
OTHER_CAPTION = "United States' Buster Posey is safe at second as Kikuchi throws to first during the third inning."
PARAGRAPH = "Brandon Crawford crossed the plate in the eighth inning to give the United States the go-ahead run."


def test_a_gallery_caption_under_its_list_entry_goes_with_it():
    lines = ["  • " + CAPTION, "", "    " + CAPTION, "  • " + OTHER_CAPTION, "    " + OTHER_CAPTION, "", PARAGRAPH]
    keep = [True] * len(lines)
    assert without_doubled_lines(lines, keep) == [False, True, False, False, False, True, True]


def test_case_and_leading_marks_do_not_hide_a_copy_but_other_words_do():
    lines = ["» " + CAPTION.upper(), CAPTION, CAPTION + " (Photo: AP)"]
    assert without_doubled_lines(lines, [True] * 3) == [False, False, True]


@pytest.mark.parametrize(
    ("lines", "keep"),
    [
        ([PARAGRAPH, OTHER_CAPTION, PARAGRAPH], [True, True, True]),  # repeated, but not next to itself
        ([PARAGRAPH, "Advertisement", PARAGRAPH], [True, False, True]),  # a removed line stands between them
        ([PARAGRAPH, PARAGRAPH, OTHER_CAPTION], [False, True, True]),  # the copy above is already removed
        (["• ", "•", PARAGRAPH], [True, True, True]),  # nothing but marks: no text to repeat
    ],
)
def test_lines_that_are_not_a_kept_pair_next_to_each_other_stay(lines, keep):
    assert without_doubled_lines(lines, keep) == keep


def test_mismatched_input_is_refused():
    with pytest.raises(ValueError, match="decisions"):
        without_doubled_lines(["a", "b"], [True])


def test_the_cut_is_part_of_the_default_page_cuts_and_can_be_turned_off():
    lines = [f"{PARAGRAPH} Part {i} of the report." for i in range(6)] + ["  • " + CAPTION, "    " + CAPTION]
    scores = [0.9] * len(lines)
    assert line_decisions(lines, scores, 0.5, cuts=NO_CUTS) == [True] * 8
    assert line_decisions(lines, scores, 0.5, cuts=PageCuts()) == [True] * 6 + [False, False]
    assert line_decisions(lines, scores, 0.5, cuts=PageCuts(doubled_lines=False)) == [True] * 8
