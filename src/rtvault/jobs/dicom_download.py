"""A patient's received DICOM objects handed to a user of the web interface (`GET /patients/{key}/dicom.zip`,
docs/design.md, "Web interface"): a zip of the objects byte for byte as stored, under the DICOMDIR that indexes
them, built in a new temporary folder and removed once sent (`deliver.discard`).

Each object is read from a configured store that holds it and opens, its content checked against its name; one
that no store can give (still in the DICOM node's spool, damaged, its store offline or not configured here) is
named in `MANQUANT-MISSING.txt` inside the zip and in the result, and the rest is delivered. Nothing readable at
all: `Unreadable` (HTTP 503); nothing received (or nothing of the study or series asked): `NotFound`.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.errors import InvalidDicomError

from rtvault.catalog import dicom as catalog_dicom
from rtvault.catalog.db import Catalog
from rtvault.catalog.dicom_studies import Copies, copies
from rtvault.catalog.patients import is_key, patient_names
from rtvault.config import Config
from rtvault.configured import open_store, store_ids
from rtvault.dicom.dicomdir import DicomFileSet, disk_error
from rtvault.dicom.received import is_uid
from rtvault.errors import ConfigError, InputError, NotFound, StoreError, Unavailable, Unreadable, os_advice
from rtvault.jobs.deliver import discard, name_part, temporary_folder
from rtvault.jobs.dicom_export_received import received_ids
from rtvault.store import Store
from rtvault.store.objects import read_object

MISSING_FILE = "MANQUANT-MISSING.txt"
_MISSING_HEADING = (
    "Objets DICOM reçus qui n'ont pas pu être lus sur un stockage configuré ; les autres sont dans ce zip.\n"
    "Received DICOM objects that could not be read from a configured store; the others are in this zip.\n\n")


@dataclass
class ReceivedZip:
    """The zip built (its path in a temporary folder of its own, the name to download it by), what it holds and
    what it lacks (one sentence per object, and their SOP instance UIDs)."""

    path: Path
    delivered: int = 0
    missing: list[str] = field(default_factory=list)
    missing_uids: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)  # the configured names of the stores read from

    @property
    def name(self) -> str:
        return self.path.name

    def outcome(self) -> str:
        """The audit trail's result: ok, or partial and what is missing (the first three)."""
        if not self.missing:
            return "ok"
        return f"partial: {len(self.missing)} received object(s) not readable: {_first(self.missing)}"


def _first(lines: Sequence[str], shown: int = 3) -> str:
    return "; ".join(lines[:shown]) + (f" and {len(lines) - shown} more" if len(lines) > shown else "")


