"""The strict dialect: real call syntax where the reference's hand parsing goes wrong."""

import pytest

from prox_spark.programs import ExecutorConfig, OpStatus, Outcome, Reason, execute, parse
from prox_spark.programs.ops import KeepChunk, Normalize, RemoveAllLines, RemoveLines

LINES = [
    "Home | About | Contact",
    "Welcome (c) 2023 to our site, friends",
    "This long content line talks about gardening soil compost seeds water light and patient careful work",
    "More content here: see http://ex.com/a?b=c for info",
    "Copyright 2023 All rights reserved",
]
D = "\n".join(LINES)


def strict(program: str, text: str = D, config: ExecutorConfig | None = None):
    return execute(text, program, stage="chunk", dialect="strict", config=config)


def only_op(program: str):
    parsed = parse(program, stage="chunk", dialect="strict")
    assert len(parsed.lines) == 1, parsed.lines
    return parsed.lines[0]


def test_paren_inside_string_is_part_of_the_source():
    result = strict('normalize(source_str="(c) 2023", target_str="")')
    assert result.text.split("\n")[1] == "Welcome  to our site, friends"


def test_equals_inside_url_is_part_of_the_source():
    result = strict('normalize(source_str="http://ex.com/a?b=c", target_str="")')
    assert "see  for info" in result.text


def test_single_quotes_work():
    assert strict("normalize(source_str='Welcome ', target_str='')").text.split("\n")[1].startswith("(c) 2023")


def test_spaces_around_equals_work():
    assert only_op('normalize(source_str = "x" , target_str = "y")').op == Normalize("x", "y")


def test_comma_inside_string_is_one_argument():
    result = strict('normalize(source_str="our site, friends", target_str="us")')
    assert result.text.split("\n")[1] == "Welcome (c) 2023 to us"


def test_positional_arguments():
    assert only_op("remove_lines(0, 0)").op == RemoveLines(0, 0)
    assert only_op('normalize("a", "b")').op == Normalize("a", "b")
    assert strict("remove_lines(0, 0)").text == "\n".join(LINES[1:])


def test_keyword_aliases():
    assert only_op("remove_lines(start=1, end=2)").op == RemoveLines(1, 2)
    assert only_op("remove_lines(line_start=1, line_end=2)").op == RemoveLines(1, 2)
    assert only_op('normalize(source="a")').op == Normalize("a", "")


def test_escapes_are_interpreted():
    assert only_op(r'normalize(source_str="tab\there \"q\" \u00e9", target_str="")').op.source == 'tab\there "q" é'


def test_newline_in_a_string_is_an_error_because_line_numbers_would_shift():
    line = only_op(r'normalize(source_str="a\nb", target_str="")')
    assert line.status is OpStatus.PARSE_ERROR
    assert "line breaks" in line.detail


def test_indented_lines_fences_and_comments():
    program = "```python\n  remove_lines(line_start=0, line_end=0)\n# drop nav\n    keep_chunk()\n```"
    result = strict(program)
    assert result.text == "\n".join(LINES[1:])
    assert result.errors == 0
    assert any(isinstance(line.op, KeepChunk) for line in result.ops)


def test_remove_all_lines():
    assert only_op("remove_lines(all=True)").op == RemoveAllLines()


@pytest.mark.parametrize(
    "program, reason_part",
    [
        ("remove_lines(start=1)", "missing end"),
        ("remove_lines(start=3, end=1)", "line_start 3 > line_end 1"),
        ("remove_lines(start=-1, end=1)", "negative"),
        ("remove_lines(start=1.5, end=2)", "not an integer"),
        ("remove_lines(start='1', end=2)", "integer"),
        ('normalize(source_str="a", target_str="b", extra="c")', "at most|unexpected"),
        ('normalize(source_str="a", "b")', "positional argument after keyword"),
        ("normalize(source_str=\"a\"", "not a complete call"),
        ('normalize(source_str="unterminated)', "unterminated|not a complete"),
        ("remove_lines(1, 2) trailing", "unexpected text"),
        ("frobnicate()", "unknown chunk-stage op"),
        ("remove_lines(start=1, start=2)", "twice"),
        ('normalize(source_str=b"x")', "prefix"),
        ('normalize(source_str=f"x")', "prefix"),
        ("remove_lines(all=True, start=1)", "no other arguments"),
        ("keep_chunk(1)", "takes no arguments"),
    ],
)
def test_malformed_ops_are_errors_with_reasons(program, reason_part):
    import re

    line = only_op(program)
    assert line.status is OpStatus.PARSE_ERROR
    assert line.errors == 1
    assert re.search(reason_part, line.detail), line.detail


def test_two_malformed_ops_fall_back_to_the_original():
    result = strict("remove_lines(0, 0)\nfrobnicate()\nnormalize(")
    assert result.errors == 2
    assert result.outcome is Outcome.KEPT_ORIGINAL
    assert result.text == D


def test_out_of_range_is_counted_like_the_reference():
    result = strict("remove_lines(4, 9)")
    assert result.errors == 1
    assert result.text == "\n".join(LINES[:4])
    assert result.ops[0].status is OpStatus.OUT_OF_RANGE


def test_thresholds_come_from_config():
    doc = "\n".join(f"w{i} a b c d e" for i in range(40))
    program = "remove_lines(3, 39)"  # keeps 18 of 240 words = 7.5%
    assert strict(program, doc).kept
    stricter = ExecutorConfig(max_removed_fraction=0.9)  # now drop when ≤ 10% is kept
    result = strict(program, doc, stricter)
    assert result.dropped and result.reason is Reason.KEPT_FRACTION_TOO_LOW


def test_doc_stage_strict_parses_calls():
    def doc(program):
        return execute(D, program, stage="doc", dialect="strict")

    assert doc("drop_doc()").dropped
    assert doc("keep_doc()").kept
    assert doc("garbage dropped").kept  # the reference would drop this
    assert doc("garbage dropped").errors == 1
    assert doc("  drop_doc()  # spam").dropped
