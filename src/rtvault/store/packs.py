"""Pack files (store format 2): small objects and trees written many at a time, so that durability and S3
requests cost per batch, not per file (docs/design.md, "The store").

`PackedBackend` wraps a store's backend and keeps its keys: `data/<h0:2>/<h>` and `trees/<t0:2>/<t>` are
still the names every layer reads, lists, verifies, replicates and repairs, but a small one lives as a *blob*
inside a pack file, `packs/<p0:2>/<p>`, found through the index files `index/<i>` (their format:
store/packfile.py). Everything else (manifests, archives, locks, large objects) passes through unchanged.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from rtvault.errors import Problem, StoreError
from rtvault.store.backend import Backend, DirectoryBackend, Staged
from rtvault.store.packfile import (
    BLOB_MAX,
    HIDDEN,
    PACK_TARGET,
    PACKED,
    PackFiles,
    PackWriter,
    Slice,
    SpillStaged,
    Where,
    checked,
    decode_index,
    encode_index,
    index_key,
    pack_key,
    packable,
    read_header,
)
from rtvault.store.readers import read_exact

MAX_INDEXES = 32  # more index files than this are merged into one by the next writer
REPACK = 0.2  # prune rewrites a pack once more than this fraction of it is unreferenced


@dataclass
class _State:
    where: dict[str, Where]
    packs: dict[str, set[str]]  # pack → its live keys
    indexes: set[str]  # the index files in force
    loose: set[str]  # data/ and trees/ keys in files of their own (large objects, a version 1 store's leftovers)
    stale: bool  # an index is damaged or a pack is named by none: the next write merges them all
    index_files: set[str]  # every index file listed when read: a change means another writer wrote


class PackedBackend:
    """A store backend whose small objects and trees live in packs (see the module's docstring)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.location = inner.location
        self.problems: list[Problem] = []  # damaged index files, unreadable pack headers (for `check`)
        self._lock = threading.RLock()
        self._state: _State | None = None
        self._writers: dict[str, PackWriter] = {}
        self._sealed: dict[str, list[tuple[str, int, int]]] = {}  # packs no index names yet
        self._dead: set[str] = set()  # packs blobs were deleted from since the last index
        self._purged: set[str] = set()  # of those, packs rewritten whatever their dead fraction (`purge`)
        self._broken = ""  # why this backend refuses to write (a pack write failed), else empty
        root = getattr(inner, "root", None)
        self._files = PackFiles(root) if isinstance(inner, DirectoryBackend) and root is not None else None

    # --- the index ------------------------------------------------------------------------------------------

    def _loaded(self) -> _State:
        if self._state is None:
            self._state = self._load()
        return self._state

    def _load(self) -> _State:
        self.problems = []
        found: dict[str, dict] = {}
        listed = self._index_files()
        for ident in sorted(listed):
            key = index_key(ident)
            try:
                found[ident] = decode_index(self.inner.get(key), ident)
            except StoreError as error:
                if self.inner.exists(key):  # else removed meanwhile by a writer merging indexes
                    self.problems.append(Problem(key, f"unreadable: {error}"))
            except (ValueError, zstandard.ZstdError) as error:
                self.problems.append(Problem(key, f"damaged: {error} (ignored: the packs' own headers say what "
                                                  "it named; the next backup, prune or repair rewrites the index)"))
        superseded = {ident for data in found.values() for ident in data.get("supersedes", [])}
        present = {key.rsplit("/", 1)[-1] for key in self.inner.list("packs/")}
        loose = {key.removeprefix("./") for prefix in PACKED for key in self.inner.list(prefix)}
        state = _State({}, {}, set(found) - superseded, loose, bool(self.problems), listed)
        for ident in sorted(state.indexes):
            for pack, blobs in found[ident]["packs"].items():
                if pack not in present:
                    self.problems.append(Problem(pack_key(pack), f"missing: index/{ident} names it"))
                    state.stale = True
                    continue
                self._enter(state, pack, blobs)
        for pack in sorted(present - state.packs.keys()):  # a run killed before its index, or a lost index
            state.stale = True
            try:
                self._enter(state, pack, read_header(self.inner, pack))
            except (StoreError, ValueError, KeyError, TypeError) as error:
                self.problems.append(Problem(pack_key(pack), f"damaged: no readable header ({error})"))
        return state

    @staticmethod
    def _enter(state: _State, pack: str, blobs: list) -> None:
        keys = state.packs.setdefault(pack, set())
        for key, offset, length in blobs:
            state.where[key] = Where(pack, offset, length)
            keys.add(key)

    def _find(self, key: str) -> Where | None:
        with self._lock:
            if self._broken:  # the blobs of the abandoned packs are gone: say why, not "missing"
                raise StoreError(self._broken)
            where = self._loaded().where.get(key)
            if where is None and self._idle() and self._index_files() != self._loaded().index_files:
                self._state = None  # another writer changed the index since this one read it
                where = self._loaded().where.get(key)
            return where

    def _idle(self) -> bool:
        """Nothing written or deleted since the index was read: reading it again loses nothing."""
        return not self._writers and not self._sealed and not self._dead

    def _index_files(self) -> set[str]:
        return {key.rsplit("/", 1)[-1] for key in self.inner.list("index/")}

    def index_problems(self) -> list[Problem]:
        """Damaged index files and unreadable pack headers found when the index was read."""
        with self._lock:
            self._loaded()
            return list(self.problems)

    def where_of(self, key: str) -> Where | None:
        """The pack and byte range of a packed blob (None for a loose file or an unknown key)."""
        return self._find(key)

    def _pending(self, key: str) -> bytes | None:
        for writer in self._writers.values():
            if key in writer.blobs:
                return writer.blobs[key][1]
        return None

    # --- writing --------------------------------------------------------------------------------------------

    def add(self, key: str, data: bytes, *, loose_too: bool = False) -> bool:
        """Put a blob in the open pack of its kind; False when the store already holds it (`loose_too`:
        even when it holds it as a file of its own, which a migration then deletes)."""
        checked(key)
        with self._lock:
            if self._broken:
                raise StoreError(self._broken)
            if self._pending(key) is not None or key in self._loaded().where:
                return False
            if not loose_too and key in self._loaded().loose:
                return False
            kind = key.split("/", 1)[0]
            writer = self._writers.get(kind)
            if writer is None:
                writer = self._writers[kind] = PackWriter(self.inner)
            try:
                writer.add(key, data)
                if writer.size >= PACK_TARGET:
                    self._seal(kind)
            except BaseException as error:
                self._abandon(error)
                raise
            return True

    def _abandon(self, error: BaseException) -> None:
        """A write failed (a full disk): the open packs are thrown away, so no staged file keeps the space, and
        this backend writes nothing more (blobs it took are lost: no later index or manifest may name them)."""
        for writer in self._writers.values():
            writer.staged.discard()
        self._writers = {}
        self._broken = f"{self.location}: nothing more is written after a failed pack write ({error})"

    def _seal(self, kind: str) -> None:
        writer = self._writers[kind]
        pack, entries = writer.seal()
        del self._writers[kind]  # only once sealed: a pack failing to seal is still there to abandon
        self._sealed[pack] = entries
        self._enter(self._loaded(), pack, entries)

    def flush(self) -> None:
        """Seal the open packs, make them durable, then write the index that names them (and, after deletions
        or damage, one index of everything, replacing the others)."""
        with self._lock:
            if self._broken:
                raise StoreError(self._broken)
            state = self._loaded()
            doomed = self._repack(state) if self._dead else []
            try:
                for kind in list(self._writers):
                    self._seal(kind)
            except BaseException as error:
                self._abandon(error)
                raise
            if not self._sealed and not self._dead and not state.stale:
                return
            self.inner.barrier()  # the packs are durable before an index names them
            merge = bool(self._dead) or state.stale or len(state.indexes) >= MAX_INDEXES
            if merge:
                packs = {pack: sorted(self._live(state, pack)) for pack in state.packs}
                # every index file, the superseded ones a killed run left too: were only the ones in force
                # replaced, the older ones would come back in force naming packs deleted since
                old = self._index_files()
                ident = self._write_index(packs, sorted(old))
                for stale in old - {ident}:
                    self.inner.delete(index_key(stale))
                for pack in doomed:
                    self.inner.delete(pack_key(pack))
                state.indexes, state.stale, self.problems = {ident}, False, []
                state.index_files = {ident}
            else:
                ident = self._write_index({p: sorted(e) for p, e in self._sealed.items()}, [])
                state.indexes.add(ident)
                state.index_files.add(ident)
            self._sealed, self._dead, self._purged = {}, set(), set()

    @staticmethod
    def _live(state: _State, pack: str) -> list[tuple[str, int, int]]:
        return [(key, *state.where[key][1:]) for key in state.packs[pack]]

    def _write_index(self, packs: dict[str, list], supersedes: list[str]) -> str:
        ident, raw = encode_index(packs, supersedes)
        self.inner.put(index_key(ident), raw, durable=True)
        return ident

    def _repack(self, state: _State) -> list[str]:
        """Packs to delete once the new index is written: those no live blob is left in, and those mostly
        unreferenced, whose live blobs are first copied into new packs."""
        doomed = []
        for pack in sorted(self._dead):
            live = state.packs.get(pack, set())
            if not live:
                doomed.append(pack)
                state.packs.pop(pack, None)
                continue
            size = self.inner.size(pack_key(pack))
            used = sum(state.where[key].length for key in live)
            if size - used > REPACK * size or pack in self._purged:
                blobs = [(key, self.get(key)) for key in sorted(live, key=lambda k: state.where[k].offset)]
                for key, _ in blobs:
                    del state.where[key]
                del state.packs[pack]
                for key, data in blobs:
                    self.add(key, data)
                doomed.append(pack)
        return doomed

    # --- the Backend interface ------------------------------------------------------------------------------

    def stage(self) -> Staged:
        return SpillStaged(self)

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        if packable(key) and len(data) <= BLOB_MAX:
            self.add(key, data)
            return
        if key.startswith(("snapshots/", "archives/")):
            self.flush()  # what a manifest or an archive index names is durable first
        self.inner.put(key, data, durable=durable)

    def barrier(self) -> None:
        self.flush()
        self.inner.barrier()

    def get(self, key: str) -> bytes:
        if not packable(key):
            return self.inner.get(key)  # one request on S3 (open is a HEAD, then ranged GETs)
        with self.open(key) as reader:
            return reader.read()

    def open(self, key: str) -> BinaryIO:
        if packable(key):
            with self._lock:
                pending = self._pending(key)
            if pending is not None:
                return io.BytesIO(pending)
            where = self._find(key)
            if where is not None and self._files is not None and (fd := self._files.fd(where.pack)) is not None:
                return Slice.of_fd(fd, where)  # type: ignore[return-value]
            if where is not None:
                try:
                    raw = self.inner.open(pack_key(where.pack))
                except StoreError:
                    moved = self._moved(key, where)  # repacked by a prune since this process read the index?
                    if moved is None:
                        raise
                    where, raw = moved, self.inner.open(pack_key(moved.pack))
                return Slice.of_file(raw, where)  # type: ignore[return-value]
        return self.inner.open(key)

    def read_range(self, pack: str, start: int, length: int) -> bytes:
        """`length` bytes of a pack from `start` (fewer at its end), in one read: the blobs lying there at once."""
        if self._files is not None and (fd := self._files.fd(pack)) is not None:
            parts = []
            while length > 0 and (part := os.pread(fd, length, start)):
                parts.append(part)
                start, length = start + len(part), length - len(part)
            return b"".join(parts)
        with self.inner.open(pack_key(pack)) as raw:
            raw.seek(start)
            return read_exact(raw, length)

    def _moved(self, key: str, where: Where) -> Where | None:
        """Where `key` is now, when the index read again places it elsewhere (a reader's view is stale)."""
        with self._lock:
            if not self._idle():
                return None
            self._state = None
            now = self._loaded().where.get(key)
        return now if now is not None and now != where else None

    def exists(self, key: str) -> bool:
        """Answered from the index and the listing read with it (no request per key on S3)."""
        if not packable(key):
            return self.inner.exists(key)
        with self._lock:
            if self._pending(key) is not None or key in self._loaded().loose:
                return True
        return self._find(key) is not None

    def committed_loose(self, key: str) -> None:
        with self._lock:
            self._loaded().loose.add(key)

    def size(self, key: str) -> int:
        if packable(key):
            with self._lock:
                pending = self._pending(key)
            if pending is not None:
                return len(pending)
            if (where := self._find(key)) is not None:
                return where.length
        return self.inner.size(key)

    def list(self, prefix: str) -> Iterator[str]:
        """Keys as a version 1 store names them: packed blobs under `data/` and `trees/`, never the packs and
        index files themselves (`list("")`, the whole store, too)."""
        folder = "" if prefix in ("", "./") else prefix.rstrip("/") + "/"  # "data" is data/, never database/
        if not packable(folder) and folder:
            yield from self.inner.list(prefix)
            return
        with self._lock:
            packed = {key for key in self._loaded().where if key.startswith(folder)}
            packed |= {key for w in self._writers.values() for key in w.blobs if key.startswith(folder)}
        yield from sorted(packed, key=lambda k: self._loaded().where.get(k, Where("", 0, 0))[:2])
        for key in self.inner.list(prefix):
            if key.removeprefix("./") not in packed and not key.removeprefix("./").startswith(HIDDEN):
                yield key

    def delete(self, key: str) -> None:
        with self._lock:
            state = self._loaded()
            where = state.where.pop(key, None) if packable(key) else None
            if where is None:
                self.inner.delete(key)
                state.loose.discard(key)
                return
            state.packs[where.pack].discard(key)
            self._dead.add(where.pack)

    def purge(self, keys: list[str]) -> None:
        """Legal destruction: delete `keys` and make their bytes really gone. A blob deleted by `delete` stays in
        its pack until prune finds the pack mostly dead; here every pack holding one is rewritten without it (its
        live blobs copied into new packs, the old pack deleted) by the flush that follows, before this returns."""
        with self._lock:
            state = self._loaded()
            for key in keys:
                where = state.where.get(key) if packable(key) else None
                if where is not None:
                    self._purged.add(where.pack)
                self.delete(key)
        self.flush()
        self.inner.barrier()

    def create_exclusive(self, key: str, data: bytes) -> bool:
        return self.inner.create_exclusive(key, data)

    def replace(self, key: str, data: bytes) -> None:
        self.inner.replace(key, data)

    def modified(self, key: str) -> float:
        if packable(key) and (where := self._find(key)) is not None:
            return self.inner.modified(pack_key(where.pack))
        return self.inner.modified(key)

    def clean_staging(self, older_than_s: float, now: float) -> int:
        return self.inner.clean_staging(older_than_s, now)
