"""Handing one catalogued patient version to a user: a Pinnacle-format tar to download, or a restore into a new
sub-directory of the configured Pinnacle import directory (`[web] restore_dir`).

Nothing a request says reaches the filesystem as such: the patient key must name a catalogued patient, the
version and location must be among its catalogued ones, the store must be configured, and the restore
directory's name is built here from the date, the folded last name and the key.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtvault.archive.build import institution_source
from rtvault.archive.institution import filtered_institution
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.patients import find_version, is_key, patient_detail
from rtvault.config import Config
from rtvault.configured import open_store, store_labels
from rtvault.errors import InputError, NotFound, StoreError, Unavailable, os_advice, os_failure
from rtvault.jobs.archives import export, restore_from_archive
from rtvault.jobs.restore import RestoreIncomplete, RestoreSummary, restore_patient
from rtvault.store import Store


@dataclass(frozen=True)
class Chosen:
    """A patient version and the place it will be read from."""

    patient: dict
    version: dict
    location: dict

    @property
    def source(self) -> str:
        loc = self.location
        return f"{'snapshot' if loc['kind'] == 'snapshot' else 'archive'} {loc['ref']} in store {loc['store']}"


def choose(catalog: Catalog, config: Config, key: str, version: str = "", location: str = "",
           store: str = "", sites: Sequence[str] = ()) -> Chosen:
    """The version `version` (default: the newest) of patient `key`, read from `location` (one of that
    version's `store:kind:ref`, see `location_ref`) or else from the best place: a snapshot before an
    archive, an intact archive before a damaged one, the newest first, on a configured store only (on `store`
    only, when given); of the locations of `sites` only, when given (a user limited to sites)."""
    patient = patient_detail(catalog, key, store_labels(config, catalog), sites) if is_key(key) else None
    if patient is None:
        raise NotFound(f"no patient {key!r} in the catalog")
    chosen = find_version(patient, version.strip())
    if chosen is None:
        raise NotFound(f"patient {key} has no version {version!r} in the catalog", "version")
    usable = [loc for loc in chosen["locations"] if loc["store"] in config.stores and store in ("", loc["store"])]
    if location.strip():
        usable = [loc for loc in usable if loc["location"] == location.strip()]
        if not usable:
            raise NotFound(f"version {chosen['version']} has no location {location!r} on a configured store",
                           "location")
    if not usable:
        stores = ", ".join(sorted(config.stores)) or "none"
        where = f"store {store}" if store else f"configured store (stores: {stores})"
        raise StoreError(f"version {chosen['version']} is on no {where}")
    newest_first = sorted(usable, key=lambda loc: loc["time"], reverse=True)
    best = min(newest_first, key=lambda loc: (loc["kind"] != "snapshot", loc["damaged"]))  # min keeps the first
    return Chosen(patient, chosen, best)


def _store(config: Config, chosen: Chosen) -> Store:
    return open_store(config, chosen.location["store"])


def export_tar(config: Config, chosen: Chosen) -> Path:
    """The chosen version as a Pinnacle-format tar in a new temporary directory; the caller removes it with
    `discard` once sent."""
    folder = temporary_folder("rtvault-download-")
    out = folder / download_name(chosen)
    loc = chosen.location
    try:
        if loc["kind"] == "snapshot":
            export(_store(config, chosen), chosen.patient["path"], out, snapshot=loc["ref"])
        else:
            result = export(_store(config, chosen), chosen.patient["path"], out, archive_id=loc["ref"])
            if result["incomplete"]:  # lost or unverified members: a patient is whole or not handed out
                raise StoreError(_not_whole_archive(result["incomplete"], "downloaded"))
    except OSError as error:  # the store's read errors are StoreErrors: this is the server's temporary area
        discard(out)
        raise Unavailable(f"cannot write the download in the server's temporary area {folder}: "
                          f"{os_advice(error)}; tell the rtvault administrator") from None
    except BaseException:
        discard(out)
        raise
    return out


def temporary_folder(prefix: str) -> Path:
    """A new folder of the server's temporary area for a download being built; Unavailable (HTTP 503) when the
    area cannot take one (full, read-only): the administrator's to fix, not the user's, not a bug."""
    try:
        return Path(tempfile.mkdtemp(prefix=prefix))
    except OSError as error:
        raise Unavailable(f"cannot make a folder in the server's temporary area {tempfile.gettempdir()}: "
                          f"{os_advice(error)}; tell the rtvault administrator") from None


def discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


def name_part(text: str) -> str:
    """A name as part of a file or folder name: folded, upper case, letters, digits and dashes, 40 at most."""
    return re.sub(r"[^A-Z0-9]+", "-", folding.fold(text).upper()).strip("-")[:40] or "PATIENT"


def download_name(chosen: Chosen) -> str:
    return f"{name_part(chosen.patient['last_name'])}-{chosen.patient['key']}-{chosen.version['version']}.tar"


def web_restore_dir(config: Config) -> Path:
    """`[web] restore_dir`, which must be set and exist for the web interface to restore."""
    base = config.web.restore_dir
    if base is None:
        raise InputError("restoring from the web interface needs [web] restore_dir in the configuration")
    if not base.is_dir():
        raise InputError(f"[web] restore_dir {base} does not exist: create it or fix the configuration")
    return base


def restore_to_dir(config: Config, chosen: Chosen, now: datetime | None = None) -> dict[str, object]:
    """Restore the chosen version into a new sub-directory of `[web] restore_dir` named like
    `20261124T0931-LEFEVRE-<key>`; returns where, from what, and how much."""
    return restore_into(web_restore_dir(config), config, chosen, group=config.web.restore_group, now=now)


def restore_into(base: Path, config: Config, chosen: Chosen, *, group: str = "",
                 now: datetime | None = None) -> dict[str, object]:
    """Restore the chosen version whole, with the filtered Institution file Pinnacle imports it with, into a new
    sub-directory of `base` named like `20261124T0931-LEFEVRE-<key>` (0700, or 0750 for `group`), or not at
    all: a version that cannot be restored whole leaves nothing behind (a StoreError says why)."""
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M")
    name = f"{stamp}-{name_part(chosen.patient['last_name'])}-{chosen.patient['key']}"
    destination = _new_directory(base, name, group)
    loc, path = chosen.location, chosen.patient["path"]
    try:
        if loc["kind"] == "snapshot":
            summary = restore_with_institution(_store(config, chosen), path, destination, loc["ref"])
        else:
            summary = restore_from_archive(_store(config, chosen), path, destination, archive_id=loc["ref"])
            if summary.incomplete:  # lost or unverified members: for Pinnacle a patient is whole or absent
                raise StoreError(_not_whole_archive(summary.incomplete, "restored"))
    except BaseException as error:
        shutil.rmtree(destination, ignore_errors=True)  # ours, made above: no half patient left for Pinnacle
        if isinstance(error, RestoreIncomplete):  # for Pinnacle, a patient is whole or not restored at all
            raise StoreError(_not_whole(error)) from None
        raise
    return {"directory": str(destination), "source": chosen.source, "location": chosen.location,
            "version": chosen.version["version"], **summary.to_json()}


def _not_whole_archive(incomplete: list[str], done: str) -> str:
    return (f"this version cannot be {done} whole from the archive, so nothing was {done}: "
            f"{'; '.join(incomplete[:3])}" + (f" and {len(incomplete) - 3} more" if len(incomplete) > 3 else "")
            + "; choose another version or location (the command line can restore the readable part: "
            "`rtvault restore --from-archive`)")


def _not_whole(incomplete: RestoreIncomplete) -> str:
    lost = [f"{file['name']} ({file['reason']})" for failure in incomplete.summary.failed
            for file in failure["files_not_written"]] or [failure["reason"] for failure in incomplete.summary.failed]
    return (f"this version cannot be restored whole, so nothing was restored: {'; '.join(lost[:3])}"
            + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
            + "; choose another version or location, or heal the store (`rtvault verify --all`, `rtvault repair`)")


def restore_with_institution(store: Store, path: str, destination: Path, snapshot: str) -> RestoreSummary:
    """The patient at `path` as `snapshot` holds it, with the filtered Institution file (listing that patient
    only) at the top of `destination`: Pinnacle imports a patient folder only with it, as from an archive."""
    summary = restore_patient(store, path, destination, snapshot=snapshot)
    manifest = store.load_snapshot(snapshot)
    entry = manifest.patient(path)
    assert entry is not None  # restore_patient found it there
    institution = filtered_institution(institution_source(store, manifest, path), path,
                                       store.get_tree(entry.tree).identity(), f"rtvault snapshot {manifest.id}",
                                       datetime.now(UTC))
    (destination / "Institution").write_bytes(institution)
    summary.files += 1
    summary.bytes += len(institution)
    return summary


def _group_id(group: str) -> int:
    try:
        return int(group) if group.isascii() and group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise InputError(f"[web] restore_group {group!r} names no group of this machine") from None


def _new_directory(base: Path, name: str, group: str = "") -> Path:
    """A new folder for one restore, closed to other users whatever the umask (0700), or open to `group` for
    reading (0750) when one is configured for Pinnacle's import; what is restored inside keeps its own modes."""
    gid = _group_id(group) if group else None
    for attempt in range(1, 100):
        candidate = base / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            continue
        try:
            if gid is not None:
                os.chown(candidate, -1, gid)
            candidate.chmod(0o700 if gid is None else 0o750)
        except OSError as error:
            candidate.rmdir()
            raise os_failure(error, candidate, doing=f"give group {group} access to") from None
        return candidate
    raise InputError(f"{base} already holds 99 restores named {name}: clean it up")
