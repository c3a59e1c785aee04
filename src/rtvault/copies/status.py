"""`rtvault status`: what each configured store holds, how far each copy lags behind its source, how recently
each store was verified, how old the newest backup is, and every patient version, archive and DICOM receipt (the
objects the DICOM node received, `dicom/receipts/`) that is not on two stores (or not on two verified stores).

A patient version is one (patient path, tree) pair: the same tree in many snapshots is one version. A store
holds it when one of its snapshot manifests names it; a copy is *verified* when its store completed a
verification cycle within `[verify] cycle_days` and none of the version's files is among that store's
known problems.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from rtvault.archive import records
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store, store_labels, where
from rtvault.copies.replicate import REPLICATED, copies_key
from rtvault.errors import ExitCode, RtvaultError, StoreError
from rtvault.report import Line, Report, Verdict
from rtvault.store import Store, receipts
from rtvault.store.backend import DirectoryBackend
from rtvault.store.objects import data_key
from rtvault.store.repository import tree_key
from rtvault.utc import iso, parse, span

MIN_COPIES = 2
SHOWN = 20  # shortfalls listed for a person; the JSON lists them all


@dataclass
class StoreStatus:
    name: str
    location: str
    available: bool = True
    error: str | None = None
    id: str | None = None
    copy_of: str | None = None
    objects: int = 0
    bytes: int = 0  # stored (compressed) bytes of objects, trees, archives and manifests
    free_bytes: int | None = None  # None when unknown (not a directory)
    snapshots: int = 0
    archives: int = 0
    receipts: int = 0  # the DICOM node's receipts
    received: int = 0  # the received objects they name
    last_replication: str | None = None  # from the copies/ record the source's last replication wrote
    lag_snapshots: int | None = None  # snapshots of its source it lacks (None: not a copy, or source unreachable)
    lag_archives: int | None = None
    lag_receipts: int | None = None
    lag_age_s: float | None = None  # age of the newest snapshot it lacks
    last_verification: str | None = None  # when its last verification cycle completed
    verified: bool = False  # a cycle completed within [verify] cycle_days
    verify_problems: int = 0


@dataclass
class Shortfall:
    """A patient version or an archive held by too few stores."""

    kind: str  # patient | archive | receipt
    key: str  # patient path, archive id or receipt id
    tree: str | None  # the version's tree (patients)
    snapshot: str | None  # the newest snapshot naming that version (patients)
    stores: list[str]
    verified_stores: list[str]


@dataclass
class StatusReport(Report):
    stores: list[StoreStatus]
    versions: int = 0
    archives: int = 0
    receipts: int = 0
    received: int = 0  # distinct received DICOM objects, on any store
    too_few_copies: list[Shortfall] = field(default_factory=list)
    too_few_verified: list[Shortfall] = field(default_factory=list)
    newest_snapshot: str | None = None  # the newest snapshot of the stores that are no copy: the last backup
    newest_snapshot_store: str | None = None
    newest_snapshot_age_s: float | None = None
    backup_max_age_s: int = 0  # [health] backup_max_age
    pending_destruction: list[dict] = field(default_factory=list)  # {archive, kind, place, store_id, decided, note}

    @property
    def backups_ok(self) -> bool:
        """A backup was taken within [health] backup_max_age (a store that cannot be read says so itself)."""
        if self.newest_snapshot_age_s is None:
            return not all(s.available for s in self.stores if not s.copy_of)
        return self.newest_snapshot_age_s <= self.backup_max_age_s

    @property
    def ok(self) -> bool:
        """Every store reachable, backups running, and every version and archive on at least two stores."""
        return not self.too_few_copies and all(s.available for s in self.stores) and self.backups_ok

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "copies_ok": not self.too_few_copies, "verified_ok": not self.too_few_verified,
                "backups_ok": self.backups_ok, **asdict(self)}

    def warnings(self) -> Iterable[str]:
        pending = [f"{_what(p['archive'])} is pending destruction on {p['kind']} {p['place']} (destroyed "
                   f"{p['decided']}): {p['note'] or 'not removed yet'}" for p in self.pending_destruction]
        return [*pending, *self._backup_warnings()]

    def _backup_warnings(self) -> list[str]:
        if self.backups_ok:
            return []
        limit = span(self.backup_max_age_s)
        if self.newest_snapshot is None:
            return ["no backup yet (no snapshot in any store that is no copy): run `rtvault backup`, and start "
                    "`rtvault daemon`, which runs the [schedule]"]
        return [f"backups have stopped: the newest snapshot ({self.newest_snapshot} in {self.newest_snapshot_store}) "
                f"was taken {span(self.newest_snapshot_age_s or 0)} ago, beyond [health] backup_max_age ({limit}): "
                "read the last backup's error (`rtvault runs --job backup`) and check that `rtvault daemon` runs "
                "(`rtvault health` tells more)"]

    def lines(self) -> Iterable[Line]:
        for store in self.stores:
            yield from map(Line, _store_lines(store))
        if self.newest_snapshot is not None:
            late = "" if self.backups_ok else f", beyond [health] backup_max_age ({span(self.backup_max_age_s)})"
            yield Line(f"newest snapshot: {self.newest_snapshot} in {self.newest_snapshot_store}, taken "
                       f"{span(self.newest_snapshot_age_s or 0)} ago{late}")
        yield Line(f"{self.versions} patient versions, {self.archives} archives, {self.received} received DICOM "
                   f"objects ({self.receipts} receipts)")
        yield from map(Line, _shortfall_lines("with fewer than two copies", self.too_few_copies))
        yield from map(Line, _shortfall_lines("with fewer than two verified copies", self.too_few_verified))

    def verdict(self) -> Verdict:
        """Exit code 7 unless every store is reachable, the last backup is recent enough and everything is on
        two stores."""
        return Verdict.unless(not self.ok, ExitCode.CHECK_FAILED)


def _size(count: int | None) -> str:
    if count is None:
        return "unknown"
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def _store_lines(s: StoreStatus) -> list[str]:
    if not s.available:
        return [f"store {s.name}: UNAVAILABLE: {s.error}"]
    lines = [f"store {s.name} ({s.location}): {s.snapshots} snapshots, {s.archives} archives, {s.received} received "
             f"DICOM objects, {s.objects} objects, {_size(s.bytes)} stored, {_size(s.free_bytes)} free"]
    if s.copy_of:
        lag = "lag unknown" if s.lag_snapshots is None else (
            "up to date" if not (s.lag_snapshots or s.lag_archives or s.lag_receipts)
            else f"lacks {s.lag_snapshots} snapshot(s), {s.lag_archives} archive(s) and {s.lag_receipts} DICOM "
                 f"receipt(s) of {s.copy_of}")
        lines.append(f"  copy of {s.copy_of}: last replication {s.last_replication or 'never'}; {lag}")
    verified = "never" if not s.last_verification else (
        f"cycle completed {s.last_verification}" + ("" if s.verified else " (older than [verify] cycle_days)"))
    return [*lines, f"  verification: {verified}; {s.verify_problems} known problem(s)"]


def _shortfall_lines(title: str, items: list[Shortfall]) -> list[str]:
    lines = [f"{len(items)} {title}"]
    for item in items[:SHOWN]:
        what = f"patient {item.key} (tree {item.tree[:12]}, snapshot {item.snapshot})" if item.tree else \
            f"DICOM receipt {item.key}" if item.kind == "receipt" else f"archive {item.key[:12]}"
        lines.append(f"  {what}: on {', '.join(item.stores) or 'no store'}")
    if len(items) > SHOWN:
        lines.append(f"  ... and {len(items) - SHOWN} more (--json lists them all)")
    return lines


@dataclass
class _Holdings:
    """What one store holds: patient versions, archives, DICOM receipts, and which of them its verification found
    damaged."""

    store: Store
    versions: dict[tuple[str, str], tuple[str, str]]  # (path, tree): (newest snapshot id, its time)
    archives: set[str]
    snapshot_times: dict[str, str]
    problems: set[str]
    receipts: dict[str, frozenset[str]]  # receipt id: the hashes of the objects it names (empty: unreadable)


def _holdings(store: Store) -> _Holdings:
    versions: dict[tuple[str, str], tuple[str, str]] = {}
    times = {}
    for manifest in store.manifests():  # oldest first: the newest snapshot naming a version wins
        times[manifest.id] = manifest.time
        for patient in manifest.patients:
            versions[(patient.path, patient.tree)] = (manifest.id, manifest.time)
    return _Holdings(store, versions, set(records.all_ids(store)), times, set(), _receipts(store))


def _receipts(store: Store) -> dict[str, frozenset[str]]:
    found = {}
    for ident in receipts.ids(store.backend):
        try:
            found[ident] = frozenset(i.hash for i in receipts.load(store.backend, ident).instances)
        except StoreError:  # damaged: its verification says so; it counts as held, by no sound copy
            found[ident] = frozenset()
    return found


def _verification(store: Store, status: StoreStatus, cycle_days: int, now: datetime) -> set[str]:
    """Fill the verification fields; returns the keys the store's verification found missing or damaged."""
    try:
        from rtvault.copies.verify import load_state
    except ImportError:  # rolling verification not installed: never verified
        return set()
    state = load_state(store)
    status.last_verification = state.last_cycle_completed
    if state.last_cycle_completed:
        completed = parse(state.last_cycle_completed)
        status.verified = now - completed <= timedelta(days=cycle_days)
    keys = {p.key if hasattr(p, "key") else p["key"] for p in state.problems}
    status.verify_problems = len(keys)
    return keys


