"""A stored patient version to export, named by a patient key as the command line names one: its files as the
treatment reader's `PatientFiles` read in place (no restore; jobs/treatment_files.py `StoredFiles`, shared with
the patient viewer), from a snapshot's tree or an archive's members. Each also gives what names the version
(the tree hash or the archive id) and its date: the newest file's modification time, which the version's hash
covers, so the same version always carries the same date."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.jobs import history
from rtvault.jobs.archives import find, patient_members
from rtvault.jobs.treatment_files import StoredFiles, member_files, tree_files
from rtvault.store import Store


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


def snapshot_version(store: Store, key: str, snapshot: str | None) -> StoredVersion:
    """The patient KEY names as a snapshot (the latest holding it, or `snapshot`) saw it."""
    manifests, damaged = store.manifests_and_damage()
    found = history.versions(store, key, manifests, history.snapshot_source(manifests, snapshot))
    version = history.pick_version(found, snapshot, None)
    if not snapshot:
        store.refuse_newer_damage(version.snapshot, damaged)
    files = tree_files(store, version.tree, f"snapshot {version.snapshot}")
    tree = store.get_tree(version.tree)
    return StoredVersion(files, version.path, "snapshot", version.snapshot, version.tree,
                         _newest(f.mtime_ns for f in tree.files))


def archive_version(store: Store, key: str, archive_id: str | None) -> StoredVersion:
    """The patient KEY names as an archive (the newest holding it, or `archive_id`) holds it."""
    record, patient = find(store, key, archive_id)
    files = member_files(store, record, patient)
    return StoredVersion(files, patient.path, "archive", record.id, record.id,
                         _newest(m.mtime * 10**9 for m in patient_members(record, patient)[0].values()))


def _newest(mtimes_ns: Iterator[int] | object) -> str | None:
    newest = max(mtimes_ns, default=None)  # type: ignore[call-overload]
    if newest is None:
        return None
    return datetime.fromtimestamp(newest / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
