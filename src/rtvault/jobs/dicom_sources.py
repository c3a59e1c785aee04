"""A stored patient version as the treatment reader's `PatientFiles`, read in place (no restore): a snapshot's
tree through the store's objects (as a restore reads them, verified against their hash), or an archive's members
through its index (`archives.member_blocks`). Each also gives what names the version (the tree hash or the
archive id) and its date: the newest file's modification time, which the version's hash covers, so the same
version always carries the same date."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.errors import StoreError
from rtvault.jobs import history
from rtvault.jobs.archives import find, member_blocks, patient_members
from rtvault.pinnacle.treatment_source import MAX_BULK_FILE
from rtvault.store import Store
from rtvault.store.objects import read_object

Blocks = Callable[[], Iterator[bytes]]


class StoredFiles:
    """`PatientFiles` over named files whose content is read, block by block, by a callable; a store's error
    while reading is an OSError, as a file that cannot be read is for the reader."""

    def __init__(self, files: Mapping[str, tuple[int, Blocks]]) -> None:
        self._files = dict(files)

    def names(self) -> list[str]:
        return sorted(self._files)

    def size(self, name: str) -> int | None:
        found = self._files.get(name)
        return None if found is None else found[0]

    def read(self, name: str) -> bytes:
        found = self._files.get(name)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "not a file of this patient version", name)
        if found[0] > MAX_BULK_FILE:
            raise OSError(errno.EFBIG, f"larger than {MAX_BULK_FILE} bytes", name)
        try:
            return b"".join(found[1]())
        except StoreError as error:
            raise OSError(errno.EIO, str(error), name) from None


@dataclass(frozen=True)
class StoredVersion:
    """One patient version to export: its files, its path, what names it (`kind`, `id`: the tree hash or the
    archive id), and its date (ISO 8601 UTC, None when it has no file)."""

    files: StoredFiles
    path: str
    kind: str  # "snapshot" or "archive"
    id: str  # the snapshot id or the archive id, as a person names it
    version: str  # what the UIDs derive from: the tree hash or the archive id
    date: str | None
    incomplete: tuple[str, ...] = ()  # the archive's members that cannot be read (lost, unverified, absent)


def snapshot_version(store: Store, key: str, snapshot: str | None) -> StoredVersion:
    """The patient KEY names as a snapshot (the latest holding it, or `snapshot`) saw it."""
    manifests, damaged = store.manifests_and_damage()
    found = history.versions(store, key, manifests, history.snapshot_source(manifests, snapshot))
    version = history.pick_version(found, snapshot, None)
    if not snapshot:
        store.refuse_newer_damage(version.snapshot, damaged)
    tree = store.get_tree(version.tree)
    files = {f.name: (f.size, _object_blocks(store, f.hash)) for f in tree.files}
    return StoredVersion(StoredFiles(files), version.path, "snapshot", version.snapshot, version.tree,
                         _newest(f.mtime_ns for f in tree.files))


def archive_version(store: Store, key: str, archive_id: str | None) -> StoredVersion:
    """The patient KEY names as an archive (the newest holding it, or `archive_id`) holds it."""
    record, patient = find(store, key, archive_id)
    members, incomplete = patient_members(record, patient)
    files = {name: (m.size, member_blocks(store, record, m)) for name, m in members.items()}
    return StoredVersion(StoredFiles(files), patient.path, "archive", record.id, record.id,
                         _newest(m.mtime * 10**9 for m in members.values()), tuple(incomplete))


def _object_blocks(store: Store, digest: str) -> Blocks:
    return lambda: read_object(store.backend, digest)


def _newest(mtimes_ns: Iterator[int] | object) -> str | None:
    newest = max(mtimes_ns, default=None)  # type: ignore[call-overload]
    if newest is None:
        return None
    return datetime.fromtimestamp(newest / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
