"""Migrating a version 1 store to version 2 in place (docs/design.md, "Store format 2 and migration").

Safe to kill and to run again at any point: every loose object and tree small enough to be a blob is read,
checked against its name and written into packs; once the packs and their index are durable, the format file
says version 2; only then are the loose copies deleted. Until the format file changes, a version 1 reader
sees the loose files, all still there; after it, a version 2 reader finds each blob in its pack (and a loose
copy not yet deleted is merely redundant). A damaged object is left where it is, loose, and named: verify and
repair heal it from another store as before.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from rtvault import __version__, utc
from rtvault.errors import Problem, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.store.objects import decode
from rtvault.store.packfile import BLOB_MAX, PACKED
from rtvault.store.packs import PackedBackend
from rtvault.store.repository import FORMAT_FILE, Store, decode_tree


@dataclass
class MigrateReport:
    store: str
    from_version: int
    to_version: int = 2
    objects_packed: int = 0
    trees_packed: int = 0
    bytes_packed: int = 0
    kept_loose: int = 0  # objects larger than a blob keep their own file
    loose_removed: int = 0
    duration_s: float = 0.0
    damaged: list[Problem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.damaged

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "damaged": [p.to_json() for p in self.damaged], "complete": self.complete}


def _check(key: str, data: bytes) -> None:
    """StoreError unless a loose file's bytes, read once, match its name (as every reader checks them)."""
    digest = key.rsplit("/", 1)[-1]
    if key.startswith("data/"):
        for _block in decode(io.BytesIO(data), key, digest):
            pass
    else:
        decode_tree(data, digest)


def migrate(store: Store, ensure_held: Callable[[], None], progress: Progress | None = None) -> MigrateReport:
    """Bring `store` to version 2 (the caller holds its writer lock; `ensure_held` checks it still does)."""
    progress = progress or NoProgress()
    started, base = time.monotonic(), store.base
    report = MigrateReport(store.location, store.version)
    packed = store.backend if isinstance(store.backend, PackedBackend) else PackedBackend(base)
    loose = sorted(key for prefix in PACKED for key in base.list(prefix))
    redundant = []
    progress.begin("Packing objects and trees", len(loose))
    try:
        for key in loose:
            progress.advance()
            if packed.where_of(key) is not None:
                redundant.append(key)  # packed by an earlier, interrupted run
                continue
            if base.size(key) > BLOB_MAX:
                report.kept_loose += 1
                continue
            data = base.get(key)
            try:
                _check(key, data)
            except StoreError as error:
                report.damaged.append(Problem(key, str(error).removeprefix(f"{key} ")))
                continue
            packed.add(key, data, loose_too=True)
            redundant.append(key)
            report.bytes_packed += len(data)
            if key.startswith("data/"):
                report.objects_packed += 1
            else:
                report.trees_packed += 1
    finally:
        progress.end()
    packed.flush()  # packs, then their index, durable before anything relies on them
    if store.version == 1:
        ensure_held()
        info = {**store.info, "version": 2, "migrated": utc.now_iso(),
                "migrated_by": f"rtvault {__version__}"}
        base.replace(FORMAT_FILE, json.dumps(info, indent=2).encode() + b"\n")
        base.barrier()
    for count, key in enumerate(redundant):
        if count % 256 == 0:
            ensure_held()
        base.delete(key)
        report.loose_removed += 1
    base.barrier()
    report.duration_s = round(time.monotonic() - started, 3)
    return report