def _usage(store: Store, status: StoreStatus) -> None:
    for prefix in REPLICATED:
        for key in store.backend.list(prefix):
            status.objects += key.startswith("data/")
            status.bytes += store.backend.size(key)
    backend = getattr(store.base, "inner", store.base)  # an encrypted store: the directory under it
    if isinstance(backend, DirectoryBackend):
        status.free_bytes = shutil.disk_usage(backend.root).free


def _open(config: Config, name: str, now: datetime) -> tuple[StoreStatus, _Holdings | None]:
    settings = config.stores[name]
    status = StoreStatus(name, where(settings), copy_of=settings.copy_of or None)
    try:
        store = open_store(config, name)
        status.location, status.id = store.location, store.info.get("id")
        held = _holdings(store)
        _usage(store, status)
        held.problems = _verification(store, status, config.verify.cycle_days, now)
    except StoreError as error:
        status.available, status.error = False, str(error)
        return status, None
    status.snapshots, status.archives = len(held.snapshot_times), len(held.archives)
    status.receipts, status.received = len(held.receipts), len(frozenset().union(*held.receipts.values()))
    return status, held


def _lag(status: StoreStatus, target: _Holdings, source: _Holdings, now: datetime) -> None:
    missing = set(source.snapshot_times) - set(target.snapshot_times)
    status.lag_snapshots = len(missing)
    status.lag_archives = len(source.archives - target.archives)
    status.lag_receipts = len(set(source.receipts) - set(target.receipts))
    if missing:
        newest = max(source.snapshot_times[i] for i in missing)
        try:
            status.lag_age_s = round((now - parse(newest)).total_seconds(), 1)
        except ValueError:
            status.lag_age_s = None
    record = copies_key(str(source.store.info.get("id")))
    try:
        status.last_replication = json.loads(target.store.backend.get(record)).get("time")
    except (StoreError, ValueError):
        status.last_replication = None


