"""`rtvault reconcile`: the Pinnacle source against the catalog and the stores (docs/design.md, "Reconciliation").

Three lists (jobs/reconcile_report.py): patients in the source that no snapshot holds; archived patients with an
archive on fewer than two verified copies; and the patients **safe to delete from Pinnacle**: unchanged there for
`[reconcile] idle_months`, exactly as their newest snapshot holds them, that version archived as a Pinnacle tar
on two verified copies or more, one of them an offsite store (`offsite = true`) or a removable disk. rtvault
deletes nothing in Pinnacle: the list is for a person.

The source is listed once (as a backup lists it, reading no file but the Patient files of patients never
captured); the catalog says what each patient is held as; the stores are asked only what the catalog cannot
know: how fresh their verification is, which files it found damaged, and whether each archive a patient's
safety rests on is still there. A catalog that lacks the newest snapshot of a store is refused rather than read:
every patient backed up since would look never captured.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TypeVar

from rtvault.archive import records
from rtvault.catalog import holdings
from rtvault.catalog.db import Catalog
from rtvault.catalog.holdings import ArchiveCopy, Latest
from rtvault.catalog.indexer import patient_key, store_id
from rtvault.catalog.patients import patient_site
from rtvault.config import Config
from rtvault.config.settings import LEGACY_SOURCE
from rtvault.configured import open_catalog_for, open_store
from rtvault.copies.status import archive_sound
from rtvault.copies.verify import load_state
from rtvault.errors import CatalogError, RtvaultError
from rtvault.jobs.health_survey import GRACE_S, snapshot_time
from rtvault.jobs.idle import differs, last_change, months_before
from rtvault.jobs.reconcile_report import (
    LISTS,
    Held,
    NeverCaptured,
    NotYet,
    Reconciliation,
    SafeToDelete,
    UnderCopied,
    Who,
)
from rtvault.jobs.source import Listing, SourceListing, patient_sources, pinnacle_listing
from rtvault.pinnacle.patient import read_patient
from rtvault.store import Store
from rtvault.store.formats import Tree
from rtvault.utc import iso, parse

MIN_COPIES = 2
Entry = TypeVar("Entry", NeverCaptured, UnderCopied, SafeToDelete, NotYet)


def _age(now: datetime, text: str | None) -> float | None:
    """Seconds from a stored UTC time to `now`; None when there is none, or it is no time."""
    try:
        moment = parse(text) if text else None
    except ValueError:
        return None
    return None if moment is None else (now - moment.replace(tzinfo=moment.tzinfo or UTC)).total_seconds()


def _unindexed(listed: dict[str, datetime], known: set[str]) -> list[str]:
    """The snapshots listed that the catalog has not read, as new as its newest one or newer. An older one left
    out (a damaged manifest, which `catalog sync` names) hides no patient backed up since."""
    newest_known = max((t for i, t in listed.items() if i in known), default=None)
    return sorted(i for i, t in listed.items() if i not in known and (newest_known is None or t >= newest_known))


class _Stores:
    """The configured stores as far as reconciling needs them, each asked once: whether its verification is up to
    date (a cycle completed within [verify] cycle_days, and a day's grace as the health check gives), the keys its
    verification found missing or damaged, whether it still holds an archive. A store that cannot be read is named
    once, and its copies do not count."""

    def __init__(self, config: Config, now: datetime, problems: list[str]) -> None:
        self.config = config
        self.now = now
        self.problems = problems
        self.names = list(config.stores)
        self._opened: dict[str, Store | None] = {}
        self._verified: dict[str, tuple[bool, set[str]]] = {}
        self._sound: dict[tuple[str, str], bool] = {}

    def store(self, name: str) -> Store | None:
        """The store, or None (named among the problems) when it cannot be opened."""
        if name not in self._opened:
            try:
                self._opened[name] = open_store(self.config, name)
            except RtvaultError as error:
                self._opened[name] = None
                self.problems.append(f"store {name} cannot be read, so its copies are not counted: {error}")
        return self._opened[name]

    def _state(self, name: str) -> tuple[bool, set[str]]:
        if name not in self._verified:
            self._verified[name] = (False, set())
            if (store := self.store(name)) is None:
                return self._verified[name]
            try:
                state = load_state(store)
            except RtvaultError as error:
                self.problems.append(f"store {name}: its verification state cannot be read, so its copies are not "
                                     f"counted: {error}")
                return self._verified[name]
            age = _age(self.now, state.last_cycle_completed)
            fresh = age is not None and age <= self.config.verify.cycle_days * 86400 + GRACE_S
            self._verified[name] = (fresh, {p.key for p in state.problems})
        return self._verified[name]

    def sound(self, name: str, archive_id: str) -> bool:
        """The store's verification is up to date and found none of the archive's files missing or damaged."""
        fresh, problems = self._state(name)
        store = self.store(name)
        if not fresh or store is None:
            return False
        if (name, archive_id) not in self._sound:
            self._sound[(name, archive_id)] = archive_sound(store, problems, archive_id)
        return self._sound[(name, archive_id)]

    def holds(self, name: str, archive_id: str) -> bool:
        """The store still holds the archive's index (the catalog may not have seen it go)."""
        store = self.store(name)
        try:
            return store is not None and records.exists(store, archive_id)
        except RtvaultError as error:
            self.problems.append(f"store {name}: cannot tell whether it holds archive {archive_id[:12]}: {error}")
            return False

    def named(self) -> dict[str, str]:
        """id → name of the stores that open: the catalog knows them by id (catalog/stores.py)."""
        return {store_id(store): name for name in self.names if (store := self.store(name)) is not None}

    def tree(self, names: Iterable[str], tree: str) -> Tree | None:
        """The tree, read from the first of these stores that gives it."""
        for name in names:
            store = self.store(name)
            try:
                if store is not None:
                    return store.get_tree(tree)
            except RtvaultError:
                continue
        return None

    def refuse_stale(self, db: Catalog) -> None:
        """CatalogError when the catalog has not indexed a store's newest snapshot (catalog lost or behind)."""
        for name in self.names:
            store = self.store(name)
            try:
                ids = [] if store is None else [key.removeprefix("snapshots/").removesuffix(".json")
                                                for key in store.backend.list("snapshots/") if key.endswith(".json")]
            except RtvaultError as error:
                self.problems.append(f"store {name}: its snapshots cannot be listed: {error}")
                continue
            known = set() if store is None else holdings.indexed_snapshots(db, store_id(store))
            missing = _unindexed({i: t for i in ids if (t := snapshot_time(i)) is not None}, known)
            if missing:
                raise CatalogError(f"the catalog has not indexed snapshot {missing[-1]} of store {name} (lost or "
                                   "behind the stores): run `rtvault catalog sync`, then reconcile again")


@dataclass
class _Work:
    """One reconciliation under way."""

    config: Config
    now: datetime
    source: SourceListing
    stores: _Stores
    problems: list[str]
    name: str = LEGACY_SOURCE  # the source's configured name

    @property
    def idle_before(self) -> datetime:
        return months_before(self.now, self.config.reconcile.idle_months)

    @cached_property
    def disks_verified_since(self) -> str:
        return iso(self.now - timedelta(days=self.config.verify.cycle_days))

    def never_captured(self, latest: dict[str, Latest]) -> list[NeverCaptured]:
        found = []
        for path, listing in self.source.patients.items():
            if path in latest:
                continue
            patient_id, mrn, name = "", "", ""
            if listing.unlistable() is None:
                try:
                    record = read_patient(listing.base, path)
                    patient_id = "" if record.patient_id is None else str(record.patient_id)
                    mrn, name = (record.mrn or "").strip(), f"{record.last_name} {record.first_name}".strip()
                except OSError as error:
                    self.problems.append(f"{path}: cannot read who the patient is ({error.strerror or error})")
            changed = last_change(listing)
            found.append(NeverCaptured(Who(patient_key(path, patient_id, mrn), name, mrn, path, self.name), patient_id,
                                       iso(changed) if changed else None, len(listing.files),
                                       sum(f.size for f in listing.files)))
        return found

    def under_copied(self, db: Catalog, copies: list[ArchiveCopy]) -> list[UnderCopied]:
        by_archive: dict[tuple[int, str], list[ArchiveCopy]] = defaultdict(list)
        for copy in copies:
            by_archive[(copy.patient, copy.archive)].append(copy)
        short: dict[int, list[Held]] = defaultdict(list)
        for (patient, _archive), held in by_archive.items():
            if len({copy.holder for copy in held if self.counts(copy, False)}) < MIN_COPIES:
                short[patient].append(self.held(held, require_present=False))
        who = holdings.patients(db, short)
        return [UnderCopied(Who(p.key, p.name, p.mrn, p.path), p.status,
                            tuple(sorted(short[pid], key=lambda held: held.archive))) for pid, p in who.items()]

    def held(self, copies: list[ArchiveCopy], *, require_present: bool) -> Held:
        """One archive's copies, and those that count as verified (`counts`)."""
        verified = sorted({c.holder for c in copies if self.counts(c, require_present)})
        return Held(copies[0].archive, copies[0].file, tuple(sorted({c.holder for c in copies})), tuple(verified))

    def counts(self, copy: ArchiveCopy, require_present: bool) -> bool:
        """A copy counts as verified on a disk verified within [verify] cycle_days, or on a store whose
        verification is up to date and found none of the archive's files damaged (and, with `require_present`,
        that still holds it). An archive that lacks files of the patient (damaged) counts nowhere."""
        if copy.damaged:
            return False
        if copy.on_disk:
            return (copy.disk_verified or "") >= self.disks_verified_since
        return self.stores.sound(copy.holder, copy.archive) and (
            not require_present or self.stores.holds(copy.holder, copy.archive))

    def offsite(self, held: Held) -> tuple[str, ...]:
        """The verified copies that are out of the building: offsite stores, and removable disks (offline)."""
        stores = self.config.stores
        return tuple(h for h in held.verified if h not in stores or stores[h].offsite)

    def safe(self, latest: dict[str, Latest],
             copies: list[ArchiveCopy]) -> tuple[list[SafeToDelete], list[NotYet]]:
        wanted = {found.version for found in latest.values()}
        by_version: dict[int, dict[str, list[ArchiveCopy]]] = defaultdict(lambda: defaultdict(list))
        for copy in copies:
            if copy.version in wanted:
                by_version[copy.version][copy.archive].append(copy)
        safe, not_yet = [], []
        for path, found in latest.items():
            listing = self.source.patients[path]
            changed = last_change(listing)
            if changed is None or changed >= self.idle_before:
                continue
            who = Who(found.patient.key, found.patient.name, found.patient.mrn, path, self.name)
            outcome = self.judge(listing, found, by_version.get(found.version, {}), iso(changed), who)
            (safe if isinstance(outcome, SafeToDelete) else not_yet).append(outcome)
        return safe, not_yet

    def judge(self, listing: Listing, found: Latest, archives: dict[str, list[ArchiveCopy]], changed: str,
              who: Who) -> SafeToDelete | NotYet:
        """An idle patient: safe to delete, or why not yet (the cheap reasons first, the tree read last)."""
        if not archives:
            return NotYet(who, f"its latest version (snapshot {found.snapshot}) is not archived: run `rtvault "
                               "archive now --idle`")
        held = sorted((self.held(c, require_present=True) for c in archives.values()),
                      key=lambda h: (bool(self.offsite(h)), len(h.verified)), reverse=True)[0]
        if len(held.verified) < MIN_COPIES or not self.offsite(held):
            return NotYet(who, f"{held.shown()}: it needs two verified copies, one on an offsite store or a "
                               "removable disk (`rtvault replicate`, `rtvault volume sync`, then verify)")
        why = self.changed_since_backup(listing, found)
        if why is not None:
            return NotYet(who, why)
        return SafeToDelete(who, changed, found.snapshot, found.tree, held, self.offsite(held))

    def changed_since_backup(self, listing: Listing, found: Latest) -> str | None:
        """Why Pinnacle's copy is not the version of the newest snapshot, or None when it is."""
        tree = self.stores.tree(found.stores, found.tree)
        if tree is None:
            where = ", ".join(found.stores)
            self.problems.append(f"{found.patient.path}: the tree of its newest version cannot be read from {where}, "
                                 "so it is not judged: run `rtvault verify` there")
            return f"the tree of its newest version cannot be read from {where}"
        why = differs(listing, tree)
        return None if why is None else f"changed since snapshot {found.snapshot} ({why}): run `rtvault backup`"


def _source_problems(source: SourceListing) -> Iterable[str]:
    for folder in source.unlistable:
        if folder.name not in source.patients:
            yield (f"folder {folder.name} of the source cannot be listed ({folder.error}): its patients are not "
                   "reconciled")
    for path, listing in source.patients.items():
        if listing.unreadable:
            first = listing.unreadable[0]
            yield (f"{path}: {len(listing.unreadable)} file(s) or folder(s) cannot be read (first: {first.name}, "
                   f"{first.error}): it is never listed as safe to delete")


def _by_name(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(sorted(entries, key=lambda e: (e.who.name.casefold(), e.who.path)))


def reconcile(config: Config, now: datetime | None = None, *, catalog: Catalog | None = None,
              source: str | None = None) -> Reconciliation:
    """The three lists for the configured patient databases (or the one named `source`), catalog and stores at
    `now`; `catalog`: one already open (the web server's), else the configured one, which must exist. Each source
    is compared with its own snapshots (two servers may hold a patient at the same path)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    named = patient_sources(config, source)
    problems: list[str] = []
    stores = _Stores(config, now, problems)
    listed = [(name, pinnacle_listing(config, name)) for name in named]
    never: list[NeverCaptured] = []
    safe: list[SafeToDelete] = []
    not_yet: list[NotYet] = []
    with nullcontext(catalog) if catalog is not None else open_catalog_for(config, create=False) as db:
        stores.refuse_stale(db)
        copies = holdings.archive_copies(db, stores.named())
        for name, listing in listed:
            problems += _source_problems(listing)
            work = _Work(config, now, listing, stores, problems, name)
            latest = holdings.latest_snapshots(db, listing.patients, stores.named(),
                                               source=name if len(named) > 1 else None)
            never += work.never_captured(latest)
            found_safe, found_not_yet = work.safe(latest, copies)
            safe += found_safe
            not_yet += found_not_yet
        under = _Work(config, now, listed[0][1], stores, problems).under_copied(db, copies)
    roots = ", ".join(str(listing.root) for _, listing in listed)
    return Reconciliation(roots, config.reconcile.idle_months, iso(months_before(now, config.reconcile.idle_months)),
                          _by_name(never), _by_name(under), _by_name(safe), _by_name(not_yet),
                          tuple(dict.fromkeys(problems)))


def limited_to(found: Reconciliation, sites: Sequence[str], config: Config, catalog: Catalog) -> Reconciliation:
    """The lists as a user limited to `sites` may read them (the web's reconciliation page): a patient of a
    source of another site, or archived from another site, is left out (none left out when `sites` is empty)."""
    if not sites:
        return found
    of_source = {name: source.site for name, source in config.all_sources().items()}

    def mine(who: Who) -> bool:
        if who.source:
            return of_source.get(who.source, "") in sites
        return patient_site(catalog, who.key) in sites

    return dataclasses.replace(found, **{name: tuple(e for e in getattr(found, name) if mine(e.who))
                                         for name in (*LISTS, "not_yet")})
