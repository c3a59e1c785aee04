"""A patient version's files read straight from a store, for `pinnacle.treatment.read_treatment`: a snapshot's tree
(each file an object of the store) or an archive's members (each read by random access through the archive's
index), behind the `PatientFiles` protocol. Nothing is restored or written: every read is verified against the
hash the tree or the index recorded, and a read that fails is an `OSError` naming the file, which the treatment
reader turns into a problem (the rest is still read)."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from rtvault.archive.formats import ArchivedPatient, ArchiveRecord
from rtvault.config import Config
from rtvault.configured import open_store
from rtvault.errors import RtvaultError, StoreError
from rtvault.jobs.archives import find, member_blocks, patient_members
from rtvault.jobs.deliver import Chosen
from rtvault.pinnacle.treatment_source import MAX_BULK_FILE
from rtvault.store import Store
from rtvault.store.objects import read_object


class StoredFiles:
    """A patient's files by relative name, each read through `blocks` (verified content, raising StoreError or
    OSError when the store cannot give it)."""

    def __init__(self, sizes: Mapping[str, int], blocks: Callable[[str], Iterator[bytes]], where: str,
                 missing: Iterable[str] = ()) -> None:
        self.sizes = dict(sizes)
        self.blocks = blocks
        self.where = where  # "snapshot S in store P", for the sentences of a failed read
        self.missing = tuple(missing)  # the version's files the store cannot give, each with why

    def names(self) -> list[str]:
        return sorted(self.sizes)

    def size(self, name: str) -> int | None:
        return self.sizes.get(name)

    def read(self, name: str) -> bytes:
        size = self.sizes.get(name)
        if size is None:
            raise FileNotFoundError(errno.ENOENT, "not a file of this patient version", name)
        if size > MAX_BULK_FILE:
            raise OSError(errno.EFBIG, f"{size} bytes, more than a Pinnacle file holds", name)
        try:
            return b"".join(self.blocks(name))
        except (RtvaultError, OSError) as error:
            raise OSError(errno.EIO, f"{self.where}: {error}", name) from None


@dataclass(frozen=True)
class VersionFiles:
    """The files of the chosen version and where they were read from."""

    files: StoredFiles
    source: str  # "snapshot S in store P" or "archive A in store P"


def snapshot_files(store: Store, path: str, snapshot: str) -> StoredFiles:
    """The patient at `path` as `snapshot` holds it; StoreError when the snapshot, the patient or its tree cannot
    be read."""
    manifest = store.load_snapshot(snapshot)
    entry = manifest.patient(path)
    if entry is None:
        raise StoreError(f"snapshot {manifest.id} of {store.location} holds no patient {path}")
    return tree_files(store, entry.tree, f"snapshot {manifest.id}")


def tree_files(store: Store, tree_hash: str, where: str) -> StoredFiles:
    """A patient tree's files, each an object of the store; the files the backup could not read are `missing`."""
    tree = store.get_tree(tree_hash)
    hashes = {f.name: f.hash for f in tree.files if f.hash}
    unread = [f"{u.name}: not read by the backup" for u in tree.unreadable]
    return StoredFiles({f.name: f.size for f in tree.files if f.hash},
                       lambda name: read_object(store.backend, hashes[name]), where, unread)


def archive_files(store: Store, path: str, archive_id: str | None) -> StoredFiles:
    """The patient at `path` (or named by its key) as archive `archive_id` (the newest holding it when None)
    holds it: its members that can be read (lost or unverified ones are `missing`, each with why)."""
    return member_files(store, *find(store, path, archive_id))


def member_files(store: Store, record: ArchiveRecord, patient: ArchivedPatient) -> StoredFiles:
    """An archived patient's members, each read by random access through the archive's index."""
    members, incomplete = patient_members(record, patient)
    return StoredFiles({name: m.size for name, m in members.items()},
                       lambda name: member_blocks(store, record, members[name])(), f"archive {record.id[:12]}",
                       incomplete)


def version_files(config: Config, chosen: Chosen) -> VersionFiles:
    """The files of a version chosen by `jobs.deliver.choose`, from its snapshot or archive, on its store."""
    location, path = chosen.location, chosen.patient["path"]
    store = open_store(config, location["store"])
    if location["kind"] == "snapshot":
        return VersionFiles(snapshot_files(store, path, location["ref"]), chosen.source)
    return VersionFiles(archive_files(store, path, location["ref"]), chosen.source)