def _version_sound(held: _Holdings, tree: str) -> bool:
    """None of the version's files is among the store's known problems."""
    if not held.problems:
        return True
    if tree_key(tree) in held.problems:
        return False
    try:
        files = held.store.get_tree(tree).files
    except StoreError:
        return False
    return not any(data_key(f.hash) in held.problems for f in files)


def archive_sound(store: Store, problems: set[str], archive_id: str) -> bool:
    """None of the archive's files (its tar, its index, the member objects of a gzip archive) is among the store's
    known problems (`problems`: the keys its verification found missing or damaged)."""
    if not problems:
        return True
    keys = {records.tar_key(archive_id), records.record_key(archive_id)}
    try:
        record = records.load(store, archive_id)
    except StoreError:
        return False
    if record.compression != "none":
        keys |= {data_key(m.hash) for m in record.members if m.hash}
    return not keys & problems


def receipt_sound(held: _Holdings, ident: str) -> bool:
    """The receipt reads, and neither it nor any object it names is among the store's known problems."""
    objects = held.receipts.get(ident)
    if not objects:
        return False
    keys = {receipts.receipt_key(ident)} | {data_key(h) for h in objects}
    return not keys & held.problems


def _disk_copies(config: Config, now: datetime) -> dict[str, list[tuple[str, bool]]]:
    """Archive id -> [(volume:<label>, verified within the cycle)], from the catalog's record of the removable
    disks (they are not stores: the catalog is where rtvault remembers them). No catalog: no disk copies."""
    from rtvault.catalog.volumes import all_volumes, held

    found: dict[str, list[tuple[str, bool]]] = {}
    oldest = iso(now - timedelta(days=config.verify.cycle_days))
    try:
        with open_catalog_for(config) as catalog:
            for volume in all_volumes(catalog):
                for archive_id, copy in held(catalog, volume.label).items():
                    fresh = bool(copy.verified) and str(copy.verified) >= oldest
                    found.setdefault(archive_id, []).append((f"volume:{volume.label}", fresh))
    except RtvaultError:
        return {}
    return found


