"""The reference dialect against every test vector of prox-reference.md §1.5 and the §1.4 quirks."""

import pytest

from prox_spark.programs import OpStatus, Outcome, Reason, execute

LINES = [
    "Home | About | Contact",
    "Welcome (c) 2023 to our site, friends",
    "This long content line talks about gardening soil compost seeds water light and patient careful work",
    "More content here: see http://ex.com/a?b=c for info",
    "Copyright 2023 All rights reserved",
]
D = "\n".join(LINES)


def lines(*idx: int) -> str:
    return "\n".join(LINES[i] for i in idx)


def run(program: str, text: str = D):
    return execute(text, program, stage="chunk", dialect="reference")


def test_long_line_has_16_words():
    assert len(LINES[2].split()) == 16


@pytest.mark.parametrize(
    "program, errors, expected",
    [
        ("remove_lines(line_start=0, line_end=0)", 0, lines(1, 2, 3, 4)),
        ("remove_lines(0, 0)", 1, D),
        ("remove_lines(start=4, end=9)", 1, lines(0, 1, 2, 3)),
        ("remove_lines(start=7, end=9)", 1, D),
        ("normalize(source_str=\"nonexistent\", target_str=\"\")", 0, D),
        (
            "keep_doc()\nremove_lines(line_start=0, line_end=0)\nkeep_chunk()\nskip_chunk()\n# comment",
            0,
            lines(1, 2, 3, 4),
        ),
    ],
)
def test_section_1_5_vectors(program, errors, expected):
    result = run(program)
    assert result.errors == errors
    assert result.text == expected
    assert result.kept


def test_two_errors_fall_back_to_original_text():
    result = run("remove_lines(start=7, end=9)\nremove_lines(start=8, end")
    assert result.errors == 3
    assert result.text == D
    assert result.outcome is Outcome.KEPT_ORIGINAL
    assert result.reason is Reason.TOO_MANY_ERRORS


def test_one_param_normalize_removes_source():
    result = run('normalize(source_str="Welcome")')
    assert result.errors == 0
    assert result.text.split("\n")[1] == " (c) 2023 to our site, friends"


def test_remove_all_lines_drops_document():
    result = run("remove_lines(all=True)")
    assert result.text == ""
    assert result.dropped
    assert result.reason is Reason.KEPT_FRACTION_TOO_LOW


# §1.4 parsing quirks


def test_paren_inside_string_truncates_source():
    result = run('normalize(source_str="(c) 2023", target_str="")')
    assert "Welcome ) 2023 to our site" in result.text
    assert result.errors == 0


def test_equals_inside_url_truncates_source():
    result = run('normalize(source_str="http://ex.com/a?b=c", target_str="")')
    assert "see =c for info" in result.text


def test_single_quotes_are_kept_so_nothing_matches():
    result = run("normalize(source_str='Welcome', target_str='')")
    assert result.text == D
    assert result.ops[0].status is OpStatus.NOT_FOUND
    assert result.errors == 0


def test_spaces_around_equals_give_unmatched_source():
    result = run('normalize(source_str = "Welcome", target_str = "")')
    assert result.text == D
    assert result.errors == 0


def test_comma_inside_string_is_silently_ignored():
    result = run('normalize(source_str="our site, friends", target_str="")')
    assert result.text == D
    assert result.errors == 0
    assert result.ops[0].status is OpStatus.IGNORED


def test_escapes_are_matched_literally():
    text = D + "\nliteral \\n here"
    result = run('normalize(source_str="\\n", target_str="")', text)
    assert result.text.endswith("literal  here")


def test_indented_lines_after_the_first_are_ignored():
    result = run("remove_lines(line_start=0, line_end=0)\n  remove_lines(line_start=4, line_end=4)")
    assert result.text == lines(1, 2, 3, 4)


def test_removals_apply_after_all_normalizations():
    program = 'remove_lines(line_start=1, line_end=1)\nnormalize(source_str="Home", target_str="Start")'
    assert run(program).text == "Start | About | Contact\n" + lines(2, 3, 4)


def test_normalizations_chain_in_program_order():
    program = 'normalize(source_str="Home", target_str="Casa")\nnormalize(source_str="Casa", target_str="Haus")'
    assert run(program).text.startswith("Haus | About")


def test_two_param_blank_source_is_skipped_but_one_param_space_removes_spaces():
    assert run('normalize(source_str=" ", target_str="x")').text == D
    squashed = run('normalize(source_str=" ")').text
    assert " " not in squashed


def test_negative_and_reversed_ranges_are_no_error_no_op():
    assert run("remove_lines(start=-3, end=-1)").text == D
    assert run("remove_lines(start=3, end=1)").errors == 0
    assert run("remove_lines(start=3, end=1)").text == D


def test_negative_start_with_positive_end_removes_from_the_top():
    assert run("remove_lines(start=-2, end=0)").text == lines(1, 2, 3, 4)


def test_touching_out_of_range_intervals_count_once():
    result = run("remove_lines(start=4, end=6)\nremove_lines(start=7, end=9)")
    assert result.errors == 1
    assert result.text == lines(0, 1, 2, 3)


def test_missing_close_paren_costs_an_error_but_may_still_parse():
    # ")" missing: the slice drops the last character, "end=1x" -> "end=1" parses, one error.
    result = run("remove_lines(start=0, end=1x")
    assert result.errors == 1
    assert result.text == lines(2, 3, 4)


# §1.5 ratio and length rules on a 40-line doc with 6 words per line

DOC40 = "\n".join(f"alpha{i} beta gamma delta epsilon zeta" for i in range(40))


def keep_only(n: int) -> str:
    return f"remove_lines(line_start={n}, line_end=39)"


def test_keep_one_line_drops_by_word_floor():
    result = run(keep_only(1), DOC40)
    assert result.text == ""
    assert result.dropped
    # 6 of 240 words: the 5% rule fires first; with 2 errors only the ≤10-words rule would.
    with_errors = run(keep_only(1) + "\nremove_lines(1, 2)\nnormalize(nothing)", DOC40)
    assert with_errors.errors == 2
    assert with_errors.reason is Reason.TOO_FEW_WORDS


def test_keep_two_lines_drops_at_five_percent():
    result = run(keep_only(2), DOC40)
    assert result.text == ""
    assert result.reason is Reason.KEPT_FRACTION_TOO_LOW


def test_keep_three_lines_is_kept():
    result = run(keep_only(3), DOC40)
    assert result.text == "\n".join(DOC40.split("\n")[:3])
    assert result.words_after == 18


def test_five_percent_program_with_two_bad_ops_keeps_original():
    result = run(keep_only(2) + "\nremove_lines(1, 2)\nnormalize(nothing)", DOC40)
    assert result.errors == 2
    assert result.text == DOC40


def test_short_doc_is_dropped_even_with_a_noop_program():
    result = run("keep_chunk()", "hello world short doc")
    assert result.text == ""
    assert result.reason is Reason.TOO_FEW_WORDS


# doc stage


@pytest.mark.parametrize(
    "program, dropped",
    [("keep_doc()", False), ("drop_doc()", True), ("", False), ("garbage dropped", True), ("KEEP", False)],
)
def test_doc_stage_drops_on_substring(program, dropped):
    result = execute(D, program, stage="doc", dialect="reference")
    assert result.dropped is dropped
    assert result.text == ("" if dropped else D)
