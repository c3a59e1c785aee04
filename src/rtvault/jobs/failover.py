"""`rtvault failover --to NAME` and `rtvault failback` (docs/design.md, "Failover and failback").

Failover makes a copy of the primary store (`copy_of` the first configured store) the store that backups, the
sweep and retention write to: the record (store/roles.py) is written to that copy first, then to the primary when
it still answers (so that no host writes to it any more), then to this host's `[daemon] state_dir`, which every
command reads to choose its store. Failback copies back to the primary what was written on the copy meanwhile
(`replicate`, verified), checks both stores (every snapshot of the copy on the primary, both stores whole: the
`check` logic), and only then removes the records: the normal roles are back. Both are recorded in the run
journal (jobs `failover` and `failback`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtvault.config import Config
from rtvault.configured import failed_over, open_store
from rtvault.copies.replicate import ReplicateSummary, replicate
from rtvault.errors import ConfigError, ExitCode, InputError, PartialResult, RtvaultError, StoreError
from rtvault.jobs.actions import cli_actor
from rtvault.jobs.journal import Journal, run_record
from rtvault.jobs.maintenance import check_store
from rtvault.localfile import write_atomically
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.store.roles import STATE_FILE, Failover, clear_failover, write_failover
from rtvault.utc import iso


@dataclass(frozen=True)
class FailedOver(Report):
    """What `rtvault failover` did: the record, and which stores hold it."""

    record: Failover
    marked: tuple[str, ...]
    primary_error: str  # why the primary could not be marked ("" when it was)

    def to_json(self) -> dict[str, object]:
        return {"failover": self.record.to_json(), "stores_marked": list(self.marked),
                "primary_reachable": not self.primary_error, "primary_error": self.primary_error}

    def lines(self) -> Iterable[Line]:
        r = self.record
        yield Line(f"failed over: backups now go to store {r.active} instead of store {r.primary} (since {r.since})")
        if self.primary_error:
            yield err(f"store {r.primary} does not answer ({self.primary_error}): once it is back, never back it up "
                      f"by hand; run `rtvault failback` (it copies back what store {r.active} received meanwhile)")
        else:
            yield Line(f"store {r.primary} still answers: it is marked failed over and no command writes to it "
                       "until `rtvault failback`")


@dataclass(frozen=True)
class FailedBack(Report):
    """What `rtvault failback` did: the copy back, the checks of both stores, and whether the roles were restored."""

    record: Failover
    copied: ReplicateSummary
    missing: tuple[str, ...]  # snapshots of the active store still not on the primary
    problems: tuple[str, ...]  # what the checks of both stores found
    restored: bool

    def to_json(self) -> dict[str, object]:
        return {"failover": self.record.to_json(), "copied": self.copied.to_json(),
                "snapshots_missing": list(self.missing), "problems": list(self.problems), "restored": self.restored}

    def lines(self) -> Iterable[Line]:
        r, c = self.record, self.copied
        yield Line(f"copied back from store {r.active} to store {r.primary}: {c.snapshots_copied} snapshots, "
                   f"{c.archives_copied} archives, {c.objects_copied} objects ({c.bytes_copied / 1e6:.1f} MB)")
        yield from (err(f"  not on store {r.primary}: {key}") for key in self.missing)
        yield from (err(f"  problem: {problem}") for problem in self.problems)
        if self.restored:
            yield Line(f"failed back: backups go to store {r.primary} again, and store {r.active} is its copy")

    def verdict(self) -> Verdict:
        if self.restored:
            return Verdict()
        return Verdict(ExitCode.CHECK_FAILED, PartialResult(
            f"failback not done: the stores do not agree yet (listed above); backups keep going to store "
            f"{self.record.active}: correct the cause (`rtvault check --store NAME`, `rtvault repair`) and run "
            "`rtvault failback` again"))


def _primary(config: Config) -> str:
    if not config.stores:
        raise ConfigError(str(config.file), ["no store configured: add a [stores.<name>] table with a path"])
    return next(iter(config.stores))


def _state_path(config: Config) -> Path:
    return config.daemon.state_dir / STATE_FILE


def _save_state(config: Config, record: Failover | None) -> None:
    """This host's record written atomically (None: removed)."""
    path = _state_path(config)
    try:
        if record is None:
            path.unlink(missing_ok=True)
            return
        write_atomically(path, record.encode(), private=True)
    except OSError as error:
        raise ConfigError(str(config.file), [f"daemon.state_dir: cannot write the failover record {path} "
                                             f"({error.strerror or error}): give the service user write access "
                                             "to [daemon] state_dir, then run the command again"]) from None


