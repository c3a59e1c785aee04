"""Integrity hashes of the JSON documents a store writes once and names by id, not by content: snapshot
manifests (and archive indexes and summaries); and `sha256_copy`, the one way a file is hashed while it is
read or copied (an archive file against its id, a copy on a removable disk).

Content objects and trees are named by their hash, so any change to them is seen. A manifest is named by its
snapshot id: a change that keeps it valid JSON (a patient's name, a tree hash, a patient dropped) would pass
unseen, and no other store's copy could be told good from bad. So such a document carries its own hash, in
the field `integrity`: `"sha256:<hex>"`, the SHA-256 of its canonical JSON without that field (keys sorted,
no spaces, ASCII only: `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`). The
canonical form, not the file's bytes, is hashed: the file stays indented for people, and re-indenting it
changes nothing. A document written before this rule has no `integrity` field: it is accepted, and `check`
says it cannot be verified.
"""

from __future__ import annotations

import hashlib
import json
from typing import BinaryIO

FIELD = "integrity"
BLOCK = 1 << 20  # bytes read at a time by sha256_copy
ALGORITHM = "sha256:"


def canonical(document: dict) -> bytes:
    """The bytes hashed: the document without its integrity field, as canonical JSON."""
    body = {key: value for key, value in document.items() if key != FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def digest(document: dict) -> str:
    return ALGORITHM + hashlib.sha256(canonical(document)).hexdigest()


def seal(document: dict) -> dict:
    """The document with its integrity hash (any previous one replaced)."""
    body = {key: value for key, value in document.items() if key != FIELD}
    return {**body, FIELD: digest(body)}


def sealed(document: dict) -> bool:
    """True when the document carries a matching integrity hash, False when it carries none (written before
    integrity hashes); raises ValueError when its content no longer matches the hash it carries."""
    recorded = document.get(FIELD)
    if recorded is None:
        return False
    if recorded != digest(document):
        raise ValueError("its content does not match its integrity hash (it was changed after it was written)")
    return True


def parse(data: bytes) -> dict:
    """A stored JSON document, checked against its integrity hash (ValueError when it is not a JSON object or
    does not match)."""
    try:
        document = json.loads(data)
    except RecursionError:  # arrays or objects nested deeper than the parser goes: no document of rtvault's
        raise ValueError("not a JSON document rtvault wrote (nested too deep)") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    sealed(document)
    return document


def sha256_copy(source: BinaryIO, sink: BinaryIO | None = None) -> tuple[str, int]:
    """Read `source` to its end, writing every block to `sink` when one is given: (SHA-256 hex, bytes read)."""
    hasher, size = hashlib.sha256(), 0
    while block := source.read(BLOCK):
        hasher.update(block)
        if sink is not None:
            sink.write(block)
        size += len(block)
    return hasher.hexdigest(), size