def _shortfalls(report: StatusReport, held: dict[str, _Holdings], verified: set[str],
                disks: dict[str, list[tuple[str, bool]]]) -> None:
    versions = sorted({v for h in held.values() for v in h.versions})
    archives = sorted({a for h in held.values() for a in h.archives})
    report.versions, report.archives = len(versions), len(archives)
    for path, tree in versions:
        holders = [n for n, h in held.items() if (path, tree) in h.versions]
        good = [n for n in holders if n in verified and _version_sound(held[n], tree)]
        newest = max((held[n].versions[(path, tree)] for n in holders), key=lambda v: v[1])[0]
        _note(report, Shortfall("patient", path, tree, newest, holders, good))
    gone = {p["archive"] for p in report.pending_destruction}  # legally destroyed: fewer copies is the point
    for archive_id in (a for a in archives if a not in gone):
        holders = [n for n, h in held.items() if archive_id in h.archives]
        good = [n for n in holders if n in verified and archive_sound(held[n].store, held[n].problems, archive_id)]
        holders += [label for label, _fresh in disks.get(archive_id, [])]
        good += [label for label, fresh in disks.get(archive_id, []) if fresh]
        _note(report, Shortfall("archive", archive_id, None, None, holders, good))
    _receipt_shortfalls(report, held, verified)


def _receipt_shortfalls(report: StatusReport, held: dict[str, _Holdings], verified: set[str]) -> None:
    idents = sorted({r for h in held.values() for r in h.receipts})
    report.receipts = len(idents)
    report.received = len(frozenset().union(*(o for h in held.values() for o in h.receipts.values())))
    for ident in idents:
        holders = [n for n, h in held.items() if ident in h.receipts]
        good = [n for n in holders if n in verified and receipt_sound(held[n], ident)]
        _note(report, Shortfall("receipt", ident, None, None, holders, good))


def _note(report: StatusReport, item: Shortfall) -> None:
    if len(item.stores) < MIN_COPIES:
        report.too_few_copies.append(item)
    if len(item.verified_stores) < MIN_COPIES:
        report.too_few_verified.append(item)


def _newest(report: StatusReport, primaries: dict[str, _Holdings], now: datetime) -> None:
    """The newest snapshot of the stores backups go into, and its age."""
    found = [(time, snapshot_id, name) for name, held in primaries.items()
             for snapshot_id, time in held.snapshot_times.items()]
    if not found:
        return
    time, report.newest_snapshot, report.newest_snapshot_store = max(found)
    try:
        report.newest_snapshot_age_s = round(max(0.0, (now - parse(time)).total_seconds()), 1)
    except ValueError:
        report.newest_snapshot_age_s = None


def _what(ident: str) -> str:
    """How a destruction is named: an archive by its id's start, received DICOM objects by their destruction id
    (`rtvault dicom delete --pending` carries it on)."""
    return f"received DICOM objects {ident}" if ident.startswith("dicom-") else f"archive {ident[:12]}"


def store_status(config: Config, now: datetime | None = None) -> StatusReport:
    """The status of every configured store and what is held by fewer than two (verified) stores."""
    now = now or datetime.now(UTC)
    opened = {name: _open(config, name, now) for name in config.stores}
    held = {name: h for name, (_s, h) in opened.items() if h is not None}
    report = StatusReport([status for status, _h in opened.values()], backup_max_age_s=config.health.backup_max_age_s)
    _newest(report, {name: h for name, h in held.items() if not config.stores[name].copy_of}, now)
    for status in report.stores:
        if status.copy_of in held and status.name in held:
            _lag(status, held[status.name], held[status.copy_of], now)
    report.pending_destruction = _pending_destruction(config)
    _shortfalls(report, held, {s.name for s in report.stores if s.verified}, _disk_copies(config, now))
    return report


def _pending_destruction(config: Config) -> list[dict]:
    """The copies of legally destroyed archives still to remove (catalog/destructions.py); none without a catalog."""
    from rtvault.catalog import destructions

    try:
        with open_catalog_for(config) as catalog:
            return destructions.pending_summary(catalog, store_labels(config, catalog), config.site.name)
    except RtvaultError:
        return []
