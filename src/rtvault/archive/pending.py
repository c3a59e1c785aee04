"""Patients awaiting their archive: gone from the latest snapshot, with no archive of their last backed-up version.

A backup commits its snapshot first and archives such patients afterwards, so between the two (a full disk, a
kill) the only copy of a deleted patient is an older snapshot. `awaiting_archive` names that snapshot for each
such patient: the archive job archives from it, and retention keeps it until the archive exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtvault.store.formats import Manifest, PatientEntry


@dataclass(frozen=True)
class Pending:
    """A patient gone from the source whose last version is not archived yet, and where that version is."""

    path: str
    manifest: Manifest  # the newest snapshot holding the patient
    entry: PatientEntry  # the patient's entry in that snapshot's manifest

    @property
    def snapshot(self) -> str:
        return self.manifest.id


def awaiting_archive(manifests: Sequence[Manifest], archived: Iterable[tuple[str, str]]) -> list[Pending]:
    """Each patient of an earlier snapshot absent from the latest whose last version (path, tree) is not among
    `archived`, in path order. `manifests`: every snapshot manifest, oldest first."""
    if not manifests:
        return []
    present = {p.path for p in manifests[-1].patients}
    last_seen: dict[str, tuple[Manifest, PatientEntry]] = {}
    for manifest in manifests:
        for patient in manifest.patients:
            last_seen[patient.path] = (manifest, patient)
    done = set(archived)
    return [Pending(path, manifest, entry) for path, (manifest, entry) in sorted(last_seen.items())
            if path not in present and (path, entry.tree) not in done]
