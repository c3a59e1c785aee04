"""`rtvault catalog backup`: the catalog's own state (users, tokens, removable disks) written to every store that
may hold password hashes, and put back by `catalog rebuild` (docs/design.md, "The catalog's own backup").

A store may hold it when it is encrypted (`encrypt = true`: only ciphertext leaves this host) or owner-only: a
directory store whose directory, as this host sees it, is owned by the user rtvault runs as and grants its group
and others nothing (mode 0700 or stricter). Nobody else can then open anything below it. An S3 store that is not
encrypted never holds it (who reads a bucket is not rtvault's to check), nor does a store this host only reads.
A store that may not hold it is named, with what would make it eligible; never skipped in silence.

The run is partial (exit 9) when no store got the backup, or when a store that may hold it could not be written;
a store merely not eligible is a note while another one holds the backup.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from rtvault.catalog.db import Catalog
from rtvault.catalog.own_backup import PutBack, created, put_back, take
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store, where
from rtvault.errors import ExitCode, PartialResult, RtvaultError, os_failure
from rtvault.report import Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.store import catalog_backups as saved
from rtvault.utc import iso

SEE = 'see README, "The catalog\'s own backup"'


def eligibility(config: Config, name: str) -> tuple[bool, str]:
    """(whether store `name` may hold the catalog's backup, why: "encrypted", "owner-only", or the sentence
    saying why not and what to do). Owner-only is read on the real directory, as mounted on this host."""
    settings = config.stores[name]
    if settings.read_only:
        return False, (f"not written to store {name}: it is read-only on this host (read_only = true); the host "
                       "that owns it backs up its own catalog")
    if settings.encrypt:
        return True, "encrypted"
    if settings.path is None:
        return False, (f"not written to store {name} ({where(settings)}): not encrypted, and who may read an S3 "
                       f"bucket is not rtvault's to check; use an encrypted store for it ({SEE})")
    try:
        status = settings.path.stat()
    except OSError as error:
        raise os_failure(error, settings.path, store=name) from None
    if status.st_uid != os.geteuid():
        return False, (f"not written to store {name} ({settings.path}): not encrypted, and its directory belongs to "
                       f"user id {status.st_uid}, not to the user rtvault runs as ({os.geteuid()}); give it to "
                       f"that user with mode 0700, or use an encrypted store ({SEE})")
    if stat.S_IMODE(status.st_mode) & 0o077:
        return False, (f"not written to store {name} ({settings.path}): not encrypted and readable by others "
                       f"(mode {stat.S_IMODE(status.st_mode):04o}); make it owner-only (`chmod 700 "
                       f"{settings.path}`) or use an encrypted store ({SEE})")
    return True, "owner-only"


@dataclass(frozen=True)
class CatalogBackedUp(Report):
    """One catalog backup: what it holds, the stores that got it, those not eligible, those that failed."""

    id: str
    time: str
    catalog: str
    taken_with: str
    rows: dict[str, int]
    bytes: int
    written: dict[str, str]  # store: "encrypted" or "owner-only"
    not_written: dict[str, str]  # store: why it may not hold it
    failed: dict[str, str]  # store: the error
    pruned: dict[str, list[str]]  # store: older backups deleted

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> Iterable[Line]:
        held = ", ".join(f"{table}: {n}" for table, n in self.rows.items())
        yield Line(f"catalog backup {self.id} ({self.catalog}, {held}; {self.bytes} bytes)")
        for name, how in self.written.items():
            yield Line(f"  written to store {name} ({how})")
        yield from (err(f"  {why}") for why in self.not_written.values())
        yield from (err(f"  store {name}: {error}") for name, error in self.failed.items())

    def verdict(self) -> Verdict:
        """Partial when no store got it, or a store that may hold it failed."""
        if not self.written:
            return Verdict.failed(PartialResult("the catalog's backup was written to no store: users, tokens and "
                                                f"removable disks would be lost with the catalog ({SEE})"))
        return Verdict.unless(self.failed, ExitCode.PARTIAL)


def back_up(config: Config, now: datetime | None = None) -> CatalogBackedUp:
    """Take the catalog's own state and write it to every store that may hold it; prune each to its newest few."""
    moment = now or datetime.now(UTC)
    with open_catalog_for(config) as catalog:
        taken_with, tables = take(catalog)
        backup = saved.CatalogBackup(saved.new_id(moment), iso(moment), socket.gethostname(), catalog.dialect,
                                     taken_with, tables)
    data = saved.encode(backup)
    written, not_written, failed, pruned = {}, {}, {}, {}
    for name in config.stores:
        outcome, text, old = _place(config, name, saved.key_of(backup.id), data)
        {"written": written, "not eligible": not_written, "failed": failed}[outcome][name] = text
        if old:
            pruned[name] = old
    return CatalogBackedUp(backup.id, backup.time, backup.catalog, taken_with,
                           {name: len(table.rows) for name, table in tables.items()}, len(data), written,
                           not_written, failed, pruned)


