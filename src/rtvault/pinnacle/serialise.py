"""Writing Pinnacle text: used only for files rtvault creates itself (the filtered `Institution` file at the
head of an archive), never to rewrite a file of the database."""

from __future__ import annotations

import hashlib

from rtvault.pinnacle.grammar import PObject


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if text.startswith("\\") and text.endswith("\\") and len(text) > 1:  # \XDR:0\ stays bare
        return text
    return _quote(text)


def _lines(obj: PObject, indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    for key, value in obj.entries:
        if isinstance(value, PObject):
            out.append(f"{pad}{key} ={{")
            out.extend(_lines(value, indent + 1))
            out.append(f"{pad}}};")
        elif isinstance(value, list):
            out.append(f"{pad}{key}[] ={{")
            out.extend(f"{pad}  {float(number)!r}," for number in value)
            out.append(f"{pad}}};")
        else:
            out.append(f"{pad}{key} = {_scalar(value)};")
    return out


def dump(obj: PObject, stamp: bytes | None = None) -> bytes:
    """Latin-1 Pinnacle text with the trailing `/* XY */` stamp (derived from the text unless given, so that
    the same object always gives the same bytes)."""
    body = ("\n".join(_lines(obj, 0)) + "\n\n").encode("latin-1", errors="replace")
    if stamp is None:
        stamp = bytes(33 + b % 94 for b in hashlib.sha256(body).digest()[:2])
    return body + b"/* " + stamp + b" */\n"
