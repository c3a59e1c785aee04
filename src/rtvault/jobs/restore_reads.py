"""What a restore reads from the store: each planned file's verified content, an object named by several files
decoded once.

A Pinnacle database holds the same content many times (the 700 KB `plan.Pinnacle.Machines` of every plan:
4,000 files of one object in 2,000 patients). `Reused` counts, while the restore is planned, how many files
name each object; the first to read one that others still want keeps its verified bytes, and the others write
those instead of reading, decompressing and hashing it again. Files naming one object are read one after the
other (`pool.read_order`: by pack and offset), so what is kept is soon dropped; memory holds at most `LIMIT`
bytes, each object at most `LARGEST`. Bytes are kept only once the whole object was read and matched its name:
a damaged or missing object is never kept, so every file naming it reads it again and fails, each named.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

from rtvault.store.backend import Backend
from rtvault.store.formats import FileEntry
from rtvault.store.objects import read_object

LARGEST = 4 << 20  # content larger than this is streamed, never kept
LIMIT = 64 << 20  # the bytes kept at once, all objects together


class Reused:
    """For `restore.plan`: a factory of each file's verified content blocks, read from `backend` (as
    `objects.contents`), an object wanted by several files read once (see the module's docstring)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.wanted: Counter[str] = Counter()  # planned files yet to be written, per object
        self.kept: dict[str, list[bytes]] = {}  # verified content of objects others still want
        self.size = 0
        self.lock = threading.Lock()

    def __call__(self, entry: FileEntry) -> Callable[[], Iterator[bytes]]:
        self.wanted[entry.hash] += 1
        return lambda: self.blocks(entry)

    def blocks(self, entry: FileEntry) -> Iterator[bytes]:
        """The content of one planned file (called once per file, from any thread)."""
        digest = entry.hash
        with self.lock:
            self.wanted[digest] -= 1
            later = self.wanted[digest] > 0
            kept = self.kept.get(digest) if later else self._drop(digest)
        if kept is not None:
            yield from kept
            return
        if not later or entry.size > LARGEST:
            yield from read_object(self.backend, digest)
            return
        read: list[bytes] | None = []
        total = 0
        for block in read_object(self.backend, digest):
            total += len(block)
            if read is not None and total > LARGEST:  # the tree's size was wrong: keep nothing
                read = None
            elif read is not None:
                read.append(block)
            yield block
        if read is not None:  # read_object ended without error: the content matches its name
            self._keep(digest, read, total)

    def _drop(self, digest: str) -> list[bytes] | None:
        kept = self.kept.pop(digest, None)
        self.size -= sum(len(block) for block in kept or ())
        return kept

    def _keep(self, digest: str, blocks: list[bytes], size: int) -> None:
        with self.lock:
            if self.wanted[digest] > 0 and digest not in self.kept and self.size + size <= LIMIT:
                self.kept[digest] = blocks
                self.size += size
