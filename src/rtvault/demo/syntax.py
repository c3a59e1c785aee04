"""Writing Pinnacle's text syntax: `Key = value;`, `Name ={ ... };`, `#N` items, `Points[]` arrays.

A file is described as a list of entries `(key, value)`; a value is a string (quoted and escaped), an int, a
float, a `Raw` token written as is (`\\XDR:3\\`), a `Numbers` array or a nested entry list (an object). Bytes
are Latin-1; most files end with the `/* XY */` stamp.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

INDENT = "  "
_STAMP_RE = re.compile(rb"\n/\* (.{0,12}?) \*/\n\Z", re.S)


@dataclass(frozen=True)
class Raw:
    """A bare token written without quotes, such as `\\XDR:3\\` or `1e+30`."""

    text: str


@dataclass(frozen=True)
class Numbers:
    """A numeric array written `Name[] ={ a,b, c,d, ... };`, `per_line` numbers per line."""

    values: Sequence[float]
    per_line: int = 2


Entry = tuple[str, object]
Entries = list[Entry]


def fmt_number(value: float) -> str:
    """A number as Pinnacle prints it: integers bare, other floats with 6 significant digits."""
    if isinstance(value, int):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def quote(text: str) -> str:
    """A double-quoted string with `\\` and `"` escaped; newlines stay literal (strings may span lines)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(value: object) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return fmt_number(value)
    raise TypeError(f"cannot write {type(value).__name__} as a Pinnacle value")


def _numbers(key: str, numbers: Numbers, pad: str) -> list[str]:
    lines = [f"{pad}{key}[] ={{"]
    values = [fmt_number(v) for v in numbers.values]
    step = max(1, numbers.per_line)
    for start in range(0, len(values), step):
        lines.append(f"{pad}{INDENT}" + ",".join(values[start : start + step]) + ",")
    if len(lines) > 1:
        lines[-1] = lines[-1][:-1]
    lines.append(f"{pad}}};")
    return lines


def render(entries: Entries, depth: int = 0) -> list[str]:
    """The lines of an entry list at `depth` levels of indentation."""
    pad = INDENT * depth
    lines: list[str] = []
    for key, value in entries:
        if isinstance(value, list):
            lines.append(f"{pad}{key} ={{")
            lines.extend(render(value, depth + 1))
            lines.append(f"{pad}}};")
        elif isinstance(value, Numbers):
            lines.extend(_numbers(key, value, pad))
        else:
            lines.append(f"{pad}{key} = {_scalar(value)};")
    return lines


def encode(lines: list[str], stamp: bytes | None) -> bytes:
    """Latin-1 bytes of the lines, ending with `\\n/* XY */\\n` when a stamp is given."""
    body = ("\n".join(lines) + "\n").encode("latin-1")
    if stamp is None:
        return body
    return body + b"\n/* " + stamp + b" */\n"


def document(entries: Entries, stamp: bytes | None) -> bytes:
    return encode(render(entries), stamp)


def make_stamp(rng: random.Random) -> bytes:
    """Two arbitrary bytes, like the ones Pinnacle leaves at the end of its files (never NUL or newline)."""
    allowed = [b for b in range(1, 256) if b not in (0x0A, 0x0D)]
    return bytes(rng.choice(allowed) for _ in range(2))


def object_version(write_version: str, login: str, created: str, written: str, modified: str = "") -> Entries:
    """The `ObjectVersion ={...}` body found in nearly every Pinnacle object."""
    return [
        ("WriteVersion", write_version),
        ("CreateVersion", write_version),
        ("LoginName", login),
        ("CreateTimeStamp", created),
        ("WriteTimeStamp", written),
        ("LastModifiedTimeStamp", modified),
    ]


def restamp(data: bytes, stamp: bytes) -> bytes:
    """The same file with its trailing stamp replaced (or added), as Pinnacle does on every save."""
    match = _STAMP_RE.search(data, max(0, len(data) - 32))
    body = data[: match.start()] if match else data.rstrip(b"\n") + b"\n"
    return body + b"\n/* " + stamp + b" */\n"
