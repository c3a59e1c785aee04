"""Removable disks: prepare one (`init`), copy to it the archives it lacks with recovery data (`sync`), re-read
and repair it (`verify`), and list them all (`list`). The format on the disk is copies/volume_disk.py; what the
catalog records of each disk is catalog/volumes.py.

The disk is the truth about what it holds: every sync and verify reads its archives/ folder and the catalog's
record follows. A disk that is not mounted (no `rtvault-volume.json` with its UUID at its last path or at the
`--path` given) is reported as such (a StoreError, exit code 8), never read as an empty disk.
"""

from __future__ import annotations

import errno
import fcntl
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rtvault.archive import records
from rtvault.catalog import destructions
from rtvault.catalog import volumes as catalog_volumes
from rtvault.catalog.db import Catalog
from rtvault.catalog.indexer import place_volume_copies
from rtvault.catalog.volumes import Held, Volume
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store, store_name
from rtvault.copies import volume_disk as disk
from rtvault.copies.volume_disk import Checked, OnDisk
from rtvault.errors import ExitCode, InputError, LockBusy, StoreError
from rtvault.events import NoProgress, Progress
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.utc import iso, now_iso

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOLERATED = {"lost+found"}  # what mkfs leaves on a fresh ext4 disk
_MARGIN = 1.15  # recovery data (10 %) and file system overhead on top of an archive's size


@dataclass
class SyncReport(Report):
    volume: str
    path: str
    store: str
    copied: list[OnDisk] = field(default_factory=list)
    already: int = 0
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    destroyed: list[str] = field(default_factory=list)  # archives pending destruction removed from the disk

    def to_json(self) -> dict[str, object]:
        return {"volume": self.volume, "path": self.path, "store": self.store,
                "copied": [{"archive": c.archive, "file": c.file, "bytes": c.bytes} for c in self.copied],
                "bytes_copied": sum(c.bytes for c in self.copied), "already": self.already,
                "problems": self.problems, "duration_s": self.duration_s, "destroyed": self.destroyed}

    def lines(self) -> Iterable[Line]:
        size = sum(c.bytes for c in self.copied) / 1e6
        yield from (Line(f"destroyed archive {a} on {self.volume} (legal destruction pending there)")
                    for a in self.destroyed)
        yield Line(f"{self.volume} ({self.path}): {len(self.copied)} archive(s) copied from {self.store} "
                   f"({size:.1f} MB), {self.already} already there, in {self.duration_s:.1f} s")
        yield from (err(note) for note in self.notes())

    def notes(self) -> Iterable[str]:
        return [f"rtvault: problem: {problem}" for problem in self.problems]

    def verdict(self) -> Verdict:
        """Exit code 7 when an archive could not be copied."""
        return Verdict.unless(self.problems, ExitCode.CHECK_FAILED)


@dataclass
class VerifyReport(Report):
    volume: str
    path: str
    archives: list[Checked] = field(default_factory=list)
    duration_s: float = 0.0
    destroyed: list[str] = field(default_factory=list)  # archives pending destruction removed from the disk

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.archives)

    @property
    def healthy(self) -> bool:
        return self.count("unrepairable") == 0

    def to_json(self) -> dict[str, object]:
        return {"volume": self.volume, "path": self.path, "archives": [c.to_json() for c in self.archives],
                **{o: self.count(o) for o in ("ok", "repaired", "unrepairable")}, "healthy": self.healthy,
                "duration_s": self.duration_s, "destroyed": self.destroyed}

    def lines(self) -> Iterable[Line]:
        yield from (Line(f"destroyed archive {a} on {self.volume} (legal destruction pending there)")
                    for a in self.destroyed)
        yield Line(f"{self.volume} ({self.path}): {self.count('ok')} ok, {self.count('repaired')} repaired, "
                   f"{self.count('unrepairable')} unrepairable, in {self.duration_s:.1f} s")
        for checked in self.archives:
            if checked.outcome != "ok" or checked.detail:
                yield Line(f"  {checked.outcome:<12} {checked.archive[:12]} {checked.detail}")

    def verdict(self) -> Verdict:
        """Exit code 7 when something could not be repaired."""
        return Verdict.unless(not self.healthy, ExitCode.CHECK_FAILED)


