"""`rtvault check`, `rtvault forget` and `rtvault prune`: the store's health and its retention.

`forget` removes snapshot manifests that no retention rule keeps; `prune` then deletes the trees and objects
that no remaining snapshot references. Both hold the writer lock, so a backup never races them. Deleting
only ever removes unreferenced files, one at a time, so a prune killed at any point leaves a valid store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtvault import utc
from rtvault.archive import records
from rtvault.config import Config
from rtvault.errors import CheckFailed, Problem, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.archives import pending
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.pool import in_threads, read_order
from rtvault.report import OK, Line, Refreshed, Report, Verdict
from rtvault.store import Store, integrity, receipts
from rtvault.store.formats import Manifest
from rtvault.store.locks import WriterLock
from rtvault.store.objects import data_key
from rtvault.store.packreads import spans, verify_objects
from rtvault.store.repository import snapshot_key
from rtvault.store.retention import apply_retention, keep_also, keep_awaiting_archive, keep_last_complete

SEAL_WAIT_S = 600.0  # prune waits this long for a DICOM seal in progress (seconds, usually)


def _digest_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@dataclass
class CheckReport:
    snapshots: int = 0
    trees: int = 0
    objects_referenced: int = 0
    archives: int = 0
    receipts: int = 0  # the DICOM node's receipts
    received_objects: int = 0  # the distinct objects they name
    objects_stored: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    unreferenced: int = 0
    problems: list[Problem] = field(default_factory=list)
    without_integrity: list[str] = field(default_factory=list)  # manifests and archive indexes written before
    # integrity hashes: accepted, but a change to them cannot be seen

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {**{k: v for k, v in self.__dict__.items() if k != "problems"}, "healthy": self.healthy,
                "problems": [p.to_json() for p in self.problems]}


@dataclass(frozen=True)
class Checked(Report):
    """`rtvault check`'s report for a person (what was read, every problem) and its verdict: 7 unless healthy."""

    report: CheckReport
    read_data: bool

    def to_json(self) -> dict[str, object]:
        return self.report.to_json()

    def lines(self) -> Iterable[Line]:
        r = self.report
        yield Line(f"{r.snapshots} snapshots, {r.archives} archives, {r.receipts} DICOM receipts ({r.received_objects} "
                   f"received objects), {r.trees} trees, {r.objects_referenced} objects "
                   f"referenced, {r.objects_stored} stored ({r.unreferenced} unreferenced)"
                   + (f", {r.objects_read} read back ({r.bytes_read / 1e6:.1f} MB)" if self.read_data else ""))
        if r.without_integrity:
            yield Line(f"  note: {len(r.without_integrity)} manifest(s) or archive index(es) written before "
                       "integrity hashes have none, so a change to them cannot be detected: "
                       + ", ".join(r.without_integrity))
        yield from (Line(f"  problem: {problem}") for problem in r.problems)
        if r.healthy:
            yield Line("store is healthy")

    def verdict(self) -> Verdict:
        return OK if self.report.healthy else \
            Verdict.failed(CheckFailed(f"the store has {len(self.report.problems)} problem(s)"))


def _without_integrity(manifests: list[Manifest]) -> list[str]:
    return [snapshot_key(m.id) for m in manifests if m.integrity is None]


def _manifests(store: Store, report: CheckReport) -> list[Manifest]:
    def damaged(key: str, why: str) -> None:
        report.problems.append(Problem(key, f"damaged snapshot manifest: {why}"))

    return store.manifests(damaged)


def referenced(store: Store, manifests: list[Manifest], report: CheckReport) -> tuple[set[str], set[str]]:
    """The trees and objects that the given snapshots need; missing or damaged trees become problems (one for
    each snapshot naming them). Trees are read by a few threads, each once."""
    roots = [(manifest.id, path or "(root files)", digest) for manifest in manifests
             for path, digest in manifest.trees().items()]
    wanted = list(dict.fromkeys(digest for _id, _path, digest in roots))
    with in_threads(wanted, lambda digest, _stop: store.get_tree(digest).hashes()) as done:
        loaded = {outcome.item: outcome for outcome in done}
    trees: set[str] = set()
    objects: set[str] = set()
    for snapshot, path, digest in roots:
        outcome = loaded[digest]
        if isinstance(outcome.error, StoreError):
            report.problems.append(Problem(snapshot_key(snapshot), f"{path}: {outcome.error}"))
        elif outcome.error is not None:
            raise outcome.error
        elif digest not in trees:
            trees.add(digest)
            objects.update(outcome.result or ())
    return trees, objects


def kept_by_backups(store: Store) -> set[str]:
    """The objects snapshots and archives need (what prune keeps besides receipts): a legal destruction of received
    objects never deletes one of them, the same bytes being part of a backup too. StoreError, nothing to delete,
    when a manifest or a tree cannot be read."""
    report = CheckReport()
    manifests = _manifests(store, report)
    _trees, objects = referenced(store, manifests, report)
    if report.problems:
        raise StoreError(f"nothing deleted: {report.problems[0]} (run `rtvault check` and repair first)")
    return objects | archive_objects(store)


