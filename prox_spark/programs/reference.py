"""Parser for the ``reference`` dialect: the released ProX executor's hand parsing, quirk for quirk.

The released code (``utils/chunk_utils.py``, ``utils/doc_utils.py``) reads each program line with
``startswith``, the first ``(`` and first ``)``, ``split(",")`` and ``split("=")[1]``. Its quirks decide
real outputs (a ``)`` inside a string truncates the argument, a URL's ``=`` truncates the source, a
3-argument normalize is silently ignored), so this module reproduces them instead of fixing them.
Only the *parsing* lives here; applying ops and the decision rules are shared with the strict dialect.
"""

from __future__ import annotations

from prox_spark.programs.ops import (
    NOOP_ALIASES,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    OpStatus,
    ParsedLine,
    ParsedProgram,
    RemoveAllLines,
    RemoveLines,
)


def parse_reference_doc(program: str) -> ParsedProgram:
    """Doc stage: the reference drops when the substring ``drop`` occurs anywhere (no parsing at all)."""
    stripped = program.strip(" ")
    if "drop" in stripped:
        detail = "" if stripped == "drop_doc()" else "substring 'drop' found in program"
        return ParsedProgram([ParsedLine(0, program, DropDoc(), OpStatus.APPLIED, 0, detail)])
    detail = "" if stripped == "keep_doc()" else "no 'drop' in program: kept"
    return ParsedProgram([ParsedLine(0, program, KeepDoc(), OpStatus.APPLIED, 0, detail)])


def parse_reference_chunk(program: str) -> ParsedProgram:
    """Chunk stage: one ``ParsedLine`` per ``\\n``-separated line of ``program.strip(" ")``."""
    parsed = ParsedProgram()
    for index, line in enumerate(program.strip(" ").split("\n")):
        parsed.lines.append(_parse_line(index, line))
    return parsed


def _parse_line(index: int, line: str) -> ParsedLine:
    if line.startswith("remove_lines"):
        if "all=True" in line:
            return ParsedLine(index, line, RemoveAllLines(), OpStatus.APPLIED)
        return _parse_remove_lines(index, line)
    if line.startswith("normalize"):
        return _parse_normalize(index, line)
    return ParsedLine(index, line, _noop_for(line), OpStatus.IGNORED, 0, "not an op the reference executes")


def _noop_for(line: str):
    """Recognise the no-op spellings for the audit; the reference ignores them (and everything else)."""
    name = line.strip().split("(", 1)[0]
    if name in NOOP_ALIASES:
        return KeepChunk(alias=name)
    if name == "keep_doc":
        return KeepDoc()
    return None


def _argument_span(line: str) -> tuple[str | None, int, str]:
    """The reference's ``line[index("(")+1 : index(")")]``.

    Returns ``(args or None, errors, detail)``: no ``(`` is one error and no args; no ``)`` is one
    error and slices to ``-1`` (dropping the last character), and parsing continues.
    """
    try:
        start = line.index("(") + 1
    except ValueError:
        return None, 1, "no '(' in op"
    try:
        end = line.index(")")
        return line[start:end], 0, ""
    except ValueError:
        return line[start:-1], 1, "no ')' in op"


def _value_after_equals(param: str) -> str:
    """``param.split("=")[1]``: the text between the first and second ``=`` (IndexError if none).

    Splitting at most twice gives the same ``[1]`` without a list as long as the ``=`` run in a giant literal.
    """
    return param.split("=", 2)[1]


def _parse_remove_lines(index: int, line: str) -> ParsedLine:
    args, errors, detail = _argument_span(line)
    if args is None:
        return ParsedLine(index, line, None, OpStatus.PARSE_ERROR, errors, detail)
    params = args.split(",", 2)  # only the first two are read: the same values as a full split
    try:
        start = int(_value_after_equals(params[0]))
        end = int(_value_after_equals(params[1]))
    except (IndexError, ValueError) as exc:
        reason = f"cannot read line_start/line_end ({type(exc).__name__})"
        return ParsedLine(index, line, None, OpStatus.PARSE_ERROR, errors + 1, _join(detail, reason))
    return ParsedLine(index, line, RemoveLines(start, end), OpStatus.APPLIED, errors, detail)


def _parse_normalize(index: int, line: str) -> ParsedLine:
    args, errors, detail = _argument_span(line)
    if args is None:
        return ParsedLine(index, line, None, OpStatus.PARSE_ERROR, errors, detail)
    n_params = args.count(",") + 1  # counted, not split: a literal full of commas must not become a list
    if n_params > 2:
        reason = f"{n_params} comma-separated params: the reference silently ignores this op"
        return ParsedLine(index, line, None, OpStatus.IGNORED, errors, _join(detail, reason))
    params = args.split(",")
    try:
        source = _value_after_equals(params[0]).strip('"')
        target = _value_after_equals(params[1]).strip('"') if len(params) == 2 else ""
    except IndexError:
        reason = "cannot read source_str/target_str (no '=')"
        return ParsedLine(index, line, None, OpStatus.PARSE_ERROR, errors + 1, _join(detail, reason))
    # The 2-param form skips blank sources; the 1-param form applies even " " (it deletes every space).
    if len(params) == 2 and source in ("", " "):
        return ParsedLine(index, line, Normalize(source, target), OpStatus.SKIPPED, errors, _join(detail, "blank source"))
    return ParsedLine(index, line, Normalize(source, target), OpStatus.APPLIED, errors, detail)


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
