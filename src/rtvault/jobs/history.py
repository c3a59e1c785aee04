"""Questions about the snapshots of a store: which patient a key names, its versions, what changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.archive.formats import ArchivedPatient
from rtvault.errors import InputError, StoreError
from rtvault.store import Store
from rtvault.store.formats import PATIENTS_KIND, Manifest, PatientEntry
from rtvault.utc import parse


@dataclass(frozen=True)
class Version:
    """One patient as one snapshot holds it."""

    snapshot: str
    time: str
    path: str
    tree: str
    entry: PatientEntry
    source: str = "pinnacle"  # the configured source whose snapshot it is


class NoSuchPatient(StoreError):
    """No intact snapshot holds a patient the key names."""


class SeveralPatients(StoreError):
    """The key names several patients (an MRN or PatientID at several paths); `entries`: one of each."""

    def __init__(self, message: str, entries: list[PatientEntry]) -> None:
        super().__init__(message)
        self.entries = entries


def matches(entry: PatientEntry | ArchivedPatient, key: str) -> bool:
    """KEY is a patient path, a medical record number or a PatientID (of a snapshot's patient entry, or of an
    archive's patient)."""
    key = key.strip().strip("/")
    return key in (entry.path, entry.mrn or None, str(entry.patient_id))


def versions(store: Store, key: str, manifests: list[Manifest] | None = None,
             source: str | None = None) -> list[Version]:
    """Every intact snapshot holding the patient KEY names (of the source `source` when given), oldest first;
    one patient only, else an error. Two sources may hold a patient at the same path (two Pinnacle servers): they
    are two patients. `manifests`: the store's intact manifests when the caller read them already. (A damaged
    manifest is skipped here; `Store.refuse_newer_damage` refuses to take the last of these when one is newer.)"""
    found = [Version(m.id, m.time, p.path, p.tree, p, m.source_name)
             for m in (store.manifests_and_damage()[0] if manifests is None else manifests)
             if source is None or m.source_name == source
             for p in m.patients if matches(p, key)]
    places = sorted({(v.source, v.path) for v in found})
    if not found:
        of = f" of the source {source}" if source is not None else ""
        raise NoSuchPatient(f"no snapshot{of} in {store.location} holds a patient {key!r} (path, MRN or PatientID)")
    if len(places) > 1:
        newest = {(v.source, v.path): v.entry for v in found}
        if len({path for _, path in places}) == 1:
            raise SeveralPatients(f"{key!r} names patients of {len(places)} sources "
                                  f"({', '.join(name for name, _ in places)}): name one with --source",
                                  [newest[place] for place in places])
        raise SeveralPatients(f"{key!r} names {len(places)} different patients "
                              f"({', '.join(path for _, path in places)}): give the path",
                              [newest[place] for place in places])
    return found


def snapshot_source(manifests: list[Manifest], snapshot: str | None) -> str | None:
    """The source whose snapshot `snapshot` (an id or its start) is, when it names one snapshot's source: a patient
    asked of a given snapshot is that source's, even where another source holds a patient at the same path."""
    names = {m.source_name for m in manifests if snapshot and m.id.startswith(snapshot)}
    return names.pop() if len(names) == 1 else None


def patients_source(store: Store, manifests: list[Manifest]) -> str | None:
    """The one patient database whose snapshots the store holds (what `latest` means to `restore --all`); None
    when it holds none; InputError when it holds several (two Pinnacle servers): the caller names one."""
    names = list(dict.fromkeys(m.source_name for m in manifests if m.kind == PATIENTS_KIND))
    if len(names) > 1:
        raise InputError(f"store {store.location} holds snapshots of several patient databases "
                         f"({', '.join(names)}): name one with --source")
    return names[0] if names else None


def parse_time(text: str) -> datetime:
    """`2026-11-23 18:00`, `2026-11-23T18:00:00Z`, `2026-11-23`: local time unless a zone is given."""
    try:
        value = parse(text)
    except ValueError:
        raise InputError(f"unreadable date and time {text!r} (expected like 2026-11-23 18:00)") from None
    try:
        return (value if value.tzinfo else value.astimezone()).astimezone(UTC)
    except (OverflowError, ValueError):  # a local time next to year 1 or 9999 has no UTC twin: the far end
        return (datetime.max if value.year > 1 else datetime.min).replace(tzinfo=UTC)


def pick_version(found: list[Version], snapshot: str | None, at: str | None) -> Version:
    if snapshot:
        chosen = [v for v in found if v.snapshot.startswith(snapshot)]
        if len(chosen) != 1:
            raise StoreError(f"snapshot {snapshot!r} does not hold this patient (see `rtvault snapshots --patient`)")
        return chosen[0]
    if at:
        limit = parse_time(at)
        before = [v for v in found if parse(v.time) <= limit]
        if not before:
            raise StoreError(f"no version of this patient as early as {at}: the first is from {found[0].time}")
        return before[-1]
    return found[-1]


def diff(store: Store, first: str, second: str) -> dict[str, object]:
    """Patients added, removed and changed from snapshot `first` to `second`, with the files that changed."""
    a, b = store.load_snapshot(first), store.load_snapshot(second)
    old = {p.path: p for p in a.patients}
    new = {p.path: p for p in b.patients}
    changed = []
    for path in sorted(old.keys() & new.keys()):
        if old[path].tree != new[path].tree:
            changed.append({"path": path, **_file_changes(store, old[path].tree, new[path].tree)})
    return {
        "from": a.id,
        "to": b.id,
        "added": [_who(new[p]) for p in sorted(new.keys() - old.keys())],
        "removed": [_who(old[p]) for p in sorted(old.keys() - new.keys())],
        "changed": changed,
    }


def _who(entry: PatientEntry) -> dict:
    return {"path": entry.path, "patient_id": entry.patient_id, "last_name": entry.last_name,
            "first_name": entry.first_name, "mrn": entry.mrn}


def _file_changes(store: Store, old_tree: str, new_tree: str) -> dict[str, list[str]]:
    old = store.get_tree(old_tree).by_name()
    new = store.get_tree(new_tree).by_name()
    return {
        "files_added": sorted(new.keys() - old.keys()),
        "files_removed": sorted(old.keys() - new.keys()),
        "files_changed": sorted(n for n in old.keys() & new.keys()
                                if (old[n].hash, old[n].mode) != (new[n].hash, new[n].mode)),
    }