def _place(config: Config, name: str, key: str, data: bytes) -> tuple[str, str, list[str]]:
    """("written", how; "not eligible", why; or "failed", the error) and the older backups pruned from the store."""
    try:
        allowed, why = eligibility(config, name)
        if not allowed:
            return "not eligible", why, []
        backend = open_store(config, name).backend
        backend.put(key, data, durable=True)
    except (RtvaultError, OSError) as error:
        return "failed", f"not written: {error}", []
    try:
        return "written", why, saved.prune(backend)
    except (RtvaultError, OSError) as error:
        return "written", f"{why}; its older catalog backups could not be deleted: {error}", []


# --- put back by `catalog rebuild` ------------------------------------------------------------------------------


@dataclass
class Restored:
    """What `catalog rebuild` put back from the newest catalog backup found on the stores."""

    id: str | None = None  # the backup used, None when none could be
    time: str | None = None
    store: str | None = None
    host: str | None = None
    restored: PutBack | None = None
    skipped: str = ""  # why nothing was put back although a backup was found
    problems: list[str] = field(default_factory=list)  # backups found damaged or unreadable

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "restored": asdict(self.restored) if self.restored else None}

    def lines(self) -> Iterable[Line]:
        yield from (err(f"  problem: {problem}") for problem in self.problems)
        if self.id is None:
            yield Line("no usable catalog backup on any store: users, tokens and removable disks not restored "
                       "(`rtvault catalog backup` writes one)")
            return
        yield Line(f"catalog backup {self.id} of {self.time} (host {self.host}) read from store {self.store}")
        if self.skipped:
            yield Line(f"  nothing restored: {self.skipped}")
            return
        done = self.restored
        assert done is not None
        yield Line(f"  restored {len(done.users)} user(s){_names(done.users)}, {done.tokens} token(s), "
                   f"{len(done.volumes)} removable disk(s){_names(done.volumes)} with {done.volume_archives} "
                   f"archive copy(ies), {done.store_samples} disk space sample(s)")
        if done.users_kept:
            yield Line(f"  kept as they are (already in the catalog, not overwritten): user(s) "
                       f"{', '.join(done.users_kept)}" + (f", and {done.tokens_not_restored} token(s) of theirs "
                                                          "not restored" if done.tokens_not_restored else ""))
        if done.volumes_kept:
            yield Line(f"  kept as they are (already in the catalog): disk(s) {', '.join(done.volumes_kept)}")


def _names(names: list[str]) -> str:
    return f" ({', '.join(names)})" if names else ""


def _trusted(config: Config, name: str) -> str | None:
    """None when store `name` may hold the catalog's backup (so only this host's rtvault wrote what it holds
    there); else why not, as one sentence."""
    try:
        eligible, why = eligibility(config, name)
    except RtvaultError as error:
        return str(error)
    return None if eligible else why


def restore_newest(catalog: Catalog, stores: dict[str, Store], config: Config) -> Restored:
    """Put back the newest catalog backup that reads whole from a store that may hold one (`eligibility`: a
    document in a store others may write could be anyone's, an administrator of their own making included; such
    a store's backups are named as a problem, never read); each damaged one is a problem, and the next older one
    is tried. A catalog created before that backup was taken holds all it held, less what was removed since on
    purpose (a user, a revoked token, a disk retired): nothing is put back into it."""
    result = Restored()
    candidates = []
    for place, (name, store) in enumerate(stores.items()):
        try:
            found = saved.backups(store.backend)
        except (RtvaultError, OSError) as error:
            result.problems.append(f"store {name}: its catalog backups cannot be listed: {error}")
            continue
        if found and (why := _trusted(config, name)) is not None:
            result.problems.append(f"store {name} holds {len(found)} catalog backup(s), not read: this host never "
                                   f"writes one there, so anyone may have ({why.removeprefix('not written to ')})")
            continue
        candidates += [(backup_id, -place, name, store) for backup_id in found]
    for backup_id, _place, name, store in sorted(candidates, key=lambda c: c[:2], reverse=True):
        key = saved.key_of(backup_id)
        try:
            backup = saved.decode(store.backend.get(key), key)
        except (RtvaultError, OSError, ValueError) as error:
            result.problems.append(f"catalog backup {key} in store {name} is damaged or unreadable ({error}); the next "
                                   "older one is tried (run `rtvault catalog backup` to write a new one)")
            continue
        result.id, result.time, result.store, result.host = backup.id, backup.time, name, backup.host
        since = created(catalog)
        if since and since < backup.time:
            result.skipped = (f"this catalog exists since {since}, before the backup was taken: it holds what the "
                              "backup holds, less what was removed since on purpose")
        else:
            result.restored = put_back(catalog, backup.tables)
        return result
    return result