def archive_objects(store: Store) -> set[str]:
    """Objects that archives need: the members of gzip archives, stored for random access. Never pruned."""
    return {m.hash for r in records.all_records(store) if r.compression != "none" for m in r.members if m.hash}


def _check_archives(store: Store, report: CheckReport, read_data: bool) -> None:
    for archive_id in records.all_ids(store):
        index_key = records.record_key(archive_id)
        stored = records.document(store, index_key)  # as stored: its integrity hash covers these very fields
        try:
            if not integrity.sealed(stored):
                report.without_integrity.append(index_key)
        except ValueError as error:
            report.problems.append(Problem(index_key, f"damaged archive index: {error}"))
        file = str(stored.get("file", ""))
        key = records.tar_key(archive_id)
        if not store.backend.exists(key):
            report.problems.append(Problem(key, f"missing: archive {file} is gone"))
        elif read_data:
            report.bytes_read += store.backend.size(key)
            if not records.verify_tar(store, archive_id):
                report.problems.append(Problem(key, f"damaged: archive {file} does not match its hash"))
        report.archives += 1


def _check_receipts(store: Store, report: CheckReport) -> dict[str, str]:
    """Every receipt read and checked against its integrity hash (a damaged one is a problem); the objects they
    name, each with the first receipt naming it."""
    named: dict[str, str] = {}
    for ident in receipts.ids(store.backend):
        report.receipts += 1
        try:
            receipt = receipts.load(store.backend, ident)
        except StoreError as error:
            report.problems.append(Problem(receipts.receipt_key(ident), str(error).removeprefix(
                f"{receipts.receipt_key(ident)} in {store.backend.location} is ")))
            continue
        for instance in receipt.instances:
            named.setdefault(instance.hash, ident)
    report.received_objects = len(named)
    return named


def _read_objects(store: Store, digests: list[str], report: CheckReport, progress: Progress) -> None:
    """Re-hash every object on a few threads; damaged ones become problems, in the order of `digests`."""
    damaged: dict[str, StoreError] = {}
    order = [digests[i] for i in read_order(store.backend, digests)]
    progress.begin("Reading every object", len(digests))
    try:  # blobs of a pack read a span at a time (store/packreads.py)
        with in_threads(spans(store.backend, order), lambda run, _stop: verify_objects(store.backend, run)) as done:
            for outcome in done:
                if outcome.error is not None:
                    raise outcome.error
                for digest, result in outcome.result or ():
                    if isinstance(result, StoreError):
                        damaged[digest] = result
                    else:
                        report.bytes_read += result
                        report.objects_read += 1
                    progress.advance()
    finally:
        progress.end()
    for digest in digests:
        if digest in damaged:
            key = data_key(digest)
            report.problems.append(Problem(key, str(damaged[digest]).removeprefix(f"{key} ")))


def check_store(store: Store, *, read_data: bool = False, progress: Progress | None = None) -> CheckReport:
    """Every snapshot's trees and objects exist, every archive's files, every DICOM receipt's objects (the receipts
    checked against their integrity hash); with read_data, every stored object is re-hashed."""
    progress = progress or NoProgress()
    report = CheckReport()
    report.problems.extend(store.layout_problems())  # damaged index files, unreadable pack headers
    manifests = _manifests(store, report)
    report.snapshots = len(manifests)
    report.without_integrity = _without_integrity(manifests)
    trees, needed = referenced(store, manifests, report)
    needed |= archive_objects(store)
    report.trees, report.objects_referenced = len(trees), len(needed)
    _check_archives(store, report, read_data)
    received = _check_receipts(store, report)
    report.objects_referenced = len(needed | set(received))
    stored = {_digest_of(key) for key in store.backend.list("data/")}
    report.objects_stored = len(stored)
    report.unreferenced = len(stored - needed - set(received))
    for digest in sorted(needed - stored):
        report.problems.append(Problem(data_key(digest), "missing: a snapshot needs it"))
    for digest in sorted(set(received) - stored - needed):
        report.problems.append(Problem(data_key(digest), f"missing: DICOM receipt {received[digest]} names it"))
    if read_data:
        _read_objects(store, sorted(stored), report, progress)
    return report


def _manifests_lost(store: Store, manifests: list[Manifest]) -> str | None:
    """Trees without any snapshot manifest: the manifests were lost (snapshots/ deleted, unmounted or replaced),
    since forget never removes the last snapshot. Pruning then would delete every backed-up file."""
    if manifests:
        return None
    trees = sum(1 for _ in store.backend.list("trees/"))
    if not trees:
        return None
    return (f"no snapshot manifest, but {trees} tree(s): the snapshots/ folder is missing or damaged; "
            "repair it from another store (`rtvault verify --all`, `rtvault repair`) before any prune")