def read_identity(path: Path) -> dict | None:
    """The disk's rtvault-volume.json, None when there is none (an InputError when it is unreadable)."""
    try:
        data = json.loads((path / disk.VOLUME_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise InputError(f"{path / disk.VOLUME_FILE} is unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("format") != disk.FORMAT or not data.get("uuid"):
        raise InputError(f"{path / disk.VOLUME_FILE} is not an rtvault volume file")
    return data


def init_volume(config: Config, path: Path, label: str) -> Volume:
    """Prepare the mounted disk at `path` (an empty directory, or this same volume again) and record it."""
    if not LABEL.fullmatch(label):
        raise InputError(f"label {label!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit")
    if not path.is_dir():
        raise InputError(f"{path} is not a directory: mount the disk and give its mount point")
    identity = read_identity(path)
    if identity is not None and identity.get("label") != label:
        raise InputError(f"{path} is already rtvault volume {identity.get('label')!r}: give that label")
    if identity is None:
        extra = sorted(p.name for p in path.iterdir() if p.name not in _TOLERATED)
        if extra:
            raise InputError(f"{path} is not empty ({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}): "
                             "give an empty disk or folder")
        identity = {"format": disk.FORMAT, "version": disk.FORMAT_VERSION, "label": label,
                    "uuid": str(uuid.uuid4()), "created": now_iso()}
    volume = Volume(label, identity["uuid"], str(path.resolve()), identity["created"], last_seen=now_iso())
    with open_catalog_for(config) as catalog:
        catalog_volumes.register(catalog, volume)  # a label taken by another disk is refused before writing
        disk.write_atomically(path / disk.VOLUME_FILE, json.dumps(identity, indent=1).encode() + b"\n")
        disk.write_atomically(path / disk.README, disk.README_TEXT.encode("utf-8"))
        _record(catalog, volume, path, _described(catalog, volume, path, {}))
        return catalog_volumes.find(catalog, label)


def is_mounted(volume: Volume, path: Path | None = None) -> bool:
    try:
        identity = read_identity(path or Path(volume.path))
    except (InputError, OSError):
        return False
    return identity is not None and identity.get("uuid") == volume.uuid


def _mounted(volume: Volume, path: Path | None) -> Path:
    where = path or Path(volume.path)
    if not is_mounted(volume, where):
        raise StoreError(f"volume {volume.label} is not mounted at {where} (no rtvault-volume.json with UUID "
                         f"{volume.uuid} there): plug the disk in, or give --path where it is mounted")
    return where


@contextmanager
def _locked(root: Path, label: str) -> Iterator[None]:
    """One sync or verify at a time per disk; the kernel drops the lock when the process dies."""
    with open(root / disk.VOLUME_FILE, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(f"volume {label} is being synced or verified by another process") from None
        yield


def _described(catalog: Catalog, volume: Volume, root: Path, fresh: dict[str, Held]) -> list[Held]:
    """What the disk holds now: the catalog's record of each archive folder when it has one, `fresh` for those
    just written or verified, else (a catalog rebuilt or lost) what the folder itself says."""
    known = catalog_volumes.held(catalog, volume.label)
    present = []
    for archive_id in disk.complete_archives(root):
        held = fresh.get(archive_id) or known.get(archive_id)
        if held is None:
            folder = root / disk.ARCHIVES / archive_id
            found = disk.describe(folder, archive_id)
            copied = iso(datetime.fromtimestamp(folder.stat().st_mtime, UTC))
            held = Held(archive_id, found.file if found else "", found.bytes if found else 0, copied)
        present.append(held)
    return present


def _record(catalog: Catalog, volume: Volume, root: Path, present: list[Held], *, verified: bool = False) -> None:
    catalog_volumes.record_disk(catalog, volume.label, str(root.resolve()), now_iso(), present,
                                verified=verified)
    place_volume_copies(catalog)


def sync_volume(config: Config, label: str, *, store: str | None = None, path: Path | None = None,
                progress: Progress | None = None) -> SyncReport:
    """Copy to the volume every archive of the store (the primary by default) that it lacks."""
    progress = progress or NoProgress()
    started = time.monotonic()
    with open_catalog_for(config) as catalog:
        volume = catalog_volumes.find(catalog, label)
        root = _mounted(volume, path)
        name = store_name(config, store)
        source = open_store(config, name)
        report = SyncReport(label, str(root), name)
        with _locked(root, label):
            disk.clear_tmp(root)
            if not (root / disk.README).is_file() or (root / disk.README).read_text("utf-8") != disk.README_TEXT:
                disk.write_atomically(root / disk.README, disk.README_TEXT.encode("utf-8"))
            report.destroyed = remove_destroyed(catalog, label, root)
            have = set(disk.complete_archives(root))
            gone = destructions.destroyed_ids(catalog)  # never copied back from a store that still holds one
            wanted = [a for a in records.all_ids(source) if a not in have and a not in gone]
            report.already = len(set(records.all_ids(source)) & have)
            fresh = _copy_all(source, wanted, root, report, progress)
            _record(catalog, volume, root, _described(catalog, volume, root, fresh))
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _copy_all(source: Store, wanted: list[str], root: Path, report: SyncReport, progress: Progress) -> dict[str, Held]:
    fresh: dict[str, Held] = {}
    progress.begin(f"copying archives to {report.volume}", len(wanted))
    try:
        for archive_id in wanted:
            size = source.backend.size(records.tar_key(archive_id))
            if shutil.disk_usage(root).free < size * _MARGIN + (1 << 20):
                report.problems.append(f"volume {report.volume} is full: {len(wanted) - len(fresh)} archive(s) "
                                       "not copied; use another disk for them")
                break
            try:
                written = disk.write_archive(source, archive_id, root)
            except StoreError as error:
                report.problems.append(str(error))
                continue
            except OSError as error:
                disk.clear_tmp(root)
                if error.errno == errno.ENOSPC:
                    report.problems.append(f"volume {report.volume} is full: stopped before archive {archive_id}")
                    break
                raise StoreError(f"cannot write to volume {report.volume} at {root}: {error}") from None
            report.copied.append(written)
            fresh[archive_id] = Held(archive_id, written.file, written.bytes, now_iso())
            progress.advance()
    finally:
        progress.end()
    return fresh


def verify_volume(config: Config, label: str, *, path: Path | None = None,
                  progress: Progress | None = None) -> VerifyReport:
    """Re-read every archive on the volume against its checksums, repair with par2 what does not match, and
    report each archive ok, repaired or unrepairable (an archive the catalog recorded and the disk lost too)."""
    progress = progress or NoProgress()
    started = time.monotonic()
    with open_catalog_for(config) as catalog:
        volume = catalog_volumes.find(catalog, label)
        root = _mounted(volume, path)
        report = VerifyReport(label, str(root))
        with _locked(root, label):
            report.destroyed = remove_destroyed(catalog, label, root)
            known = catalog_volumes.held(catalog, label)
            ids = disk.complete_archives(root)
            progress.begin(f"verifying {label}", len(ids))
            try:
                for archive_id in ids:
                    report.archives.append(disk.check_archive(root, archive_id))
                    progress.advance()
            finally:
                progress.end()
            gone = sorted(known.keys() - set(ids))
            report.archives += [Checked(a, "unrepairable", "its folder is gone from the volume") for a in gone]
            when = now_iso()
            fresh = {c.archive: Held(c.archive, c.found.file, c.found.bytes,
                                     known[c.archive].copied if c.archive in known else when, when)
                     for c in report.archives if c.found is not None}
            _record(catalog, volume, root, _described(catalog, volume, root, fresh), verified=True)
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def remove_destroyed(catalog: Catalog, label: str, root: Path) -> list[str]:
    """Remove from the mounted disk every archive whose legal destruction is pending there (catalog/destructions.py),
    each folder checked gone before the copy is recorded removed; the ids removed. Run by every sync and verify
    (the disk is the truth: a folder already gone is recorded removed too)."""
    done = []
    for copy in destructions.pending(catalog, destructions.VOLUME, label):
        folder = root / disk.ARCHIVES / copy.archive
        try:
            if folder.exists():
                shutil.rmtree(folder)
        except OSError as error:
            raise StoreError(f"cannot remove {folder}, whose legal destruction is pending: {error}; check the "
                             "disk (read-only? full of errors?) and run `rtvault volume verify` again") from None
        if folder.exists():
            raise StoreError(f"{folder} is still on volume {label} after it was removed: check the disk")
        with catalog.transaction():
            catalog.execute("DELETE FROM volume_archives WHERE volume = ? AND archive = ?", (label, copy.archive))
        destructions.removed(catalog, copy.archive, destructions.VOLUME, label, now_iso())
        done.append(copy.archive)
    if done:
        place_volume_copies(catalog)
    return done


def list_volumes(config: Config) -> list[dict[str, object]]:
    """Every volume the catalog knows, whether it is mounted at its last path now."""
    with open_catalog_for(config) as catalog:
        return [{**v.to_json(), "mounted": is_mounted(v)} for v in catalog_volumes.all_volumes(catalog)]


def mounted_volumes(config: Config) -> list[tuple[str, Path]]:
    """(label, mount path) of every volume the catalog knows that is mounted at its last path now."""
    with open_catalog_for(config) as catalog:
        return [(v.label, Path(v.path)) for v in catalog_volumes.all_volumes(catalog) if is_mounted(v)]


def volume_path(config: Config, label: str, path: Path | None = None) -> Path:
    """Where the volume LABEL is mounted (its last path, or `path`); StoreError when it is not (exit 8)."""
    with open_catalog_for(config) as catalog:
        volume = catalog_volumes.find(catalog, label)
    return _mounted(volume, path)


def destroy_pending(catalog: Catalog, label: str) -> list[str]:
    """`archive delete`: the copies pending destruction on the volume LABEL removed now, when it is mounted at its
    last path (StoreError when it is not: the copy stays pending until the next sync or verify of that disk)."""
    volume = catalog_volumes.find(catalog, label)
    root = _mounted(volume, None)
    with _locked(root, label):
        return remove_destroyed(catalog, label, root)
