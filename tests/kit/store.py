"""How tests damage and measure a store on disk, whatever its format: the one place that knows where a key's
bytes lie (docs/design.md, "The store").

A key is a store's logical name (`data/<h0:2>/<h>`, `trees/<t0:2>/<t>`, `snapshots/<id>.json`, ...). In a
version 1 store, and for a large object or any other file in a version 2 store, it is a file of its own; a
small object or tree of a version 2 store is a slice of a pack file, `packs/<p0:2>/<p>`, found through the
index files `index/<i>` (or, for a pack no index names yet, its own header). This module reads those formats
as written in store/packs.py's docstring, independently of the code that writes them.

    where(store, key)      -> Place(path, offset, length): the file and byte range holding the key
    flip(store, key, rng)  -> Place: bit rot inside that range (its middle byte, or 3 random bits)
    lose(store, key)       -> None: the key gone, as the store deletes one (its file unlinked; a packed
                              blob dropped from the index, as a prune would)
    substitute(store, key, raw) -> None: the key's bytes replaced by other, well-formed ones
    locate(base, key)      -> (file key, offset, length), on any backend's files as they lie (S3 too)
    read(store, key)       -> bytes: the bytes stored for the key, read where they lie
    keys(store, prefix)    -> list[str]: the logical keys under a prefix, as the store lists them
    stored_files(store)    -> list[Path]: every file that holds objects or trees (data/, trees/, packs/,
                              index/)
    stored_bytes(store)    -> int: their bytes on disk
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import NamedTuple

import zstandard

from rtvault.store import Store
from rtvault.store.backend import Backend, DirectoryBackend
from rtvault.store.packfile import pack_key, parse_header
from rtvault.store.packs import PackedBackend

CONTENT = ("data", "trees", "packs", "index")  # the folders holding objects and trees, in any version


class Place(NamedTuple):
    path: Path
    offset: int
    length: int


def _index(base: Backend) -> dict[str, dict[str, list]]:
    """Index files in force (not superseded by another): id → {pack: [[key, offset, length], ...]}."""
    found = {}
    for key in base.list("index/"):
        raw = base.get(key)
        if hashlib.sha256(raw).hexdigest() == key.rsplit("/", 1)[-1]:
            found[key.rsplit("/", 1)[-1]] = json.loads(
                zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 31))
    superseded = {ident for data in found.values() for ident in data.get("supersedes", [])}
    return {ident: data["packs"] for ident, data in found.items() if ident not in superseded}


def blobs(base: Backend) -> dict[str, tuple[str, int, int]]:
    """Every packed key of a version 2 store on `base` (its files as they lie: a directory, an S3 bucket) and
    where its bytes lie, (pack key, offset, length): as the index says, and for a pack no index names (a run
    killed before writing its index), as the pack's own header says."""
    places: dict[str, tuple[str, int, int]] = {}
    named: set[str] = set()
    for packs in _index(base).values():
        for pack, entries in packs.items():
            named.add(pack)
            places.update((key, (pack_key(pack), offset, length)) for key, offset, length in entries)
    for key in sorted(base.list("packs/")):
        pack = key.rsplit("/", 1)[-1]
        if pack not in named:
            for blob, offset, length in parse_header(base.get(key), pack):
                places.setdefault(blob, (key, offset, length))
    return places


def locate(base: Backend, key: str) -> tuple[str, int, int]:
    """(file key, offset, length) of `key`'s bytes on `base`; KeyError when the store does not hold it."""
    if base.exists(key):
        return key, 0, base.size(key)
    if key in (places := blobs(base)):
        return places[key]
    raise KeyError(f"{base.location} holds no {key}")


def where(store: Path, key: str) -> Place:
    """The file and byte range holding `key` in the store directory `store`; KeyError when it holds none."""
    file, offset, length = locate(DirectoryBackend(store), key)
    return Place(store / file, offset, length)


def flip(store: Path, key: str, rng: random.Random | None = None) -> Place:
    """Bit rot in `key`'s bytes only, in place (nothing else in the file moves): the middle byte inverted, or
    with `rng`, three random bits of the range."""
    place = where(store, key)
    flips = [(place.length // 2, 0xFF)] if rng is None else \
        [(rng.randrange(place.length), 1 << rng.randrange(8)) for _ in range(3)]
    with open(place.path, "r+b") as file:
        for at, mask in flips:
            file.seek(place.offset + at)
            byte = file.read(1)
            file.seek(-1, 1)
            file.write(bytes([byte[0] ^ mask]))
    return place


def zero_half(store: Path, key: str) -> Place:
    """The second half of `key`'s bytes zeroed in place (damage no decoder can miss, where one flipped bit may
    fall in bytes zstd does not need)."""
    place = where(store, key)
    with open(place.path, "r+b") as file:
        file.seek(place.offset + place.length // 2)
        file.write(bytes(place.length - place.length // 2))
    return place


def lose(store: Path, key: str) -> None:
    """`key` gone, the rest of the store intact, as the store itself deletes a key: its own file unlinked, or
    a packed blob dropped from the index (its pack rewritten without it when mostly unreferenced)."""
    where(store, key)  # it is there to lose
    opened = Store.open(store)
    opened.backend.delete(key)
    opened.backend.barrier()


def substitute(store: Path, key: str, raw: bytes) -> None:
    """`key`'s stored bytes replaced by `raw` (well-formed but wrong: what only a hash check catches): its own
    file rewritten, or the blob dropped and `raw` packed under its name."""
    place = where(store, key)
    if place.path == store / key:
        place.path.chmod(0o644)
        place.path.write_bytes(raw)
        return
    backend = Store.open(store).backend
    assert isinstance(backend, PackedBackend)
    backend.delete(key)
    backend.flush()
    backend.add(key, raw)
    backend.flush()


def keys(store: Path, prefix: str) -> list[str]:
    """The logical keys under `prefix`, as the store itself lists them."""
    return sorted(Store.open(store).backend.list(prefix))


def stored_files(store: Path) -> list[Path]:
    """Every file holding objects, trees, packs or indexes."""
    return sorted(p for folder in CONTENT for p in (store / folder).rglob("*") if p.is_file())


def stored_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in stored_files(store))


def read(store: Path, key: str) -> bytes:
    """The bytes stored for `key`, read from where they lie (what a by-hand restore reads)."""
    place = where(store, key)
    with open(place.path, "rb") as file:
        file.seek(place.offset)
        return file.read(place.length)