def _journal(config: Config, job: str, started: datetime, result: str, error: str, summary: object) -> None:
    Journal(config).append(run_record(job, "manual", started, datetime.now(UTC), result, error, summary,
                                      actor=cli_actor()))


def failover(config: Config, to: str) -> FailedOver:
    """Make store `to`, a copy of the primary, the store that backups write to; recorded and journalled."""
    primary, started = _primary(config), datetime.now(UTC)
    if to not in config.stores:
        raise ConfigError(str(config.file), [f"no store named {to!r} (configured: {', '.join(config.stores)})"])
    if config.stores[to].copy_of != primary:
        raise InputError(f"store {to} is not a copy of the primary store {primary} (no copy_of = \"{primary}\" in "
                         f"its [stores.{to}] table): fail over to one of its copies "
                         f"({', '.join(n for n, s in config.stores.items() if s.copy_of == primary) or 'none'})")
    current = failed_over(config)
    if current is not None and current.active != to:
        raise InputError(f"already failed over to store {current.active} since {current.since}: run `rtvault "
                         "failback` first")
    try:
        active = open_store(config, to)
    except StoreError as error:
        raise StoreError(f"store {to} cannot take over: {error}") from None
    record = current or Failover(primary, to, iso(started), socket.gethostname())
    write_failover(active.backend, record)
    marked, primary_error = [to], ""
    try:
        write_failover(open_store(config, primary).backend, record)
        marked.append(primary)
    except (RtvaultError, OSError) as error:
        primary_error = str(error)
    _save_state(config, record)
    report = FailedOver(record, tuple(marked), primary_error)
    _journal(config, "failover", started, "ok", "", report.to_json())
    return report


def _snapshots(store: Store) -> set[str]:
    return {key for key in store.backend.list("snapshots/") if key.endswith(".json")}


def _problems(name: str, store: Store) -> list[str]:
    return [f"store {name}: {problem}" for problem in check_store(store).problems]


def failback(config: Config) -> FailedBack:
    """Copy back to the primary what its copy received while failed over, check both, restore the normal roles."""
    record, started = failed_over(config), datetime.now(UTC)
    if record is None:
        raise InputError(f"not failed over: backups already go to the primary store {_primary(config)}")
    try:
        primary = open_store(config, record.primary)
    except StoreError as error:
        message = (f"store {record.primary} does not answer ({error}): failback copies to it what store "
                   f"{record.active} received since {record.since}; bring it back (mount it, reach its server; a "
                   "replaced empty disk: `rtvault init` first) and run `rtvault failback` again; backups keep "
                   f"going to store {record.active} meanwhile")
        _journal(config, "failback", started, "unavailable", message, {"failover": record.to_json()})
        raise StoreError(message) from None
    active = open_store(config, record.active)
    copied = replicate(active, primary, lease_s=config.backup.lock_lease_seconds)
    missing = tuple(sorted(_snapshots(active) - _snapshots(primary)))
    problems = [f"copy back: {problem}" for problem in copied.problems]
    problems += _problems(record.primary, primary) + _problems(record.active, active)
    restored = copied.complete and not missing and not problems
    if restored:
        clear_failover(active.backend)
        clear_failover(primary.backend)
        _save_state(config, None)
    report = FailedBack(record, copied, missing, tuple(problems), restored)
    error = "" if restored else f"{len(missing)} snapshot(s) missing, {len(problems)} problem(s)"
    _journal(config, "failback", started, "ok" if restored else "failed", error, report.to_json())
    return report
