"""Property tests: the executor is total, never evaluates code, only removes lines, and the reference
dialect agrees with a plain transcription of the released executor on generated programs."""

import builtins
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.plain_reference import execute_chunk_program, execute_doc_program
from prox_spark.programs import Normalize, OpStatus, Outcome, execute, execute_batch
from prox_spark.programs.executor import GROWTH_FLOOR_CHARS

WORDS = ["alpha", "beta", "gamma", "Home", "About", "(c)", "2023", "a=b", "x,y", "é", "\t", '"q"', "'s'", ")"]

texts = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join), min_size=1, max_size=14
).map("\n".join)
numbers = st.integers(min_value=-3, max_value=16)
sources = st.one_of(st.sampled_from(WORDS + ["", " ", "Home | About"]), st.text(max_size=6))
quotes = st.sampled_from(['"', "'", ""])


@st.composite
def op_lines(draw) -> str:
    q = draw(quotes)
    kind = draw(st.integers(min_value=0, max_value=9))
    start, end = draw(numbers), draw(numbers)
    if kind == 0:
        return f"remove_lines(line_start={start}, line_end={end})"
    if kind == 1:
        return f"remove_lines(start={start}, end={end}"  # truncated generation
    if kind == 2:
        return f"remove_lines({start}, {end})"
    if kind == 3:
        return f"normalize(source_str={q}{draw(sources)}{q}, target_str={q}{draw(sources)}{q})"
    if kind == 4:
        return f"normalize(source_str={q}{draw(sources)}{q})"
    if kind == 5:
        return draw(st.sampled_from(["keep_chunk()", "skip_chunk()", "untouch_doc()", "# note", "```python", "remove_lines(all=True)"]))
    if kind == 6:
        return " " + f"remove_lines(line_start={start}, line_end={end})"
    if kind == 7:
        return f"normalize({q}{draw(sources)}{q}, {q}{draw(sources)}{q})"
    return draw(st.text(max_size=30))


programs = st.lists(op_lines(), max_size=6).map("\n".join)
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@given(texts, programs)
def test_reference_dialect_matches_the_plain_reference(text, program):
    assert execute(text, program, stage="chunk", dialect="reference").text == execute_chunk_program(text, program)


@given(texts, st.text(max_size=40))
def test_reference_doc_stage_matches_the_plain_reference(text, program):
    result = execute(text, program, stage="doc", dialect="reference")
    expected = execute_doc_program(text, program) if text.split() else ""
    assert result.text == expected


def _no_eval(*_args, **_kwargs):
    raise AssertionError("the executor must never evaluate code")


@contextmanager
def eval_forbidden():
    """Make eval/exec raise while the executor runs (hypothesis itself uses exec, so only around the call)."""
    original_eval, original_exec = builtins.eval, builtins.exec
    builtins.eval, builtins.exec = _no_eval, _no_eval
    try:
        yield
    finally:
        builtins.eval, builtins.exec = original_eval, original_exec


@pytest.mark.parametrize("dialect", ["reference", "strict"])
@pytest.mark.parametrize("stage", ["doc", "chunk"])
@given(text=st.one_of(texts, st.text(max_size=200), st.none()), program=st.one_of(programs, st.text(max_size=200), st.none()))
def test_executor_is_total_and_never_evaluates(dialect, stage, text, program):
    with eval_forbidden():
        result = execute(text, program, stage=stage, dialect=dialect)
    assert isinstance(result.text, str)
    assert result.errors >= 0
    if result.dropped:
        assert result.text == ""


def test_code_in_programs_is_never_run(tmp_path):
    canary = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    program = "\n".join(
        [
            payload,
            f"normalize(source_str={payload}, target_str='')",
            f"remove_lines(line_start={payload}, line_end=1)",
            f'normalize("a", "b" if {payload} else "c")',
        ]
    )
    for dialect in ("reference", "strict"):
        for stage in ("doc", "chunk"):
            with eval_forbidden():
                execute("some text\nmore text here", program, stage=stage, dialect=dialect)
    assert not canary.exists()


