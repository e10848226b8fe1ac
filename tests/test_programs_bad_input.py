"""Bad input gets a defined outcome: no exception, no hang, nothing silently lost."""

import pandas as pd
import pyarrow as pa
import pytest

from prox_spark.programs import BATCH_COLUMNS, OpStatus, Outcome, Reason, execute, execute_batch

GOOD = "\n".join(f"line {i} has a handful of ordinary words in it" for i in range(30))
DIALECTS = ["reference", "strict"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stage", ["doc", "chunk"])
@pytest.mark.parametrize("text", [None, "", "   ", "\n\n\t \u3000"])
def test_missing_or_blank_text_is_dropped_as_empty(dialect, stage, text):
    result = execute(text, "keep_doc()" if stage == "doc" else "keep_chunk()", stage=stage, dialect=dialect)
    assert result.dropped
    assert result.reason is Reason.EMPTY_TEXT
    assert result.text == ""


@pytest.mark.parametrize("stage", ["doc", "chunk"])
def test_non_string_text_is_invalid(stage):
    result = execute(12345, "keep_doc()", stage=stage)
    assert result.dropped and result.reason is Reason.INVALID_TEXT


def test_bytes_text_is_decoded():
    assert execute(GOOD.encode(), "keep_chunk()", stage="chunk").text == GOOD


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("program", [42, 3.5, ["remove_lines(0, 0)"], {"op": 1}, object()])
def test_non_string_program_is_ignored_like_a_broken_one(dialect, program):
    result = execute(GOOD, program, stage="chunk", dialect=dialect)
    assert result.outcome is Outcome.KEPT_ORIGINAL
    assert result.text == GOOD
    assert result.ops[0].status is OpStatus.PARSE_ERROR
    assert "not a string" in result.ops[0].detail


def test_non_string_program_keeps_at_doc_stage():
    assert execute(GOOD, 42, stage="doc").kept


@pytest.mark.parametrize("dialect", DIALECTS)
def test_huge_line_numbers_cost_nothing(dialect):
    result = execute(GOOD, f"remove_lines(line_start=0, line_end={10**15})", stage="chunk", dialect=dialect)
    assert result.dropped  # every line removed → nothing kept
    assert result.errors == 1
    result = execute(GOOD, f"remove_lines(line_start={10**15}, line_end={10**18})", stage="chunk", dialect=dialect)
    assert result.text == GOOD
    assert result.ops[0].status is OpStatus.OUT_OF_RANGE


def test_digit_strings_beyond_python_int_limits_are_parse_errors():
    result = execute(GOOD, f"remove_lines(line_start=0, line_end={'9' * 5000})", stage="chunk")
    assert result.ops[0].status is OpStatus.PARSE_ERROR
    assert result.text == GOOD


@pytest.mark.parametrize("dialect", DIALECTS)
def test_one_megabyte_programs(dialect):
    # Just under executor.max_program_chars (1 MiB): a giant literal is parsed and simply not found.
    one_line = "normalize(source_str=\"" + "x" * ((1 << 20) - 30) + "\")"
    result = execute(GOOD, one_line, stage="chunk", dialect=dialect)
    assert result.outcome is Outcome.KEPT and result.text == GOOD
    assert result.ops[0].status is OpStatus.NOT_FOUND
    # Over it: the program is not parsed at all, one audit line says why, the original text is kept.
    noop_padded = "remove_lines(line_start=0, line_end=0)\n" + "keep_chunk()\n" * ((1 << 20) // 13)
    result = execute(GOOD, noop_padded, stage="chunk", dialect=dialect)
    assert result.outcome is Outcome.KEPT_ORIGINAL
    assert result.text == GOOD
    assert [line.status for line in result.ops] == [OpStatus.TOO_LARGE]
    assert "executor.max_program_chars=1048576" in result.ops[0].detail
    # A runaway normalize loop is past executor.max_ops (1024 lines): ignored whole, not applied in part.
    runaway = "\n".join(['normalize(source_str="ordinary", target_str="plain")'] * 15000)  # 795k characters
    result = execute(GOOD, runaway, stage="chunk", dialect=dialect)
    assert result.outcome is Outcome.KEPT_ORIGINAL
    assert result.text == GOOD
    assert len(result.ops) == 1 and "15000 lines" in result.ops[0].detail


@pytest.mark.parametrize("dialect", DIALECTS)
def test_op_cap_is_on_the_line_count(dialect):
    at_cap = "\n".join(['normalize(source_str="zzz", target_str="")'] * 1023 + ["remove_lines(0, 0)" if dialect == "strict" else "remove_lines(start=0, end=0)"])
    result = execute(GOOD, at_cap, stage="chunk", dialect=dialect)
    assert result.outcome is Outcome.KEPT and result.lines_after == 29
    assert len(result.ops) == 1024
    over = execute(GOOD, at_cap + "\nkeep_chunk()", stage="chunk", dialect=dialect)
    assert over.outcome is Outcome.KEPT_ORIGINAL and over.text == GOOD
    assert over.errors == 2 and over.reason is Reason.TOO_MANY_ERRORS
    assert "more than executor.max_ops=1024" in over.ops[0].detail


@pytest.mark.parametrize("dialect", DIALECTS)
def test_five_megabyte_document(dialect):
    line = "a reasonably long line of body text with several words in it " * 4
    text = "\n".join([line] * (5 * 1024 * 1024 // len(line)))
    program = 'remove_lines(line_start=0, line_end=9)\nnormalize(source_str="several", target_str="many")'
    result = execute(text, program, stage="chunk", dialect=dialect)
    assert result.kept
    assert result.lines_after == result.lines_before - 10
    assert "several" not in result.text


def test_batch_accepts_lists_series_and_arrow_with_nulls():
    texts = [GOOD, None, "  ", GOOD]
    programs = ["remove_lines(line_start=0, line_end=0)", "keep_chunk()", None, 7]
    from_list = execute_batch(texts, programs, stage="chunk")
    from_series = execute_batch(pd.Series(texts), pd.Series(programs, dtype=object), stage="chunk")
    from_arrow = execute_batch(pa.array(texts), pa.array([str(p) if p is not None else None for p in programs]), stage="chunk")
    assert list(from_list.columns) == list(BATCH_COLUMNS)
    assert len(from_list) == 4
    assert from_list["kept"].tolist() == [True, False, False, True]
    assert from_list["reason"].tolist()[1:3] == ["empty_text", "empty_text"]
    assert from_list["outcome"].tolist()[3] == "kept_original"
    pd.testing.assert_frame_equal(from_list, from_series)
    assert from_arrow["text"].tolist()[:3] == from_list["text"].tolist()[:3]


def test_batch_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="one program per document"):
        execute_batch(["a"], [], stage="chunk")


def test_unknown_stage_or_dialect_is_a_clear_error():
    with pytest.raises(ValueError, match="stage is 'doc' or 'chunk'"):
        execute("x", "y", stage="line")
    with pytest.raises(ValueError, match="dialect 'reference' or 'strict'"):
        execute_batch(["x"], ["y"], stage="chunk", dialect="lenient")


def test_empty_batch_has_the_columns():
    assert list(execute_batch([], [], stage="doc").columns) == list(BATCH_COLUMNS)
