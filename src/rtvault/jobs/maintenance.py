"""`rtvault check`, `rtvault forget` and `rtvault prune`: the store's health and its retention.

`forget` removes snapshot manifests that no retention rule keeps; `prune` then deletes the trees and objects
that no remaining snapshot references. Both hold the writer lock, so a backup never races them. Deleting
only ever removes unreferenced files, one at a time, so a prune killed at any point leaves a valid store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from rtvault.archive import records
from rtvault.config import Config
from rtvault.errors import Problem, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.jobs.archives import pending
from rtvault.store import Store, integrity
from rtvault.store.locks import WriterLock
from rtvault.store.objects import data_key, verify_object
from rtvault.store.repository import snapshot_key
from rtvault.store.retention import apply_retention, keep_awaiting_archive, keep_last_complete


def _digest_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@dataclass
class CheckReport:
    snapshots: int = 0
    trees: int = 0
    objects_referenced: int = 0
    archives: int = 0
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


def _without_integrity(manifests: list[dict]) -> list[str]:
    return [snapshot_key(m["id"]) for m in manifests if integrity.FIELD not in m]


def _manifests(store: Store, report: CheckReport) -> list[dict]:
    def damaged(key: str, why: str) -> None:
        report.problems.append(Problem(key, f"damaged snapshot manifest: {why}"))

    return store.manifests(damaged)


def referenced(store: Store, manifests: list[dict], report: CheckReport) -> tuple[set[str], set[str]]:
    """The trees and objects that the given snapshots need; missing or damaged trees become problems."""
    trees: set[str] = set()
    objects: set[str] = set()
    for manifest in manifests:
        roots = [(p["path"], p["tree"]) for p in manifest["patients"]]
        if manifest.get("other"):
            roots.append(("(root files)", manifest["other"]["tree"]))
        for path, digest in roots:
            if digest in trees:
                continue
            try:
                tree = store.get_tree(digest)
            except StoreError as error:
                report.problems.append(Problem(f"snapshots/{manifest['id']}.json", f"{path}: {error}"))
                continue
            trees.add(digest)
            objects.update(f["hash"] for f in tree["files"])
    return trees, objects


def archive_objects(store: Store) -> set[str]:
    """Objects that archives need: the members of gzip archives, stored for random access. Never pruned."""
    return {m["hash"] for r in records.all_records(store) if r["compression"] != "none"
            for m in r["members"] if m.get("hash")}


def _check_archives(store: Store, report: CheckReport, read_data: bool) -> None:
    for record in records.all_records(store):
        try:
            if not integrity.sealed(record):
                report.without_integrity.append(records.record_key(record["id"]))
        except ValueError as error:
            report.problems.append(Problem(records.record_key(record["id"]), f"damaged archive index: {error}"))
        key = records.tar_key(record["id"])
        if not store.backend.exists(key):
            report.problems.append(Problem(key, f"missing: archive {record['file']} is gone"))
        elif read_data:
            report.bytes_read += store.backend.size(key)
            if not records.verify_tar(store, record["id"]):
                report.problems.append(Problem(key, f"damaged: archive {record['file']} does not match its hash"))
        report.archives += 1


def check_store(store: Store, *, read_data: bool = False, progress: Progress | None = None) -> CheckReport:
    """Every snapshot's trees and objects exist; with read_data, every stored object is re-hashed."""
    progress = progress or NoProgress()
    report = CheckReport()
    manifests = _manifests(store, report)
    report.snapshots = len(manifests)
    report.without_integrity = _without_integrity(manifests)
    trees, needed = referenced(store, manifests, report)
    needed |= archive_objects(store)
    report.trees, report.objects_referenced = len(trees), len(needed)
    _check_archives(store, report, read_data)
    stored = {_digest_of(key) for key in store.backend.list("data/")}
    report.objects_stored = len(stored)
    report.unreferenced = len(stored - needed)
    for digest in sorted(needed - stored):
        report.problems.append(Problem(data_key(digest), "missing: a snapshot needs it"))
    if read_data:
        progress.begin("Reading every object", len(stored))
        try:
            for digest in sorted(stored):
                try:
                    report.bytes_read += verify_object(store.backend, digest)
                    report.objects_read += 1
                except StoreError as error:
                    key = data_key(digest)
                    report.problems.append(Problem(key, str(error).removeprefix(f"{key} ")))
                progress.advance()
        finally:
            progress.end()
    return report


def _manifests_lost(store: Store, manifests: list[dict]) -> str | None:
    """Trees without any snapshot manifest: the manifests were lost (snapshots/ deleted, unmounted or replaced),
    since forget never removes the last snapshot. Pruning then would delete every backed-up file."""
    if manifests:
        return None
    trees = sum(1 for _ in store.backend.list("trees/"))
    if not trees:
        return None
    return (f"no snapshot manifest, but {trees} tree(s): the snapshots/ folder is missing or damaged; "
            "repair it from another store (`rtvault verify --all`, `rtvault repair`) before any prune")


def forget(config: Config, store: Store, *, dry_run: bool = False) -> dict[str, object]:
    """Apply the [retention] rules: remove the manifests of snapshots no rule keeps. The last copy of a patient
    gone from the source and not archived yet is kept whatever the rules ("awaiting archive of <path>")."""
    warnings: list[Problem] = []
    with WriterLock(store.backend, "forget", config.backup.lock_lease_seconds, warnings.append):
        manifests = store.manifests()
        times = [(m["id"], datetime.fromisoformat(m["time"].replace("Z", "+00:00"))) for m in manifests]
        decisions = keep_last_complete(apply_retention(times, config.retention), {
            m["id"]: {p["path"]: bool(p.get("incomplete")) for p in m["patients"]} for m in manifests})
        awaiting: dict[str, list[str]] = {}
        for waiting in pending(store, manifests):
            awaiting.setdefault(waiting.snapshot, []).append(waiting.path)
        decisions = keep_awaiting_archive(decisions, awaiting)
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    store.delete_snapshot(decision.id)
    return {
        "dry_run": dry_run,
        "keep": [{"id": d.id, "reasons": list(d.reasons)} for d in decisions if d.keep],
        "forget": [d.id for d in decisions if not d.keep],
        "warnings": [w.to_json() for w in warnings],
    }


def prune(config: Config, store: Store, *, dry_run: bool = False) -> dict[str, object]:
    """Delete the trees and objects that no snapshot references any more."""
    started = time.monotonic()
    warnings: list[Problem] = []
    report = CheckReport()
    with WriterLock(store.backend, "prune", config.backup.lock_lease_seconds, warnings.append) as lock:
        store.backend.clean_staging(0, time.time())
        manifests = _manifests(store, report)
        if lost := _manifests_lost(store, manifests):
            raise StoreError(f"prune stopped before deleting anything: {lost}")
        trees, objects = referenced(store, manifests, report)
        objects |= archive_objects(store)
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
    return {"dry_run": dry_run, "deleted": len(doomed), "bytes_freed": freed,
            "duration_s": round(time.monotonic() - started, 3), "warnings": [w.to_json() for w in warnings]}

