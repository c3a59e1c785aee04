"""Replication: copy what a target store lacks from its source, so that every byte is on two stores.

Written purely against the `Backend` interface, so a target (or source) on S3 works as one on a directory.
The write order keeps the target a valid store at every instant (docs/design.md, "Replication"):
1. content first: objects (`data/`), trees and archive files, in parallel. Each is checked while it is read
   from the source (a damaged source file is refused, never propagated), committed, then re-read on the
   target and re-hashed (a bad copy is deleted and reported);
2. `barrier()`: every copied rename is durable;
3. archive checksums, summaries and overrides, and run journal segments (checked first), then archive indexes,
   snapshot manifests and the DICOM node's receipts (`dicom/receipts/`, checked first), each only once
   everything it names is on the target;
4. `copies/<source-id>.json`: when, from where and how much, written last.
A run killed anywhere leaves copied content that no manifest names yet; the next run lists both stores and
copies only what is still missing.
The files of an archive that either store records as destroyed (`archives/destroyed/<id>.json`) are never
copied: a legal destruction is not undone by a store that was offline. The record itself is copied, and a
target still holding the archive says so (`pending_destruction`); the job removes it (jobs/destruction.py).
Likewise a legal destruction of received DICOM objects (`dicom/destroyed/<id>.json`, in either store): its
record is copied, its objects are never copied (unless a receipt not listed names one: received anew since), and
the receipts it lists are copied only as rewritten without them, never the older version a store that was
offline kept; the job then carries the destruction on (jobs/dicom_destruction.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO, cast

from rtvault import utc
from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord
from rtvault.errors import Problem, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.store import Store, integrity, journal, receipts
from rtvault.store.backend import Backend
from rtvault.store.formats import Manifest
from rtvault.store.locks import WriterLock
from rtvault.store.objects import BLOCK, data_key, verify_object
from rtvault.store.repository import decode_tree, parse_manifest, tree_key

WORKERS = 4  # reading, hashing and zstd release the GIL; measured in bench/replicate.py
REPLICATED = ("data/", "trees/", "archives/", "snapshots/", "journal/", receipts.RECEIPTS, receipts.DESTROYED)
# never locks/, tmp/,
# copies/, the DICOM node's spool (dicom/spool/, its own until sealed) or the format file
CONTENT = ("data/", "trees/", "archives/tars/")


def copies_key(source_id: str) -> str:
    """Where a target records the replications it received from one source store."""
    return f"copies/{source_id}.json"


@dataclass
class ReplicateSummary:
    source: str
    target: str
    objects_copied: int = 0
    trees_copied: int = 0
    tars_copied: int = 0
    bytes_copied: int = 0
    snapshots_copied: int = 0
    archives_copied: int = 0
    journal_copied: int = 0  # run journal segments
    receipts_copied: int = 0  # the DICOM node's receipts (their received objects are counted in objects_copied)
    duration_s: float = 0.0
    lag_snapshots: int = 0  # snapshots of the source still missing on the target after the run
    lag_archives: int = 0
    lag_age_s: float | None = None  # age of the newest snapshot still missing
    lag_receipts: int = 0  # receipts of the source still missing on the target after the run
    pending_destruction: list[str] = field(default_factory=list)  # destroyed archives the target still holds
    destroyed_skipped: int = 0  # files of archives the target records as destroyed: never copied back
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems and not self.lag_snapshots and not self.lag_archives and not self.lag_receipts

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["problems"] = [p.to_json() for p in self.problems]
        data["warnings"] = [w.to_json() for w in self.warnings]
        data["complete"] = self.complete
        return data


class _Tee:
    """A source file whose bytes are also written to a sink as they are read: the object is checked by
    `verify_object` in the same pass that copies it. Supports the one seek back `read_object` makes."""

    def __init__(self, raw: BinaryIO, sink: BinaryIO) -> None:
        self.raw, self.sink = raw, sink
        self.position = self.written = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.position + len(data) > self.written:
            self.sink.write(data[self.written - self.position:])
            self.written = self.position + len(data)
        self.position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        self.position = self.raw.seek(offset)
        return self.position

    def __enter__(self) -> _Tee:
        return self

    def __exit__(self, failed: object, *_exc: object) -> None:
        while failed is None and self.read(BLOCK):  # whatever follows the last frame is copied too
            pass
        self.raw.close()


class _TeeBackend:
    """Just enough of a Backend for `verify_object`: opening the one key yields the tee."""

    def __init__(self, source: Backend, sink: BinaryIO) -> None:
        self.source, self.sink = source, sink
        self.location = source.location
        self.tee: _Tee | None = None

    def open(self, key: str) -> _Tee:
        self.tee = _Tee(self.source.open(key), self.sink)
        return self.tee


def _copy_object(source: Backend, target: Backend, digest: str) -> int:
    staged = target.stage()
    tee = _TeeBackend(source, staged.file)
    try:
        verify_object(cast(Backend, tee), digest)  # StoreError: damaged on the source, nothing committed
    except BaseException:
        staged.discard()
        raise
    staged.commit(data_key(digest))
    return tee.tee.written if tee.tee else 0


def _copy_tree(source: Backend, target: Backend, digest: str) -> int:
    raw = source.get(tree_key(digest))
    _check_tree(raw, digest)
    target.put(tree_key(digest), raw)
    return len(raw)


def _check_tree(raw: bytes, digest: str) -> None:
    decode_tree(raw, digest)


def _copy_tar(source: Backend, target: Backend, archive_id: str) -> int:
    key = records.tar_key(archive_id)
    hasher, size = hashlib.sha256(), 0
    staged = target.stage()
    try:
        with source.open(key) as raw:
            while block := raw.read(BLOCK):
                hasher.update(block)
                staged.file.write(block)
                size += len(block)
        if hasher.hexdigest() != archive_id:
            raise StoreError(f"{key} is damaged: its content does not match its name")
    except BaseException:
        staged.discard()
        raise
    staged.commit(key)
    return size


def _check_tar(target: Backend, archive_id: str) -> None:
    if not records.verify_tar(Store(target, {}), archive_id):
        raise StoreError(f"{records.tar_key(archive_id)} is damaged: its content does not match its name")


# per kind of content: copy from the source (checking what is read), then re-check the copy on the target
_KINDS = {
    "data/": (_copy_object, verify_object),
    "trees/": (_copy_tree, lambda target, digest: _check_tree(target.get(tree_key(digest)), digest)),
    "archives/tars/": (_copy_tar, _check_tar),
}


def copy_content(source: Backend, target: Backend, key: str) -> tuple[str, int, Problem | None]:
    """Copy one content file; (key, bytes copied, problem). A bad copy is deleted so that the next run retries."""
    copy, check = next(kind for prefix, kind in _KINDS.items() if key.startswith(prefix))
    name = key.rsplit("/", 1)[-1]
    try:
        size = copy(source, target, name)
    except StoreError as error:
        return key, 0, Problem(key, f"not copied, damaged on the source {source.location}: "
                                    f"{str(error).removeprefix(key + ' ')}")
    try:
        check(target, name)
    except StoreError as error:
        target.delete(key)
        return key, 0, Problem(key, f"the copy on {target.location} read back wrong and was deleted: "
                                    f"{str(error).removeprefix(key + ' ')}")
    return key, size, None


def _keys(backend: Backend) -> set[str]:
    return {key for prefix in REPLICATED for key in backend.list(prefix)}


def _copy_content(source: Store, target: Store, keys: list[str], summary: ReplicateSummary,
                  progress: Progress) -> set[str]:
    """Copy content files in parallel; returns the keys now good on the target."""
    copied = set()
    progress.begin(f"Copying to {target.location}", len(keys))
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            for key, size, problem in pool.map(lambda k: copy_content(source.backend, target.backend, k), keys):
                progress.advance()
                if problem is not None:
                    summary.problems.append(problem)
                    continue
                copied.add(key)
                summary.bytes_copied += size
                summary.objects_copied += key.startswith("data/")
                summary.trees_copied += key.startswith("trees/")
                summary.tars_copied += key.startswith("archives/tars/")
    finally:
        progress.end()
    return copied


def _copy_file(source: Store, target: Store, key: str, summary: ReplicateSummary) -> bytes:
    data = source.backend.get(key)
    target.backend.put(key, data)
    summary.bytes_copied += len(data)
    return data


class _Present:
    """What the target holds, and which of its trees name only objects it holds (read once each)."""

    def __init__(self, target: Store, keys: set[str]) -> None:
        self.target, self.keys = target, keys
        self.trees: dict[str, str | None] = {}  # digest: None when whole, else the first thing missing

    def tree_lacks(self, digest: str) -> str | None:
        if digest not in self.trees:
            self.trees[digest] = self._lacks(digest)
        return self.trees[digest]

    def _lacks(self, digest: str) -> str | None:
        if tree_key(digest) not in self.keys:
            return tree_key(digest)
        try:
            tree = self.target.get_tree(digest)
        except StoreError:
            return tree_key(digest)
        return next((data_key(f.hash) for f in tree.files if data_key(f.hash) not in self.keys), None)


def _snapshot_lacks(manifest: Manifest, present: _Present) -> str | None:
    return next((lack for digest in manifest.trees().values() if (lack := present.tree_lacks(digest))), None)


def _archive_lacks(record: ArchiveRecord, present: _Present) -> str | None:
    needed = [records.tar_key(record.id)]
    if record.compression != "none":  # the members of a gzip archive are objects too
        needed += [data_key(m.hash) for m in record.members if m.hash]
    return next((key for key in needed if key not in present.keys), None)


@dataclass(frozen=True)
class _Gone:
    """What the legal destructions of received objects recorded in either store removed."""

    objects: frozenset[str] = frozenset()
    receipts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *stores: Store) -> _Gone:
        found = [r for s in stores for r in receipts.destroyed(s.backend)]
        return cls(frozenset(str(h) for r in found for h in r["objects"]),
                   frozenset(str(i) for r in found for i in r["receipts"]))


def _copy_indexes(source: Store, target: Store, missing: list[str], present: _Present,
                  summary: ReplicateSummary, gone: _Gone = _Gone()) -> set[str]:
    """Archive side files, then archive indexes and snapshot manifests whose content is all on the target; the
    receipts left behind as their version before a legal destruction are returned."""
    skipped: set[str] = set()
    for key in missing:
        if key.startswith(receipts.DESTROYED) or (key.startswith("archives/") and not _is_record(key)
                                                  and not key.startswith(CONTENT)):
            _copy_file(source, target, key, summary)
            present.keys.add(key)
        elif key.startswith(journal.FOLDER):
            _copy_segment(source, target, key, summary)
    for key in [k for k in missing if _is_record(k) or k.startswith(("snapshots/", receipts.RECEIPTS))]:
        try:
            if key.startswith("snapshots/"):  # a manifest changed since written (its integrity hash) stays behind
                lack = _snapshot_lacks(parse_manifest(source.backend.get(key)), present)
            elif key.startswith(receipts.RECEIPTS):  # so does a receipt
                receipt = receipts.load(source.backend, _receipt_id(key))
                if receipt.id in gone.receipts and any(i.hash in gone.objects for i in receipt.instances):
                    summary.destroyed_skipped += 1  # the version before a legal destruction: never copied back
                    skipped.add(key)
                    continue
                if revived := [i.hash for i in receipt.instances if i.hash in gone.objects
                               and data_key(i.hash) not in present.keys]:  # received anew since the destruction
                    for digest in revived:
                        _key, size, problem = copy_content(source.backend, target.backend, data_key(digest))
                        if problem is None:
                            present.keys.add(data_key(digest))
                            summary.bytes_copied += size
                            summary.objects_copied += 1
                    target.backend.barrier()
                lack = _receipt_lacks(receipt, present)
            else:
                lack = _archive_lacks(ArchiveRecord.from_json(integrity.parse(source.backend.get(key))), present)
        except (ValueError, KeyError, TypeError, AttributeError, StoreError) as error:
            summary.problems.append(Problem(key, f"not copied, unreadable on the source {source.location}: {error}"))
            continue
        if lack is not None:
            summary.problems.append(Problem(key, f"not copied yet: {lack} is not on {target.location}"))
            continue
        _copy_file(source, target, key, summary)
        present.keys.add(key)
        summary.snapshots_copied += key.startswith("snapshots/")
        summary.archives_copied += _is_record(key)
        summary.receipts_copied += key.startswith(receipts.RECEIPTS)
    return skipped


def _receipt_id(key: str) -> str:
    return key.removeprefix(receipts.RECEIPTS).removesuffix(".json")


def _receipt_lacks(receipt: receipts.Receipt, present: _Present) -> str | None:
    return next((data_key(i.hash) for i in receipt.instances if data_key(i.hash) not in present.keys), None)


def _copy_segment(source: Store, target: Store, key: str, summary: ReplicateSummary) -> None:
    """A run journal segment, checked on the source first: a damaged one is not propagated."""
    data = source.backend.get(key)
    try:
        journal.decode(data, key)
    except ValueError as error:
        summary.problems.append(Problem(key, f"not copied, damaged on the source {source.location}: {error}"))
        return
    target.backend.put(key, data)
    summary.bytes_copied += len(data)
    summary.journal_copied += 1


def _archive_of(key: str) -> str | None:
    """The archive a file of its own belongs to (index, summary, checksums, archive file), None for any other key:
    a destroyed archive's files are never copied, its record of destruction and overrides are."""
    if not key.startswith("archives/") or key.startswith(("archives/destroyed/", "archives/overrides/")):
        return None
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


