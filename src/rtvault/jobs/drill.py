"""`rtvault drill`: proof of recoverability, timed (docs/design.md, "Restore drills").

For each store: a randomly chosen patient version restored into scratch space as `rtvault restore --patient`
does, every file re-read and re-hashed against the store's tree; a randomly chosen archived patient restored as
`rtvault restore --from-archive` does and checked against the archive's member hashes; with `full`, the whole
newest snapshot restored and checked. Each is timed end to end; from the patient drill's data rate the full
restore of the newest snapshot is extrapolated. The scratch space (`[continuity] drill_dir`) is emptied whatever
happens, and a drill killed before it could empty it is cleaned by the next one. A drill never touches the
Pinnacle source.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtvault.archive import records
from rtvault.config import Config
from rtvault.config.settings import PATIENTS_KIND
from rtvault.configured import open_store
from rtvault.copies.volume_read import member_reader, open_volume
from rtvault.copies.volumes import mounted_volumes, volume_path
from rtvault.errors import ConfigError, ExitCode, PartialResult, RtvaultError, StoreError
from rtvault.jobs.actions import cli_actor
from rtvault.jobs.archives import expected_files, restore_from_archive
from rtvault.jobs.health_drill import minutes as _minutes
from rtvault.jobs.history import matches
from rtvault.jobs.journal import Journal, run_record
from rtvault.jobs.restore import restore_all, restore_patient
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.store.integrity import sha256_copy
from rtvault.store.repository import FORMAT_FILE

SCRATCH_PREFIX = "drill-"
Reader = Callable[..., Callable[[], Iterable[bytes]]]  # how an archive member is read (a store, or a disk)
MB = 1_000_000


@dataclass
class Drill:
    """One timed restore from one store (the JSON names are the issue's: scripts rely on them)."""

    store: str
    kind: str  # patient | archive | full
    key: str = ""  # the patient path (for an archive: "<archive id> <patient path>")
    snapshot: str = ""
    bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    mb_per_s: float = 0.0
    full_estimate_s: float | None = None
    rto_s: float = 0.0  # the target its time is held against (patient, or full for the extrapolation)
    within_rto: bool | None = None
    result: str = "ok"  # ok | failed | unavailable
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class DrillReport(Report):
    drills: tuple[Drill, ...]
    rto_patient_minutes: int
    rto_full_minutes: int

    def to_json(self) -> dict[str, object]:
        return {"drills": [d.to_json() for d in self.drills], "rto_patient_minutes": self.rto_patient_minutes,
                "rto_full_minutes": self.rto_full_minutes}

    def lines(self) -> Iterable[Line]:
        for d in self.drills:
            what = f"{d.store}: {d.kind} {d.key}".rstrip()
            if d.result != "ok":
                yield err(f"{what}: {d.result.upper()}: {d.error}")
                continue
            estimate = f", full restore estimated {_minutes(d.full_estimate_s)}" if d.full_estimate_s else ""
            target = "" if d.within_rto is None else (" (within" if d.within_rto else " (OVER") + \
                f" the {_minutes(d.rto_s)} target)"
            yield Line(f"{what}: {d.files} files, {d.bytes / MB:.1f} MB in {d.seconds:.2f} s "
                       f"({d.mb_per_s:.1f} MB/s){estimate}{target}", err=d.within_rto is False)

    def verdict(self) -> Verdict:
        if any(d.result == "failed" for d in self.drills):
            failed = next(d for d in self.drills if d.result == "failed")
            return Verdict(ExitCode.CHECK_FAILED, PartialResult(f"a restore drill failed on store {failed.store}: "
                                                                f"{failed.error}"))
        if any(d.result == "unavailable" for d in self.drills):
            return Verdict(ExitCode.STORE, StoreError("a store could not be drilled (named above)"))
        if any(d.within_rto is False for d in self.drills):
            return Verdict(ExitCode.CHECK_FAILED, PartialResult("a drill took longer than its recovery time "
                                                                "objective ([continuity])"))
        return Verdict()


class _NothingYet(StoreError):
    """A store with nothing to drill yet: it cannot prove anything, but nothing of it failed either."""


def _hash(path: Path) -> str:
    with open(path, "rb") as handle:
        return sha256_copy(handle)[0]


def _check(base: Path, expected: dict[str, str]) -> tuple[int, int]:
    """Every restored file re-read and re-hashed: (files, bytes); StoreError naming the first that differs."""
    files = size = 0
    for name, wanted in expected.items():
        path = base / name
        try:
            got = _hash(path)
        except OSError as error:
            raise StoreError(f"{name} was not restored ({error.strerror or error})") from None
        if got != wanted:
            raise StoreError(f"{name} restored with other bytes than the store holds (sha256 {got[:12]}…, "
                             f"expected {wanted[:12]}…)")
        files, size = files + 1, size + path.stat().st_size
    return files, size


class _Scratch:
    """A scratch folder of its own under drill_dir, removed on the way out whatever happened."""

    def __init__(self, root: Path) -> None:
        self.path = root / f"{SCRATCH_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, mode=0o700)
        return self.path

    def __exit__(self, *_exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _clean_leftovers(root: Path) -> None:
    """Scratch folders of drills killed before they could remove them."""
    try:
        for entry in root.iterdir():
            if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
    except FileNotFoundError:
        return


def _answers(store: Store) -> bool:
    try:
        return store.backend.exists(FORMAT_FILE)
    except (StoreError, OSError):
        return False


def _run(drill: Drill, store: Store, body: Callable[[], None]) -> Drill:
    """Run one drill; a store that stopped answering is `unavailable`, damage found is `failed`."""
    try:
        body()
    except _NothingYet as error:
        drill.result, drill.error = "unavailable", str(error)
    except (RtvaultError, OSError) as error:
        drill.result = "failed" if _answers(store) else "unavailable"
        drill.error = str(error) if not isinstance(error, OSError) else f"{error.strerror or error}"
    if drill.result == "ok" and drill.seconds > 0:
        drill.mb_per_s = round(drill.bytes / MB / drill.seconds, 2)
    return drill


def _patient_drill(config: Config, name: str, store: Store, rng: random.Random, scratch_root: Path,
                   wanted: str | None = None) -> Drill:
    drill = Drill(name, "patient", rto_s=config.continuity.rto_patient_minutes * 60.0)

    def body() -> None:
        started = time.monotonic()
        manifests = store.manifests()
        listed = time.monotonic() - started  # reading the manifests: paid once by a full restore too
        choices = [(m, p) for m in manifests for p in m.patients if not p.incomplete]
        if wanted is not None:
            choices = [(m, p) for m, p in choices if matches(p, wanted)][-1:]  # its newest whole version
            if not choices:
                raise StoreError(f"no whole version of patient {wanted!r} on this store")
        if not choices:
            raise _NothingYet("the store holds no whole patient version to restore yet (no backup, or not "
                              "replicated yet)")
        manifest, patient = rng.choice(choices)
        drill.key, drill.snapshot = patient.path, manifest.id
        with _Scratch(scratch_root) as scratch:
            restore_patient(store, patient.path, scratch, snapshot=manifest.id)
            tree = store.get_tree(patient.tree)
            drill.files, drill.bytes = _check(scratch / patient.path, {f.name: f.hash for f in tree.files})
        drill.seconds = round(time.monotonic() - started, 3)
        drill.within_rto = drill.seconds <= drill.rto_s
        newest = max(manifests, key=lambda m: m.time)
        rate = drill.bytes / max(drill.seconds - listed, 1e-3)
        drill.full_estimate_s = round(listed + newest.bytes / rate, 1) if rate > 0 else None
        if drill.full_estimate_s is not None and drill.full_estimate_s > config.continuity.rto_full_minutes * 60:
            drill.within_rto = False
            drill.error = (f"the full restore of {newest.id} is estimated at {_minutes(drill.full_estimate_s)}, over "
                           f"the {config.continuity.rto_full_minutes} min target")

    return _run(drill, store, body)


def _archive_drill(name: str, store: Store, rng: random.Random, scratch_root: Path, rto_s: float,
                   read: Reader | None = None) -> Drill | None:
    summaries = records.summaries(store)
    choices = [(r, p) for r in summaries for p in r.patients]
    if not choices:
        return None  # nothing archived on this store yet: no archive drill, and no failure
    record, patient = rng.choice(choices)
    drill = Drill(name, "archive", f"{record.id[:12]} {patient.path}", rto_s=rto_s)

    def body() -> None:
        started = time.monotonic()
        with _Scratch(scratch_root) as scratch:
            restore_from_archive(store, patient.path, scratch, archive_id=record.id, read=read)
            expected = expected_files(records.load(store, record.id), patient.path)
            drill.files, drill.bytes = _check(scratch / patient.path, expected)
        drill.seconds = round(time.monotonic() - started, 3)
        drill.within_rto = drill.seconds <= drill.rto_s

    return _run(drill, store, body)


def _full_drill(config: Config, name: str, store: Store, scratch_root: Path) -> Drill:
    drill = Drill(name, "full", rto_s=config.continuity.rto_full_minutes * 60.0)

    def body() -> None:
        started = time.monotonic()
        newest = store.load_snapshot("latest", source=_patients_source(config))
        drill.key, drill.snapshot = "everything", newest.id
        with _Scratch(scratch_root) as scratch:
            restore_all(store, scratch, snapshot=newest.id)
            expected = {f"{path}/{f.name}".lstrip("/") if path else f.name: f.hash
                        for path, tree in newest.trees().items() for f in store.get_tree(tree).files}
            drill.files, drill.bytes = _check(scratch, expected)
        drill.seconds = drill.full_estimate_s = round(time.monotonic() - started, 3)
        drill.within_rto = drill.seconds <= drill.rto_s

    return _run(drill, store, body)


def _patients_source(config: Config) -> str | None:
    """The full drill restores the first configured patient database (the one a disaster would bring back
    first); None when the configuration names no source (a copy host): the store's newest snapshot."""
    return next((name for name, s in config.all_sources().items() if s.kind == PATIENTS_KIND), None)


def _scratch_root(config: Config) -> Path:
    root = config.continuity.drill_dir.absolute()
    source = config.source.pinnacle.root
    if source is not None and (root == source.absolute() or source.absolute() in root.parents):
        raise ConfigError(str(config.file), [f"continuity.drill_dir: {root} is inside the Pinnacle database "
                                             f"{source}: a drill never writes there; choose another folder"])
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise ConfigError(str(config.file), [f"continuity.drill_dir: cannot create {root} "
                                             f"({error.strerror or error}): give the service user a folder there"]
                          ) from None
    return root


def _volume_drills(config: Config, wanted: str | None, rng: random.Random, root: Path) -> list[Drill]:
    """An archived patient restored from each mounted removable disk's own copy (or from the disk `wanted`, which
    is unavailable when it is not mounted); disks in a drawer are not drilled."""
    rto_s = config.continuity.rto_patient_minutes * 60.0
    try:
        targets = [(wanted, volume_path(config, wanted))] if wanted else mounted_volumes(config)
    except RtvaultError as error:
        return [Drill(wanted, "archive", result="unavailable", error=str(error))] if wanted else []
    found = []
    for label, path in targets:
        disk = open_volume(path, label)
        drilled = _archive_drill(f"volume:{label}", disk, rng, root, rto_s, member_reader(disk.backend))  # type: ignore[arg-type]
        found += [drilled] if drilled else []
    return found


def drill(config: Config, store_name: str | None = None, *, full: bool = False, patient: str | None = None,
          rng: random.Random | None = None) -> DrillReport:
    """Drill every configured store and every mounted removable disk (or only `store_name`, a store or a disk's
    label); the result is recorded in the run journal unless the daemon runs it (it records its runs itself)."""
    rng = rng or random.Random()
    root = _scratch_root(config)
    _clean_leftovers(root)
    started, found = datetime.now(UTC), []
    if store_name is None or store_name not in config.stores:
        found += _volume_drills(config, store_name, rng, root)
    for name in [store_name] if store_name in config.stores else [] if store_name else list(config.stores):
        try:
            store = open_store(config, name)
        except StoreError as error:
            found.append(Drill(name, "patient", result="unavailable", error=str(error)))
            continue
        found.append(_patient_drill(config, name, store, rng, root, patient))
        archived = _archive_drill(name, store, rng, root, config.continuity.rto_patient_minutes * 60.0)
        found += [archived] if archived else []
        if full:
            found.append(_full_drill(config, name, store, root))
    report = DrillReport(tuple(found), config.continuity.rto_patient_minutes, config.continuity.rto_full_minutes)
    if os.environ.get("RTVAULT_RUN_BY") != "daemon":
        _record(config, report, started)
    return report


def _record(config: Config, report: DrillReport, started: datetime) -> None:
    results = [d.result for d in report.drills]
    result = "failed" if "failed" in results else "unavailable" if "unavailable" in results else \
        "partial" if any(d.within_rto is False for d in report.drills) else "ok"
    error = next((f"{d.store}: {d.kind}: {d.error}" for d in report.drills if d.error), "")
    Journal(config).append(run_record("drill", "manual", started, datetime.now(UTC), result, error, report.to_json(),
                                      actor=cli_actor()))
