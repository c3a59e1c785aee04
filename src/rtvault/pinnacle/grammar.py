"""Pinnacle's text grammar: `Key = value;`, `Name ={ ... };` objects and lists, `#N` items, `Points[]`
numeric arrays, dotted keys, comments, escaped quotes, multi-line strings and the trailing `/* XY */` stamp.

Files are bytes decoded as Latin-1 (every byte maps to one character, so nothing is ever lost) and are only
read, never written; a file starting with a UTF-8 byte order mark is read without it (as UTF-8 when valid), with
a warning. A malformed or truncated file yields a `Problem` naming the file and line and the tree
parsed up to that point; parsing never raises on bad content.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.errors import Problem

Value = "str | int | float | list[float] | PObject"

MAX_PROBLEMS_PER_FILE = 10
UTF8_BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 100  # real files nest about a dozen levels; deeper is garbage and would exhaust the stack

# The stamp Pinnacle appends to text files: "/* " two (sometimes more) arbitrary bytes " */", then a newline.
_STAMP_RE = re.compile(rb"/\* (.{0,12}?) \*/[\r\n]*\Z", re.S)

_TOKEN_RE = re.compile(
    r"""
    (?P<space>[ \t\r\f\v\x00]+)
  | (?P<newline>\n)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<open_comment>/\*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open_string>")
  | (?P<punct>[={};,])
  | (?P<word>[^ \t\r\n\f\v\x00={};,"]+)
    """,
    re.X | re.S,
)
_ESCAPE_RE = re.compile(r"\\(.)", re.S)
_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


class PObject:
    """An ordered Pinnacle object: keys may repeat (list items, repeated top-level objects)."""

    __slots__ = ("entries", "line")

    def __init__(self, line: int | None = None) -> None:
        self.entries: list[tuple[str, object]] = []
        self.line = line

    def add(self, key: str, value: object) -> None:
        self.entries.append((key, value))

    def set(self, key: str, value: object) -> None:
        """Replace the first value of `key`, or add it at the end."""
        for index, (k, _) in enumerate(self.entries):
            if k == key:
                self.entries[index] = (key, value)
                return
        self.entries.append((key, value))

    def get(self, key: str, default: object = None) -> object:
        for k, v in self.entries:
            if k == key:
                return v
        return default

    def get_all(self, key: str) -> list[object]:
        return [v for k, v in self.entries if k == key]

    def child(self, key: str) -> PObject | None:
        value = self.get(key)
        return value if isinstance(value, PObject) else None

    def items_list(self) -> list[object]:
        """The values of a `*List`/`*Array` object, whether its items are `Name ={}` or `#N ={}`."""
        return [v for _, v in self.entries]

    def keys(self) -> list[str]:
        return [k for k, _ in self.entries]

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_data(self) -> object:
        """Plain JSON-able data: a list for an object of `#N` items, else a dict in which the values of a
        repeated key (`Plan ={}; Plan ={};`) are collected in one list."""
        keys = self.keys()
        if keys and all(k.startswith("#") for k in keys):
            return [_to_data(v) for v in self.items_list()]
        grouped: dict[str, list[object]] = {}
        for k, v in self.entries:
            grouped.setdefault(k, []).append(_to_data(v))
        return {k: values[0] if len(values) == 1 else values for k, values in grouped.items()}

    def __repr__(self) -> str:
        return f"PObject({self.entries!r})"


def _to_data(value: object) -> object:
    return value.to_data() if isinstance(value, PObject) else value


@dataclass
class ParseResult:
    root: PObject
    problems: list[Problem] = field(default_factory=list)
    stamp: bytes | None = None


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int


class _Problems:
    """Collects problems for one file, capped so that a garbage file cannot flood the report."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Problem] = []
        self.dropped = 0

    def add(self, line: int | None, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS_PER_FILE:
            self.items.append(Problem(self.name, message, line))
        else:
            self.dropped += 1

    def result(self) -> list[Problem]:
        if self.dropped:
            return [*self.items, Problem(self.name, f"{self.dropped} more problems not shown")]
        return self.items


def split_stamp(data: bytes) -> tuple[bytes, bytes | None]:
    """Separate the trailing `/* XY */` stamp, whose bytes are arbitrary and may even look like `*/`."""
    start = len(data)
    floor = max(0, len(data) - 32)
    while (start := data.rfind(b"/* ", floor, start)) >= 0:
        if match := _STAMP_RE.match(data, start):
            return data[:start], match.group(1)
    return data, None


def coerce_scalar(text: str) -> str | int | float:
    """A bare token as Pinnacle means it: an integer, a float, or the text itself (`\\XDR:0\\`)."""
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def unquote(text: str) -> str:
    return _ESCAPE_RE.sub(r"\1", text[1:-1])


def _tokenize(text: str, problems: _Problems) -> Iterator[_Token]:
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        assert match is not None  # the word alternative matches any other character
        kind = match.lastgroup or "word"
        token_text = match.group()
        if kind == "open_comment":
            problems.add(line, "unterminated /* comment: the rest of the file is ignored")
            return
        if kind == "open_string":
            problems.add(line, "unterminated string: the rest of the file is ignored")
            return
        if kind not in ("space", "newline", "line_comment", "block_comment"):
            yield _Token(kind, token_text, line)
        line += token_text.count("\n")
        pos = match.end()


class _Parser:
    def __init__(self, tokens: list[_Token], problems: _Problems, last_line: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.problems = problems
        self.last_line = last_line
        self.eof_reported = False

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> _Token | None:
        token = self.peek()
        if token is not None:
            self.pos += 1
        return token

    def is_punct(self, token: _Token | None, char: str) -> bool:
        return token is not None and token.kind == "punct" and token.text == char

    def skip_statement(self) -> None:
        """Resynchronise after an error: skip to the next `;`, or stop before a `}` or the end."""
        while (token := self.peek()) is not None:
            if self.is_punct(token, "}"):
                return
            self.pos += 1
            if self.is_punct(token, ";"):
                return

    def skip_object(self) -> None:
        """Skip the rest of an object whose `{` was just read, without recursion."""
        depth = 1
        while depth and (token := self.next()) is not None:
            if token.kind == "punct" and token.text in "{}":
                depth += 1 if token.text == "{" else -1
        if self.is_punct(self.peek(), ";"):
            self.pos += 1

    def parse_body(self, obj: PObject, opened: list[tuple[str, int]]) -> None:
        while True:
            token = self.peek()
            if token is None:
                if opened and not self.eof_reported:
                    self.eof_reported = True
                    chain = " > ".join(name for name, _ in opened)
                    self.problems.add(
                        self.last_line,
                        f"file ends inside unclosed object(s) {chain} (the last opened at line {opened[-1][1]})",
                    )
                return
            if self.is_punct(token, "}"):
                self.pos += 1
                if opened:
                    if self.is_punct(self.peek(), ";"):
                        self.pos += 1
                    return
                self.problems.add(token.line, "unexpected '}' with no object open")
                continue
            if self.is_punct(token, ";"):
                self.pos += 1
                continue
            if token.kind != "word":
                self.problems.add(token.line, f"expected a key, found {token.text!r}")
                self.pos += 1
                self.skip_statement()
                continue
            self.parse_statement(obj, opened)

    def parse_key(self) -> tuple[str, int]:
        first = self.next()
        assert first is not None
        parts = [first.text]
        while (token := self.peek()) is not None and token.kind == "word" and token.text.startswith("."):
            parts.append(token.text[1:])
            self.pos += 1
        return ".".join(parts), first.line

    def parse_statement(self, obj: PObject, opened: list[tuple[str, int]]) -> None:
        key, line = self.parse_key()
        if not self.is_punct(self.peek(), "="):
            found = self.peek()
            self.problems.add(line, f"expected '=' after {key!r}, found {found.text if found else 'end of file'!r}")
            self.skip_statement()
            return
        self.pos += 1
        if self.is_punct(self.peek(), "{"):
            self.pos += 1
            if key.endswith("[]"):
                _assign(obj, key[:-2], self.parse_numbers(key, line))
                return
            if len(opened) >= MAX_DEPTH:
                self.problems.add(line, f"objects nested deeper than {MAX_DEPTH} levels: {key!r} skipped")
                self.skip_object()
                return
            child = PObject(line)
            _assign(obj, key, child)
            self.parse_body(child, [*opened, (key, line)])
            return
        value = self.parse_value(key, line)
        if value is not None:
            _assign(obj, key, value)

    def parse_value(self, key: str, line: int) -> str | int | float | None:
        parts: list[_Token] = []
        while (token := self.peek()) is not None and not (token.kind == "punct" and token.text in ";}{="):
            parts.append(token)
            self.pos += 1
        if self.peek() is None and parts:
            # A file cut inside a value may have cut the value too (10000 read as 100): never keep it.
            self.problems.add(line, f"file ends inside the value of {key!r}: value not kept")
            return None
        if not self.is_punct(self.peek(), ";"):
            self.problems.add(line, f"missing ';' after the value of {key!r}")
        else:
            self.pos += 1
        if not parts:
            self.problems.add(line, f"{key!r} has no value")
            return None
        if len(parts) == 1:
            only = parts[0]
            return unquote(only.text) if only.kind == "string" else coerce_scalar(only.text)
        return " ".join(unquote(p.text) if p.kind == "string" else p.text for p in parts)

    def parse_numbers(self, key: str, line: int) -> list[float]:
        numbers: list[float] = []
        while (token := self.next()) is not None:
            if self.is_punct(token, "}"):
                if self.is_punct(self.peek(), ";"):
                    self.pos += 1
                return numbers
            if self.is_punct(token, ","):
                continue
            value = coerce_scalar(token.text) if token.kind == "word" else token.text
            if isinstance(value, str):
                self.problems.add(token.line, f"{key!r}: {token.text!r} is not a number")
                self.skip_statement()
                return numbers
            numbers.append(float(value))
        self.problems.add(self.last_line, f"file ends inside the array {key!r} opened at line {line}")
        return numbers


def _assign(obj: PObject, key: str, value: object) -> None:
    """Store a value; a dotted key `A.B.C` goes into (possibly new) nested objects A and B."""
    *path, last = key.split(".")
    target = obj
    for part in path:
        existing = target.child(part)
        if existing is None:
            existing = PObject()
            target.add(part, existing)
        target = existing
    target.add(last, value)


def _text(body: bytes, problems: _Problems) -> str:
    """The bytes as text: Latin-1, except after a UTF-8 byte order mark (a file saved by another editor), which
    is dropped with a warning, the rest read as UTF-8 when it is valid UTF-8. The bytes themselves are untouched."""
    if not body.startswith(UTF8_BOM):
        return body.decode("latin-1")
    try:
        text, how = body[len(UTF8_BOM):].decode("utf-8"), "read as UTF-8"
    except UnicodeDecodeError:
        text, how = body[len(UTF8_BOM):].decode("latin-1"), "not valid UTF-8 after it, read as Latin-1"
    problems.add(1, f"starts with a UTF-8 byte order mark (saved by another editor): mark ignored, {how}")
    return text


def parse_bytes(data: bytes, name: str) -> ParseResult:
    """Parse one Pinnacle text file's bytes; `name` is used in problems (file path relative to a root)."""
    body, stamp = split_stamp(data)
    problems = _Problems(name)
    return _parse(_text(body, problems), problems, stamp)


def parse_text(text: str, name: str) -> ParseResult:
    """Parse text already decoded and without its stamp (a part of a file, cut by a caller that scanned it)."""
    return _parse(text, _Problems(name), None)


def _parse(text: str, problems: _Problems, stamp: bytes | None) -> ParseResult:
    parser = _Parser(list(_tokenize(text, problems)), problems, text.count("\n") + 1)
    root = PObject(1)
    parser.parse_body(root, [])
    return ParseResult(root, problems.result(), stamp)


MAX_TEXT_FILE = 256 << 20  # a Patient file or an image header is kilobytes; this bounds a hostile one


def read_regular(path: Path, limit: int = MAX_TEXT_FILE) -> bytes:
    """The bytes of `path` if it is a regular file, never following a symlink and never blocking on a FIFO
    or device (the backup's listing never follows them either); OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (link, pipe or device): not read")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"{st.st_size} bytes, more than a Pinnacle text file holds: not read")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(limit + 1)[:limit]
    finally:
        os.close(fd)


def parse_file(path: Path, name: str | None = None) -> ParseResult:
    return parse_bytes(read_regular(path), name or str(path))