def _is_record(key: str) -> bool:
    return key.startswith("archives/") and key.endswith(".json") and key.count("/") == 1


def _manifest_time(source: Store, key: str) -> datetime | None:
    try:
        return utc.parse(json.loads(source.backend.get(key))["time"])
    except (ValueError, KeyError, StoreError):
        return None


def _lag(source: Store, wanted: set[str], present: set[str], summary: ReplicateSummary) -> None:
    missing = sorted(k for k in wanted - present if k.startswith("snapshots/"))
    summary.lag_snapshots = len(missing)
    summary.lag_archives = sum(1 for k in wanted - present if _is_record(k))
    summary.lag_receipts = sum(1 for k in wanted - present if k.startswith(receipts.RECEIPTS))
    times = [t for t in (_manifest_time(source, k) for k in missing) if t is not None]
    if times:
        summary.lag_age_s = round((datetime.now(UTC) - max(times)).total_seconds(), 1)


def _record(source: Store, target: Store, summary: ReplicateSummary) -> None:
    data = {"source_id": source.info.get("id"), "source": source.location, "target_id": target.info.get("id"),
            "time": utc.now_iso(), **summary.to_json()}
    key, text = copies_key(str(source.info.get("id"))), json.dumps(data, indent=1).encode() + b"\n"
    if target.backend.exists(key):  # the one file a replication rewrites, atomically
        target.backend.replace(key, text)
    else:
        target.backend.put(key, text, durable=True)


