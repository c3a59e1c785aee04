"""`rtvault archive now --patient KEY | --idle`: the Pinnacle-format archive of a patient's latest version, from the
newest snapshot holding it, made while the patient is still in Pinnacle, so that it may be deleted there
(`rtvault reconcile` lists a patient as safe to delete only once its latest version is archived).

The archive is the one the backup writes for a patient gone from Pinnacle (archive/build.py), with the origin
`requested`; a version already archived is not archived again, and the automatic archive of the patient, once
deleted from Pinnacle, finds it done. `--idle` takes every patient of the source unchanged for `[reconcile]
idle_months` and still exactly as its newest snapshot holds it (jobs/idle.py); an idle patient that changed since
its last backup, or was never backed up, is named and not archived (back it up first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rtvault.archive import records
from rtvault.archive.build import archive_patient_version
from rtvault.archive.formats import REQUESTED, Stored
from rtvault.config import Config
from rtvault.errors import PartialResult, Problem, RtvaultError
from rtvault.jobs.archiving import line
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.history import versions
from rtvault.jobs.idle import differs, last_change, months_before
from rtvault.jobs.machines import physics_at
from rtvault.jobs.source import patient_sources, pinnacle_listing
from rtvault.report import OK, Line, Refreshed, Verdict, err
from rtvault.store import Store
from rtvault.store.formats import Manifest, PatientEntry
from rtvault.store.locks import WriterLock

Chosen = tuple[Manifest, PatientEntry]


@dataclass(frozen=True)
class ArchivedNow(Refreshed):
    """What `archive now` did: archives made, versions found archived already ({"path", "archive"}), and the
    patients not archived with why (exit 9 when there is one)."""

    archived: tuple[Stored, ...]
    already: tuple[dict[str, str], ...]
    not_archived: tuple[Problem, ...]
    lock_warnings: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"archived": [a.to_json() for a in self.archived], "already": list(self.already),
                "not_archived": [{"path": p.file, "reason": p.message} for p in self.not_archived]}

    def warnings(self) -> Iterable[str]:
        return [*map(str, self.lock_warnings), *super().warnings()]

    def lines(self) -> Iterable[Line]:
        yield from (Line(f"archived {line(stored.record)}") for stored in self.archived)
        yield from (Line(f"already archived {a['path']} in {a['archive'][:12]}") for a in self.already)
        yield from (err(f"  not archived: {p.file}: {p.message}") for p in self.not_archived)
        yield Line(f"{len(self.archived)} archived, {len(self.already)} already archived, "
                   f"{len(self.not_archived)} not archived")

    def verdict(self) -> Verdict:
        if not self.not_archived:
            return OK
        return Verdict.failed(PartialResult(f"{len(self.not_archived)} patient(s) not archived (named above, with "
                                            "what to do)"))


def _latest(manifests: Sequence[Manifest]) -> dict[str, Chosen]:
    """Each patient path's newest snapshot and entry (`manifests`: oldest first)."""
    return {entry.path: (manifest, entry) for manifest in manifests for entry in manifest.patients}


def _idle(config: Config, store: Store, manifests: Sequence[Manifest],
          now: datetime) -> tuple[list[Chosen], list[Problem]]:
    """The newest version of every idle patient of the patient databases (each against its own snapshots), and
    each idle patient that cannot be archived."""
    before = months_before(now, config.reconcile.idle_months)
    chosen, refused = [], []
    for name in patient_sources(config):
        more, failed = _idle_of(config, name, store, [m for m in manifests if m.source_name == name], before)
        chosen += more
        refused += failed
    return chosen, refused


def _idle_of(config: Config, name: str, store: Store, manifests: Sequence[Manifest],
             before: datetime) -> tuple[list[Chosen], list[Problem]]:
    source = pinnacle_listing(config, name)
    latest = _latest(manifests)
    chosen, refused = [], []
    for path, listing in source.patients.items():
        changed = last_change(listing)
        if changed is None or changed >= before:
            continue
        if path not in latest:
            refused.append(Problem(path, "never backed up: run `rtvault backup`, then archive it"))
            continue
        manifest, entry = latest[path]
        why = differs(listing, store.get_tree(entry.tree))
        if why is not None:
            refused.append(Problem(path, f"changed since snapshot {manifest.id} ({why}): run `rtvault backup`, "
                                         "then archive it"))
            continue
        chosen.append((manifest, entry))
    return chosen, refused


def _asked(store: Store, keys: Sequence[str], manifests: list[Manifest]) -> tuple[list[Chosen], list[Problem]]:
    """The newest version of each patient a KEY names (path, MRN or PatientID)."""
    chosen: dict[str, Chosen] = {}  # by path: two keys naming the same patient (its MRN, its path) archive it once
    refused = []
    for key in dict.fromkeys(keys):
        try:
            newest = versions(store, key, manifests)[-1]
        except RtvaultError as error:
            refused.append(Problem(key, str(error)))
            continue
        chosen[newest.path] = (next(m for m in manifests if m.id == newest.snapshot), newest.entry)
    return list(chosen.values()), refused


def _archived_in(store: Store) -> dict[tuple[str, str], str]:
    """(patient path, tree) -> the archive holding that version, for the versions rtvault archived itself."""
    return {(p.path, p.tree): summary.id for summary in records.summaries(store) for p in summary.patients if p.tree}


def archive_now(config: Config, store: Store, *, keys: Sequence[str] = (), idle: bool = False,
                now: datetime | None = None) -> ArchivedNow:
    """Archive the newest version of each patient KEY names, or (`idle`) of every idle patient, under the
    store's writer lock; then the catalog refreshed."""
    warnings: list[Problem] = []
    archived, already, refused = [], [], []
    with WriterLock(store.backend, "archive now", config.backup.lock_lease_seconds, warnings.append):
        manifests = store.manifests_and_damage()[0]
        chosen, refused = _idle(config, store, manifests, now or datetime.now(UTC)) if idle else \
            _asked(store, keys, manifests)
        done, destroyed = _archived_in(store), records.destroyed_versions(store)
        for manifest, entry in chosen:
            version = (entry.path, entry.tree)
            if version in done:
                already.append({"path": entry.path, "archive": done[version]})
            elif version in destroyed:
                refused.append(Problem(entry.path, "this version's archive was destroyed (`archive delete`): it is "
                                                   "not archived again"))
            else:
                try:
                    archived.append(archive_patient_version(store, manifest, entry, origin=REQUESTED,
                                                            physics=physics_at(manifests, manifest)))
                except RtvaultError as error:
                    refused.append(Problem(entry.path, f"not archived: {error}"))
    catalog = refresh_quietly(config) if archived else None
    return ArchivedNow(tuple(archived), tuple(already), tuple(refused), tuple(warnings), catalog=catalog)
