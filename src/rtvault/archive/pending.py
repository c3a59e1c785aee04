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
    """Each patient of an earlier snapshot of a source absent from that source's latest snapshot, whose last
    version (path, tree) is not among `archived`, in path order. `manifests`: every snapshot manifest, oldest
    first; each source (`Manifest.source_name`) is compared with its own latest snapshot only (a patient of site
    A is not "gone" because site B's snapshot lacks it), and of its own kind: a source name given since to a
    physics tree (whose snapshots hold no patient) does not make its earlier patients gone."""
    done = set(archived)
    found: list[Pending] = []
    for source in dict.fromkeys((m.source_name, m.kind) for m in manifests):
        own = [m for m in manifests if (m.source_name, m.kind) == source]
        present = {p.path for p in own[-1].patients}
        last_seen: dict[str, tuple[Manifest, PatientEntry]] = {}
        for manifest in own:
            for patient in manifest.patients:
                last_seen[patient.path] = (manifest, patient)
        found += [Pending(path, manifest, entry) for path, (manifest, entry) in last_seen.items()
                  if path not in present and (path, entry.tree) not in done]
    return sorted(found, key=lambda p: (p.path, p.manifest.source_name))
