"""Parser for the ``strict`` dialect: real Python call syntax, every malformed op reported with a reason.

Each program line is tokenized with the standard library's ``tokenize`` (a lexer: it runs nothing) and
read by a small recursive-descent reader over ``name(arg, key=value, ...)``. Strings may hold ``)``,
``=`` and ``,``; single or double quotes, escapes and positional arguments all work. Only a single,
already-lexed string or number token is ever decoded (``ast.literal_eval`` of one literal token, which
cannot run code); whole programs are never evaluated.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from typing import Union

from prox_spark.programs.ops import (
    NOOP_ALIASES,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    Op,
    OpStatus,
    ParsedLine,
    ParsedProgram,
    RemoveAllLines,
    RemoveLines,
)

Literal = Union[int, str, bool, None]

_START_NAMES = ("line_start", "start")
_END_NAMES = ("line_end", "end")
_SOURCE_NAMES = ("source_str", "source")
_TARGET_NAMES = ("target_str", "target")
_STRING_PREFIXES = {"", "r", "u", "R", "U"}
_SKIP_TOKENS = {tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}


class StrictParseError(ValueError):
    """A malformed op; the message is the reason shown in the audit."""


@dataclass(frozen=True)
class Call:
    """One parsed call: function name, positional and keyword literal arguments."""

    name: str
    args: tuple[Literal, ...]
    kwargs: dict[str, Literal]


def parse_strict_doc(program: str) -> ParsedProgram:
    """Doc stage: ``keep_doc()`` / ``drop_doc()`` calls; the document is dropped when a ``drop_doc()`` parses."""
    return _parse_program(program, _doc_op)


def parse_strict_chunk(program: str) -> ParsedProgram:
    """Chunk stage: ``remove_lines``, ``normalize`` and the no-op aliases."""
    return _parse_program(program, _chunk_op)


def _parse_program(program: str, to_op) -> ParsedProgram:
    parsed = ParsedProgram()
    for index, raw in enumerate(program.split("\n")):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#") or line.startswith("```"):
            parsed.lines.append(ParsedLine(index, raw, None, OpStatus.IGNORED, 0, "comment or code fence"))
            continue
        try:
            op, status, detail = to_op(parse_call(line))
        except StrictParseError as exc:
            parsed.lines.append(ParsedLine(index, raw, None, OpStatus.PARSE_ERROR, 1, str(exc)))
            continue
        parsed.lines.append(ParsedLine(index, raw, op, status, 0, detail))
    return parsed


def parse_call(line: str) -> Call:
    """Read exactly one call ``name(...)`` (an optional trailing ``# comment`` is allowed)."""
    tokens = _tokens(line)
    reader = _Reader(tokens)
    name = reader.expect(tokenize.NAME, "a function name")
    reader.expect_op("(")
    args: list[Literal] = []
    kwargs: dict[str, Literal] = {}
    while not reader.at_op(")"):
        if reader.at_keyword():
            key = reader.expect(tokenize.NAME, "an argument name")
            reader.expect_op("=")
            if key in kwargs:
                raise StrictParseError(f"argument {key!r} given twice")
            kwargs[key] = reader.literal()
        else:
            if kwargs:
                raise StrictParseError("positional argument after keyword argument")
            args.append(reader.literal())
        if not reader.at_op(")"):
            reader.expect_op(",")
    reader.expect_op(")")
    if not reader.done():
        raise StrictParseError(f"unexpected text after the call: {reader.peek_text()!r}")
    return Call(name, tuple(args), kwargs)


def _tokens(line: str) -> list[tokenize.TokenInfo]:
    try:
        tokens = [tok for tok in tokenize.generate_tokens(io.StringIO(line).readline) if tok.type not in _SKIP_TOKENS]
    except (tokenize.TokenError, SyntaxError) as exc:
        raise StrictParseError("not a complete call: unclosed '(' or unterminated string") from None
    for tok in tokens:
        if tok.type == tokenize.ERRORTOKEN:
            raise StrictParseError(f"unterminated string or stray character {tok.string!r}")
    return tokens


class _Reader:
    """Cursor over one line's tokens with the few productions the grammar needs."""

    def __init__(self, tokens: list[tokenize.TokenInfo]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> tokenize.TokenInfo | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek_text(self) -> str:
        tok = self._peek()
        return "" if tok is None else tok.string

    def at_op(self, op: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.type == tokenize.OP and tok.string == op

    def at_keyword(self) -> bool:
        nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        tok = self._peek()
        return (
            tok is not None
            and tok.type == tokenize.NAME
            and nxt is not None
            and nxt.type == tokenize.OP
            and nxt.string == "="
        )

    def expect(self, kind: int, what: str) -> str:
        tok = self._peek()
        if tok is None or tok.type != kind:
            found = "end of line" if tok is None else repr(tok.string)
            raise StrictParseError(f"expected {what}, found {found}")
        self.pos += 1
        return tok.string

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            found = "end of line" if self.done() else repr(self.peek_text())
            raise StrictParseError(f"expected {op!r}, found {found}")
        self.pos += 1

    def literal(self) -> Literal:
        """An int (optionally signed), True/False/None, or one or more adjacent string literals."""
        tok = self._peek()
        if tok is None:
            raise StrictParseError("expected a value, found end of line")
        if tok.type == tokenize.OP and tok.string in "+-" and self.pos + 1 < len(self.tokens):
            self.pos += 1
            value = self._int(self.expect(tokenize.NUMBER, "a number"))
            return -value if tok.string == "-" else value
        if tok.type == tokenize.NUMBER:
            self.pos += 1
            return self._int(tok.string)
        if tok.type == tokenize.NAME and tok.string in ("True", "False", "None"):
            self.pos += 1
            return {"True": True, "False": False, "None": None}[tok.string]
        if tok.type == tokenize.STRING:
            parts = []
            while (nxt := self._peek()) is not None and nxt.type == tokenize.STRING:
                parts.append(_decode_string(nxt.string))
                self.pos += 1
            return "".join(parts)
        raise StrictParseError(f"expected a value, found {tok.string!r}")

    @staticmethod
    def _int(text: str) -> int:
        try:
            return int(text, 0)
        except ValueError:
            raise StrictParseError(f"not an integer: {text[:40]!r}") from None


def _decode_string(token: str) -> str:
    """Decode one string token; only plain/raw/unicode prefixes (no bytes, no f-strings)."""
    prefix = token[: len(token) - len(token.lstrip("rRuUbBfF"))]
    if prefix not in _STRING_PREFIXES:
        raise StrictParseError(f"string prefix {prefix!r} is not allowed")
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError) as exc:
        raise StrictParseError(f"bad string literal ({exc})") from None
    if not isinstance(value, str):
        raise StrictParseError("not a string literal")
    return value


def _bind(call: Call, spec: list[tuple[str, tuple[str, ...]]], required: set[str]) -> dict[str, Literal]:
    """Map positional and keyword (with accepted aliases) arguments onto canonical parameter names."""
    if len(call.args) > len(spec):
        raise StrictParseError(f"{call.name}() takes at most {len(spec)} arguments, got {len(call.args)}")
    bound: dict[str, Literal] = {}
    for (canonical, _), value in zip(spec, call.args):
        bound[canonical] = value
    aliases = {alias: canonical for canonical, names in spec for alias in names}
    for key, value in call.kwargs.items():
        canonical = aliases.get(key)
        if canonical is None:
            raise StrictParseError(f"{call.name}() got an unexpected argument {key!r}")
        if canonical in bound:
            raise StrictParseError(f"{call.name}() got {canonical!r} twice")
        bound[canonical] = value
    missing = sorted(required - bound.keys())
    if missing:
        raise StrictParseError(f"{call.name}() is missing {', '.join(missing)}")
    return bound


def _no_args(call: Call) -> None:
    if call.args or call.kwargs:
        raise StrictParseError(f"{call.name}() takes no arguments")


def _doc_op(call: Call) -> tuple[Op, OpStatus, str]:
    if call.name == "drop_doc":
        _no_args(call)
        return DropDoc(), OpStatus.APPLIED, ""
    if call.name == "keep_doc":
        _no_args(call)
        return KeepDoc(), OpStatus.APPLIED, ""
    raise StrictParseError(f"unknown doc-stage op {call.name!r} (expected keep_doc() or drop_doc())")


def _chunk_op(call: Call) -> tuple[Op, OpStatus, str]:
    if call.name == "remove_lines":
        return _remove_lines(call)
    if call.name == "normalize":
        return _normalize(call)
    if call.name in NOOP_ALIASES:
        _no_args(call)
        return KeepChunk(alias=call.name), OpStatus.IGNORED, "no-op"
    if call.name == "keep_doc":
        _no_args(call)
        return KeepDoc(), OpStatus.IGNORED, "no-op"
    raise StrictParseError(f"unknown chunk-stage op {call.name!r}")


def _remove_lines(call: Call) -> tuple[Op, OpStatus, str]:
    if "all" in call.kwargs:
        if call.args or len(call.kwargs) != 1 or call.kwargs["all"] is not True:
            raise StrictParseError("remove_lines(all=True) takes no other arguments")
        return RemoveAllLines(), OpStatus.APPLIED, ""
    bound = _bind(call, [("start", _START_NAMES), ("end", _END_NAMES)], {"start", "end"})
    start, end = bound["start"], bound["end"]
    if not (_is_int(start) and _is_int(end)):
        raise StrictParseError("remove_lines() needs integer line numbers")
    if start < 0 or end < 0:
        raise StrictParseError(f"negative line number in remove_lines({start}, {end})")
    if start > end:
        raise StrictParseError(f"line_start {start} > line_end {end}")
    return RemoveLines(start, end), OpStatus.APPLIED, ""


def _normalize(call: Call) -> tuple[Op, OpStatus, str]:
    bound = _bind(call, [("source", _SOURCE_NAMES), ("target", _TARGET_NAMES)], {"source"})
    source, target = bound["source"], bound.get("target", "")
    if not isinstance(source, str) or not isinstance(target, str):
        raise StrictParseError("normalize() needs string arguments")
    if any(ch in source + target for ch in "\n\r"):
        raise StrictParseError("normalize() strings may not contain line breaks (line numbers would shift)")
    if source in ("", " "):
        return Normalize(source, target), OpStatus.SKIPPED, "blank source: nothing to replace"
    return Normalize(source, target), OpStatus.APPLIED, ""


def _is_int(value: Literal) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