@dataclass(frozen=True)
class Forgotten(Refreshed):
    """The snapshots kept (with the rules keeping each) and those forgotten (or, dry, to be forgotten)."""

    dry_run: bool
    keep: tuple[tuple[str, tuple[str, ...]], ...]  # id, reasons
    forget: tuple[str, ...]
    lock_warnings: tuple[Problem, ...] = ()  # the lock's

    def to_json(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "keep": [{"id": id, "reasons": list(why)} for id, why in self.keep],
                "forget": list(self.forget), "warnings": [w.to_json() for w in self.lock_warnings]}

    def lines(self) -> Iterable[Line]:
        yield from (Line(f"keep    {id}  ({', '.join(why)})") for id, why in self.keep)
        yield from (Line(f"{'would forget' if self.dry_run else 'forget'}  {gone}") for gone in self.forget)


@dataclass(frozen=True)
class Pruned(Refreshed):
    """How many unreferenced files were (or, dry, would be) deleted, and the bytes freed."""

    dry_run: bool
    deleted: int
    bytes_freed: int
    duration_s: float
    lock_warnings: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "deleted": self.deleted, "bytes_freed": self.bytes_freed,
                "duration_s": self.duration_s, "warnings": [w.to_json() for w in self.lock_warnings]}

    def lines(self) -> Iterable[Line]:
        verb = "would delete" if self.dry_run else "deleted"
        yield Line(f"{verb} {self.deleted} unreferenced files, {self.bytes_freed / 1e6:.1f} MB")


def forget(config: Config, store: Store, *, dry_run: bool = False) -> Forgotten:
    """Apply the [retention] rules to each source's snapshots apart: remove the manifests of snapshots no rule
    keeps; then refresh the catalog. The last copy of a patient gone from the source and not archived yet is kept
    whatever the rules ("awaiting archive of <path>")."""
    warnings: list[Problem] = []
    with WriterLock(store.backend, "forget", config.backup.lock_lease_seconds, warnings.append):
        manifests = store.manifests()
        decisions = []
        for source in dict.fromkeys(m.source_name for m in manifests):  # each source's own snapshots
            own = [m for m in manifests if m.source_name == source]
            decisions += keep_last_complete(apply_retention([(m.id, utc.parse(m.time)) for m in own],
                                                            config.retention),
                                            {m.id: {p.path: p.incomplete for p in m.patients} for m in own})
        decisions.sort(key=lambda d: d.id, reverse=True)  # newest first, whatever the source
        awaiting: dict[str, list[str]] = {}
        for waiting in pending(store, manifests):
            awaiting.setdefault(waiting.snapshot, []).append(waiting.path)
        decisions = keep_awaiting_archive(decisions, awaiting)
        decisions = keep_also(decisions, _physics_named(store))
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    store.delete_snapshot(decision.id)
    return Forgotten(dry_run, tuple((d.id, tuple(d.reasons)) for d in decisions if d.keep),
                     tuple(d.id for d in decisions if not d.keep), tuple(warnings),
                     catalog=None if dry_run else refresh_quietly(config))


def _physics_named(store: Store) -> dict[str, list[str]]:
    """The physics snapshots an archive records as in force (jobs/machines.py `physics_at`): kept whatever the
    rules, for as long as the archive is, so that its plans can be recomputed with the machines of their date."""
    named: dict[str, list[str]] = {}
    for record in records.summaries(store):
        for physics in record.physics:
            named.setdefault(physics.snapshot, []).append(f"physics in force for archive {record.id[:12]}")
    return named


def prune(config: Config, store: Store, *, dry_run: bool = False) -> Pruned:
    """Delete the trees and objects that no snapshot references any more; then refresh the catalog."""
    started = time.monotonic()
    warnings: list[Problem] = []
    report = CheckReport()
    with WriterLock(store.backend, "prune", config.backup.lock_lease_seconds, warnings.append) as lock, \
            WriterLock(store.backend, "prune", config.backup.lock_lease_seconds, warnings.append,
                       key=receipts.SEAL_LOCK, wait_s=SEAL_WAIT_S):  # no DICOM seal writes objects meanwhile
        store.backend.clean_staging(0, time.time())
        manifests = _manifests(store, report)
        if lost := _manifests_lost(store, manifests):
            raise StoreError(f"prune stopped before deleting anything: {lost}")
        trees, objects = referenced(store, manifests, report)
        objects |= archive_objects(store)
        received, damaged = receipts.referenced(store.backend)
        objects |= received  # received DICOM objects: only legal destruction removes them
        if damaged:
            raise StoreError(f"prune stopped before deleting anything: {damaged[0]} (run `rtvault check` and "
                             "repair first)")
        if report.problems:
            raise StoreError(f"prune stopped before deleting anything: {report.problems[0]} "
                             "(run `rtvault check` and repair first)")
        doomed = [k for k in store.backend.list("data/") if _digest_of(k) not in objects]
        doomed += [k for k in store.backend.list("trees/") if _digest_of(k) not in trees]
        freed = sum(store.backend.size(k) for k in doomed)
        if not dry_run:
            for count, key in enumerate(doomed):
                if count % 256 == 0:
                    lock.ensure_held()
                store.backend.delete(key)
            lock.ensure_held()
            store.backend.barrier()  # a packed store drops deleted blobs only when it writes its new index
    return Pruned(dry_run, len(doomed), freed, round(time.monotonic() - started, 3), tuple(warnings),
                  catalog=None if dry_run else refresh_quietly(config))