def _applied_normalizations(result):
    return [line.op for line in result.ops if isinstance(line.op, Normalize) and line.status is OpStatus.APPLIED]


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(item == candidate for candidate in it) for item in small)


@pytest.mark.parametrize("dialect", ["reference", "strict"])
@given(text=texts, program=programs)
def test_output_lines_are_a_subsequence_of_normalized_input_lines(dialect, text, program):
    result = execute(text, program, stage="chunk", dialect=dialect)
    if result.outcome is Outcome.DROPPED:
        assert result.text == ""
        return
    if result.outcome is Outcome.KEPT_ORIGINAL:
        assert result.text == text
        return
    normalized = text
    for op in _applied_normalizations(result):
        normalized = normalized.replace(op.source, op.target)
    assert _is_subsequence(result.text.split("\n"), normalized.split("\n"))
    assert result.lines_after == len(result.text.split("\n"))


# Hostile programs (issue #15): growth chains, giant literals, control characters. The executor must not
# raise, must not let a text grow past its bound, and must return the original, the processed text or "".

CONTROL = st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\r", "\x0b", "\x0c", "\u2028", "\u3000", "\ufeff", "\ud800", "\\", '"', "'", ")", "(", "=", ","])
E_LINE = "the tree here sees every eerie evening\n"


@st.composite
def growth_chains(draw) -> str:
    q = draw(quotes)
    source = draw(st.sampled_from(["e", "a", " ", "\t", "ee", "é", "(c)"]))
    target = source * draw(st.integers(min_value=2, max_value=40))
    return "\n".join([f"normalize(source_str={q}{source}{q}, target_str={q}{target}{q})"] * draw(st.integers(1, 30)))


@st.composite
def giant_literals(draw) -> str:
    literal = draw(st.sampled_from(["x", "e", "a b", ",", "=", ")", "\\", '"'])) * draw(st.integers(1_000, 60_000))
    template = draw(
        st.sampled_from(
            ['normalize(source_str="{}", target_str="")', 'normalize(source_str="e", target_str="{}")', "remove_lines(line_start={}, line_end=1)", 'x="{}', "{}"]
        )
    )
    return template.replace("{}", literal)


@st.composite
def with_control_characters(draw) -> str:
    line = draw(op_lines())
    at = draw(st.integers(min_value=0, max_value=len(line)))
    return line[:at] + "".join(draw(st.lists(CONTROL, min_size=1, max_size=6))) + line[at:]


hostile_programs = st.lists(st.one_of(growth_chains(), giant_literals(), with_control_characters(), op_lines()), max_size=8).map("\n".join)
hostile_texts = st.one_of(texts, st.integers(min_value=1, max_value=3000).map(lambda n: E_LINE * n), st.text(max_size=300))


@pytest.mark.parametrize("dialect", ["reference", "strict"])
@pytest.mark.parametrize("stage", ["doc", "chunk"])
@given(text=hostile_texts, program=hostile_programs)
def test_hostile_programs_never_raise_and_stay_bounded(dialect, stage, text, program):
    with eval_forbidden():
        result = execute(text, program, stage=stage, dialect=dialect)
        row = execute_batch([text], [program], stage=stage, dialect=dialect).iloc[0]
    assert row["text"] == result.text and row["outcome"] == result.outcome.value
    if result.outcome is Outcome.DROPPED:
        assert result.text == ""
    elif result.outcome is Outcome.KEPT_ORIGINAL or stage == "doc":
        assert result.text == text
    else:
        assert len(result.text) <= max(2 * len(text), GROWTH_FLOOR_CHARS)
    too_large = [line for line in result.ops if line.status is OpStatus.TOO_LARGE]
    if too_large:  # a program past a bound is never applied in part
        assert result.outcome is not Outcome.KEPT
        assert all(line.errors >= 2 for line in too_large)
