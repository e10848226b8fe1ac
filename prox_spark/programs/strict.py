"""Parser for the ``strict`` dialect: real Python call syntax, every malformed op reported with a reason.

Each program line is split into tokens by a small lexer for the few Python token kinds a call needs
(names, numbers, string literals, operators, a trailing comment) and read by a recursive-descent reader
over ``name(arg, key=value, ...)``. Strings may hold ``)``, ``=`` and ``,``; single or double quotes,
escapes and positional arguments all work. Only a single, already-lexed string token is ever decoded
(``ast.literal_eval`` of one literal token, which cannot run code); whole programs are never evaluated.

The lexer is our own rather than the standard library's ``tokenize`` because ``tokenize`` is quadratic
on model output such as ``x="`` followed by thousands of spaces and a stray character (it rescans the
rest of the line at every position after an error): 4k characters took 4 s. Here each character is
consumed by exactly one token, or ends the line's lexing with an error after at most one scan to the end
of the line (an unterminated string), and a line of more than ``_MAX_TOKENS`` tokens is an error: a line
costs linear time and memory.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import NamedTuple, Union

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

# One alternative per token kind, tried in this order at each position. String bodies are "unrolled loops"
# (a run of plain characters, then escape-or-quote + run, repeated): every character belongs to exactly
# one branch, so both a match and a failed match (an unterminated string) are linear in the line.
_STRING = (
    r"(?:[rRuUbBfF]{1,2})?(?:"
    r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    r"|'[^'\\\r]*(?:\\.[^'\\\r]*)*'"
    r'|"[^"\\\r]*(?:\\.[^"\\\r]*)*"'
    r")"
)
_TOKEN = re.compile(
    r"(?P<space>[ \t\f]+)"
    r"|(?P<comment>#.*)"
    rf"|(?P<string>{_STRING})"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<number>\.?[0-9](?:[eE][-+]|[\w.])*)"
    r"|(?P<op>\*\*|//|<<|>>|->|:=|[-+*/%&|^@<>=!]=|[-+*/%&|^@<>=~()\[\]{},:;.])"
    r"|(?P<bad>.)",  # anything else (or an unterminated string's quote) ends the line's lexing with an error
    re.DOTALL,
)
_OPENERS, _CLOSERS = "([{", ")]}"
#: a call with both arguments named and a comment is 9 tokens; a long run of adjacent string literals
#: would otherwise cost one literal decode each
_MAX_TOKENS = 64


class _Token(NamedTuple):
    """One lexed token: ``kind`` is ``name``, ``number``, ``string`` or ``op``."""

    kind: str
    text: str


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
    """One ``ParsedLine`` per non-blank line. A model stuck in a loop repeats one line hundreds of times,
    so each distinct line is parsed once (ops are immutable; each line still gets its own record)."""
    parsed = ParsedProgram()
    seen: dict[str, tuple[Op | None, OpStatus, int, str]] = {}
    for index, raw in enumerate(program.split("\n")):
        line = raw.strip()
        if not line:
            continue
        reading = seen.get(line)
        if reading is None:
            reading = seen[line] = _parse_line(line, to_op)
        op, status, errors, detail = reading
        parsed.lines.append(ParsedLine(index, raw, op, status, errors, detail))
    return parsed


def _parse_line(line: str, to_op) -> tuple[Op | None, OpStatus, int, str]:
    """``(op, status, errors, detail)`` of one stripped, non-blank program line."""
    if line.startswith("#") or line.startswith("```"):
        return None, OpStatus.IGNORED, 0, "comment or code fence"
    try:
        op, status, detail = to_op(parse_call(line))
    except StrictParseError as exc:
        return None, OpStatus.PARSE_ERROR, 1, str(exc)
    return op, status, 0, detail


def parse_call(line: str) -> Call:
    """Read exactly one call ``name(...)`` (an optional trailing ``# comment`` is allowed)."""
    tokens = _tokens(line)
    reader = _Reader(tokens)
    name = reader.expect("name", "a function name")
    reader.expect_op("(")
    args: list[Literal] = []
    kwargs: dict[str, Literal] = {}
    while not reader.at_op(")"):
        if reader.at_keyword():
            key = reader.expect("name", "an argument name")
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


def _tokens(line: str) -> list[_Token]:
    """Lex one program line (no ``\\n`` in it); spaces and a trailing comment are dropped."""
    tokens: list[_Token] = []
    depth = 0
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "space" or kind == "comment":
            continue
        text = match.group()
        if kind == "bad":
            at = match.start()
            if text in "'\"":  # a string prefix would have been lexed as a name before the quote
                raise StrictParseError(f"unterminated string starting at column {at}: {line[at:at + 20]!r}")
            raise StrictParseError(f"stray character {text!r} at column {at}")
        if kind == "op":
            depth += (text in _OPENERS) - (text in _CLOSERS)
        tokens.append(_Token(kind, text))
        if len(tokens) > _MAX_TOKENS:
            raise StrictParseError(f"more than {_MAX_TOKENS} tokens: not a single call")
    if depth > 0:
        raise StrictParseError("not a complete call: unclosed '('")
    return tokens


class _Reader:
    """Cursor over one line's tokens with the few productions the grammar needs."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek_text(self) -> str:
        """The next token, cut to 40 characters: a giant literal must not be copied into every audit row."""
        tok = self._peek()
        return "" if tok is None else tok.text[:40]

    def at_op(self, op: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.kind == "op" and tok.text == op

    def at_keyword(self) -> bool:
        nxt = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        tok = self._peek()
        return (
            tok is not None
            and tok.kind == "name"
            and nxt is not None
            and nxt.kind == "op"
            and nxt.text == "="
        )

    def expect(self, kind: str, what: str) -> str:
        tok = self._peek()
        if tok is None or tok.kind != kind:
            found = "end of line" if tok is None else repr(self.peek_text())
            raise StrictParseError(f"expected {what}, found {found}")
        self.pos += 1
        return tok.text

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
        if tok.kind == "op" and tok.text in ("+", "-") and self.pos + 1 < len(self.tokens):
            self.pos += 1
            value = self._int(self.expect("number", "a number"))
            return -value if tok.text == "-" else value
        if tok.kind == "number":
            self.pos += 1
            return self._int(tok.text)
        if tok.kind == "name" and tok.text in ("True", "False", "None"):
            self.pos += 1
            return {"True": True, "False": False, "None": None}[tok.text]
        if tok.kind == "string":
            parts = []
            while (nxt := self._peek()) is not None and nxt.kind == "string":
                parts.append(_decode_string(nxt.text))
                self.pos += 1
            return "".join(parts)
        raise StrictParseError(f"expected a value, found {self.peek_text()!r}")

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
    quotes = 3 if token[len(prefix) : len(prefix) + 3] in ('"""', "'''") else 1
    body = token[len(prefix) + quotes : len(token) - quotes]
    if "\\" not in body and "\r" not in body:  # nothing to interpret: the lexer already found the quotes
        return body
    try:
        # An unknown escape such as "\d" keeps its backslash, as in Python, whatever the process's warning
        # filters: under -W error the compiler would turn its DeprecationWarning into a SyntaxError.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
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