def check_uid(name: str, value: str) -> str:
    """A study= or series= value: empty (not narrowed) or a UID; anything else is refused."""
    if value and not is_uid(value):
        raise InputError(f"{name}: {value[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return value


def received_zip(config: Config, catalog: Catalog, key: str, *, study: str = "", series: str = "",
                 sites: Collection[str] = ()) -> ReceivedZip:
    """The received objects of patient `key` (of `study` and `series` when given; of `sites` only, when given) as a
    zip; the caller sends it and removes its folder with `discard`."""
    found = _wanted(catalog, key, check_uid("study", study), check_uid("series", series), sites)
    narrowed = f"-{(series or study)[-12:]}" if series or study else ""
    name = name_part(patient_names(catalog, [key]).get(key, ""))
    folder = temporary_folder("rtvault-dicom-")
    result = ReceivedZip(folder / f"{name}-{key}-dicom{narrowed}.zip")
    fileset: DicomFileSet | None = None
    try:
        fileset = DicomFileSet(received_ids(config, f"{key}:{study}:{series}",
                                            [c.held[0][1] for c in found]).of("fileset"), folder)
        _stage(config, found, fileset, result)
        if not result.delivered:
            raise Unreadable(f"none of the {len(found)} received DICOM object(s) asked of patient {key} can be read "
                             f"from a configured store: {_first(result.missing)}")
        _write_zip(fileset, folder, result)
    except OSError as error:  # the server's temporary area full or failing: not the user's fault, nor a bug
        discard(result.path)
        raise Unavailable(f"cannot write the zip in the server's temporary area {folder}: {os_advice(error)}; tell "
                          "the rtvault administrator") from None
    except BaseException:
        discard(result.path)
        raise
    finally:
        if fileset is not None:
            fileset.close()  # the File-set's staged copies, whatever happened
    return result


def asked_count(catalog: Catalog, key: str, *, study: str = "", series: str = "", sites: Collection[str] = ()) -> int:
    """How many received objects a download would hold (what a HEAD request answers, nothing read)."""
    return len(_wanted(catalog, key, check_uid("study", study), check_uid("series", series), sites))


def _wanted(catalog: Catalog, key: str, study: str, series: str, sites: Collection[str]) -> list[Copies]:
    found = copies(catalog, key, study=study, series=series, sites=sites) if is_key(key) else None
    if found is None:
        raise NotFound(f"no patient {key!r} in the catalog")
    if not found:
        asked = " and ".join(f"{name} {uid}" for name, uid in (("study", study), ("series", series)) if uid)
        raise NotFound(f"patient {key} has no received DICOM object{' of ' + asked if asked else ''} in the "
                       "catalog", "dicom")
    return found


class _Stores:
    """The configured stores by the id the catalog knows them by, each opened once when first needed; one that
    does not open is remembered with why."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.names = {sid: name for name, sid in store_ids(config).items()}
        self.opened: dict[str, Store | str] = {}

    def get(self, store_id: str) -> Store | str:
        """The store, or why it cannot be read from here."""
        name = self.names.get(store_id)
        if name is None:
            return f"store {store_id[:8]} is not configured here or does not open"
        if name not in self.opened:
            try:
                self.opened[name] = open_store(self.config, name)
            except (StoreError, ConfigError) as error:
                self.opened[name] = f"store {name}: {error}"
        return self.opened[name]


def _stage(config: Config, found: Sequence[Copies], fileset: DicomFileSet, result: ReceivedZip) -> None:
    stores = _Stores(config)
    used: set[str] = set()
    for item in found:
        data, store_name, why = _read(item, stores)
        if data is not None:
            try:
                fileset.add_file(data)
            except (InvalidDicomError, ValueError, TypeError, KeyError, AttributeError, OSError) as error:
                if (full := disk_error(error)) is not None:
                    raise full from None  # the temporary area full: answered 503, not this object's fault
                why.append(f"no DICOMDIR record can be made for it ({error})")
            else:
                used.add(store_name)
                result.delivered += 1
                continue
        result.missing.append(f"received object {item.sop_instance} ({item.modality or 'no modality'}) of series "
                              f"{item.series_uid}, study {item.study_uid}: {'; '.join(dict.fromkeys(why))}")
        result.missing_uids.append(item.sop_instance)
    result.stores = sorted(used)


def _read(item: Copies, stores: _Stores) -> tuple[bytes | None, str, list[str]]:
    """The object's bytes from the first copy that reads whole (checked against its name) and the name of the store
    it came from; else None and why each copy could not be read."""
    why: list[str] = []
    for store_id, held in item.held:
        if held.receipt.startswith(catalog_dicom.SPOOL_PREFIX):
            why.append("still in the DICOM node's spool, not sealed into a store yet: try again in a minute")
            continue
        store = stores.get(store_id)
        if isinstance(store, str):
            why.append(store)
            continue
        try:
            return b"".join(read_object(store.backend, held.hash)), stores.names[store_id], why
        except StoreError as error:
            why.append(f"{error} (`rtvault verify` and `rtvault repair` heal it from another store)")
    return None, "", why


def _write_zip(fileset: DicomFileSet, folder: Path, result: ReceivedZip) -> None:
    """The File-set laid out under `folder/files`, then each file into the zip (deflated, each member streamed from
    its file), DICOMDIR first, the list of what is missing last; `files` removed."""
    files = folder / "files"
    written = fileset.write(files)
    with zipfile.ZipFile(result.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for entry in sorted(written, key=lambda w: w.path != "DICOMDIR"):
            archive.write(files / entry.path, entry.path)
        if result.missing:
            archive.writestr(MISSING_FILE, _MISSING_HEADING + "".join(f"- {line}\n" for line in result.missing))
    shutil.rmtree(files, ignore_errors=True)