def load_record(target: Store) -> list[dict]:
    """The replications a store received, one record per source store (newest first)."""
    found = []
    for key in target.backend.list("copies/"):
        try:
            found.append(json.loads(target.backend.get(key)))
        except (ValueError, StoreError):
            continue
    return sorted(found, key=lambda r: r.get("time", ""), reverse=True)


def replicate(source: Store, target: Store, progress: Progress | None = None, *,
              lease_s: float = 900) -> ReplicateSummary:
    """Copy to `target` every object, tree, archive, snapshot and DICOM receipt of `source` it lacks
    (docs/design.md)."""
    if source.location == target.location:
        raise StoreError(f"cannot replicate {source.location} onto itself")
    started = time.monotonic()
    summary = ReplicateSummary(source.location, target.location)
    with WriterLock(target.backend, "replicate", lease_s, summary.warnings.append) as lock:
        target.backend.clean_staging(0, time.time())  # type: ignore[attr-defined]
        gone = set(records.destroyed_ids(source)) | set(records.destroyed_ids(target))
        offered = _keys(source.backend)
        received_gone = _Gone.of(source, target)
        wanted = {key for key in offered if _archive_of(key) not in gone  # never copied back
                  and not (key.startswith("data/") and key.rsplit("/", 1)[-1] in received_gone.objects)}
        summary.destroyed_skipped = len(offered) - len(wanted)
        have = _keys(target.backend)
        summary.pending_destruction = sorted(a for a in gone if records.holds(target, a))
        missing = sorted(wanted - have)
        have |= _copy_content(source, target, [k for k in missing if k.startswith(CONTENT)], summary,
                              progress or NoProgress())
        target.backend.barrier()  # every copied object, tree and archive file is durable before an index names it
        lock.ensure_held()
        skipped = _copy_indexes(source, target, missing, _Present(target, have), summary, received_gone)
        target.backend.barrier()
        _lag(source, wanted - skipped, have, summary)
        summary.duration_s = round(time.monotonic() - started, 3)
        _record(source, target, summary)
    return summary
