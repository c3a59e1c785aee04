"""Restoring several patients in one go, with one report for all: a list of patients (a CSV file, resolved
through the catalog: `rtvault restore --patients-from`, the web interface's list restore) or several keys
(`rtvault restore --patient A --patient B`, resolved in the store as one key is).

Each row ends in exactly one of: `restored`; `not_found` (no patient has that MRN, or that last name and birth
date); `ambiguous` (several have it: the candidates are listed, none is restored); `failed` (resolved, but the
store could not give it whole: the reason); `invalid` (the row cannot name a patient: the reason); or
`duplicates` (a patient an earlier row named already: restored once). A patient that fails does not stop
the others. From a list, each patient goes whole into a new folder of its own under the destination (named
like `20261124T0931-LEFEVRE-<key>`, with the filtered Institution file Pinnacle imports it with), as the web
interface's restore does, or not at all; from keys, each lands at its relative path under the destination, as
`restore --patient` does.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rtvault.catalog import fold as folding
from rtvault.catalog.audit import spreadsheet_cell
from rtvault.catalog.db import Catalog
from rtvault.catalog.indexer import patient_key
from rtvault.catalog.patients import patients_named, patients_with_mrn
from rtvault.config import Config
from rtvault.errors import CatalogError, InputError, NotFound, PartialResult, RtvaultError, os_advice, os_failure
from rtvault.events import NoProgress, Progress
from rtvault.jobs.deliver import choose, restore_into, web_restore_dir
from rtvault.jobs.history import NoSuchPatient, SeveralPatients, versions
from rtvault.jobs.patient_list import Asked, PatientList, read_patient_list
from rtvault.jobs.restore import RestoreIncomplete, RestoreSummary, restore_patient
from rtvault.localfile import write_atomically
from rtvault.report import OK, Line, Report, Verdict, err
from rtvault.store import Store
from rtvault.store.formats import Manifest, PatientEntry

WEB_MOST_ROWS = 100  # the web restores a list in one request: longer lists go through the command line
REPORTS = ".rtvault-reports"  # in [web] restore_dir: the web's list reports, kept to download as CSV
_REPORT_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")
OUTCOMES = ("restored", "not_found", "ambiguous", "failed", "invalid", "duplicates")
CSV_COLUMNS = ("line", "outcome", "asked_mrn", "asked_last_name", "asked_first_name", "asked_birth_date", "key",
               "name", "mrn", "path", "directory", "source", "files", "bytes", "detail")


def _who(patient: dict) -> dict[str, object]:
    """A catalogued patient as an entry names it."""
    name = " ".join(part for part in (patient["last_name"], patient["first_name"]) if part)
    return {"key": patient["key"], "name": name, "mrn": patient["mrn"], "path": patient["path"],
            "birth_date": patient["birth_date"] or ""}


def _entry_who(entry: PatientEntry) -> dict[str, object]:
    """A snapshot's patient entry named as a catalogued patient is (its catalog key included)."""
    return _who({"key": patient_key(entry.path, entry.patient_id, entry.mrn), "last_name": entry.last_name,
                 "first_name": entry.first_name, "mrn": entry.mrn, "path": entry.path,
                 "birth_date": entry.birth_date})


@dataclass
class ListRestore(Report):
    """What a restore of several patients did, row by row (see the module's docstring); `listed`: the list as
    read (file, encoding, delimiter, columns), None for keys given on the command line."""

    to: str
    listed: dict[str, object] | None = None
    restored: list[dict] = field(default_factory=list)
    not_found: list[dict] = field(default_factory=list)
    ambiguous: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    catalog_empty: bool = False
    problems: list[str] = field(default_factory=list)  # what went wrong beside the rows (the report not kept)
    # Patients a row named that are of a site the user is not limited to: reported as not found, never shown (the
    # caller audits them).
    other_sites: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(getattr(self, outcome)) for outcome in OUTCOMES)

    @property
    def missed(self) -> int:
        """Rows naming a patient that was not restored (a duplicate shares its first row's outcome)."""
        return len(self.not_found) + len(self.ambiguous) + len(self.failed) + len(self.invalid)

    def to_json(self) -> dict[str, object]:
        return {**{outcome: getattr(self, outcome) for outcome in OUTCOMES}, "to": self.to, "list": self.listed,
                "files": self.files, "bytes": self.bytes, "duration_s": self.duration_s,
                **({"problems": self.problems} if self.problems else {})}

    def warnings(self) -> Iterable[str]:
        listed = self.listed or {}
        if listed and not str(listed["encoding"]).startswith("utf"):
            yield (f"{listed['file']} is not UTF-8: read as {listed['encoding']} (check that accented names read "
                   "right; save the list as CSV UTF-8 to be sure)")
        if self.catalog_empty:
            yield "the catalog holds no patient: run `rtvault catalog sync` (or `rtvault catalog rebuild`) first"
        yield from self.problems

    def lines(self) -> Iterable[Line]:
        listed = f" listed in {self.listed['file']}" if self.listed else ""
        yield Line(f"restored {len(self.restored)} of {self.rows - len(self.duplicates)} patient(s){listed} into "
                   f"{self.to}: {self.files} files, {self.bytes / 1e6:.1f} MB in {self.duration_s:.1f} s")
        for entry in self.restored:
            yield Line(f"  {_where(entry)}{_who_text(entry)} -> {entry['directory']} ({entry['source']})")
            if entry.get("lacking"):
                yield err(f"    lacks what the backup could not read: {', '.join(entry['lacking'])}")
        for entry in self.not_found:
            yield err(f"NOT FOUND {_where(entry)}{_asked_text(entry)}" + (f": {entry['reason']}"
                                                                          if entry.get("reason") else ""))
        for entry in self.ambiguous:
            yield err(f"AMBIGUOUS {_where(entry)}{_asked_text(entry)}: {len(entry['candidates'])} patients have it, "
                      "none was restored (give the MRN):")
            yield from (err(f"    {c['key']}  {c['name']}  MRN {c['mrn'] or '-'}  born {c['birth_date'] or '-'}  "
                            f"{c['path']}") for c in entry["candidates"])
        for entry in self.failed:
            yield err(f"NOT RESTORED {_where(entry)}{_who_text(entry)}: {entry['reason']}")
        for entry in self.invalid:
            yield err(f"UNUSABLE {_where(entry)}{_asked_text(entry)}: {entry['reason']}")
        for entry in self.duplicates:
            first = f"line {entry['same_as']}" if entry["same_as"] is not None else "an earlier --patient"
            yield Line(f"  {_where(entry)}{_asked_text(entry)} names the same patient as {first}: restored once")

    def verdict(self) -> Verdict:
        lacking = [e for e in self.restored if e.get("lacking")]
        if not self.missed and not lacking:
            return OK
        what = f"{self.missed} of {self.rows - len(self.duplicates)} patient(s) not restored" if self.missed else ""
        if lacking:
            what += ("; " if what else "") + (f"{len(lacking)} restored without files the backup could not read "
                                              "(an older snapshot may hold them)")
        return Verdict.failed(PartialResult(f"{what} (each named above); {len(self.restored)} restored into "
                                            f"{self.to}"))

    def journalled(self) -> list[dict[str, object]]:
        """Each patient restored, or found but not restored, as its own entry of the journal of actions."""
        done = [{"patient": e["key"], "detail": {"line": e["line"], "directory": e["directory"],
                                                 "source": e["source"]}, "result": "ok"} for e in self.restored]
        return done + [{"patient": e["key"], "detail": {"line": e["line"]}, "result": f"failed: {e['reason']}"}
                       for e in self.failed]

    def to_csv(self, delimiter: str = "") -> bytes:
        """The report as a spreadsheet reads it: one row per row of the list, in its order, UTF-8 with a
        byte-order mark and the list's own delimiter (so that a French spreadsheet opens it as it saved it)."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter or str((self.listed or {}).get("delimiter") or ","))
        writer.writerow(CSV_COLUMNS)
        for outcome, entry in self.in_order():
            writer.writerow([spreadsheet_cell(value) for value in _csv_row(outcome, entry)])
        return out.getvalue().encode("utf-8-sig")

    def in_order(self) -> list[tuple[str, dict]]:
        """Every row's outcome and entry, in the list's order (keys given on the command line: as given)."""
        rows = [(outcome, entry) for outcome in OUTCOMES for entry in getattr(self, outcome)]
        return sorted(rows, key=lambda row: row[1]["line"] or 0)


def _where(entry: dict) -> str:
    return f"line {entry['line']}: " if entry["line"] is not None else ""


def _asked_text(entry: dict) -> str:
    asked = entry["asked"]
    if "patient" in asked:
        return str(asked["patient"])
    return str(Asked(0, **asked))


def _who_text(entry: dict) -> str:
    return f"{entry['name']} (MRN {entry['mrn'] or '-'}, {entry['path']})"


def _csv_row(outcome: str, entry: dict) -> list[object]:
    asked = entry["asked"]
    detail = entry.get("reason", "")
    if outcome == "ambiguous":
        detail = "; ".join(f"{c['key']} {c['name']} (MRN {c['mrn'] or '-'}, {c['path']})" for c in entry["candidates"])
    elif outcome == "duplicates":
        detail = f"same patient as line {entry['same_as']}" if entry["same_as"] is not None else "given twice"
    elif outcome == "restored" and entry.get("lacking"):
        detail = f"lacks what the backup could not read: {', '.join(entry['lacking'])}"
    return [entry["line"], "duplicate" if outcome == "duplicates" else outcome,
            asked.get("mrn", asked.get("patient", "")), asked.get("last_name", ""), asked.get("first_name", ""),
            asked.get("birth_date", ""), entry.get("key", ""), entry.get("name", ""), entry.get("mrn", ""),
            entry.get("path", ""), entry.get("directory", ""), entry.get("source", ""), entry.get("files", ""),
            entry.get("bytes", ""), detail]


def _lacking(unread_at_backup: list[dict]) -> list[str]:
    return RestoreSummary("", "", unread_at_backup=unread_at_backup).lacking()


@dataclass
class _Seen:
    """Who earlier rows named: an MRN (folded) or a patient key, and the line (None: a --patient) first naming it."""

    mrns: dict[str, int | None] = field(default_factory=dict)
    keys: dict[str, int | None] = field(default_factory=dict)

    def earlier(self, report: ListRestore, row: dict, mrn: str = "", key: str = "") -> bool:
        """Whether an earlier row named the same MRN or patient (noted in `report.duplicates`); else remember."""
        for seen, value in ((self.mrns, folding.compact(mrn)), (self.keys, key)):
            if value and value in seen:
                report.duplicates.append({**row, "same_as": seen[value], **({"key": key} if key else {})})
                return True
        if mrn:
            self.mrns[folding.compact(mrn)] = row["line"]
        if key:
            self.keys[key] = row["line"]
        return False


def restore_list(config: Config, catalog: Catalog, patients: PatientList, destination: Path, *, store: str = "",
                 group: str = "", progress: Progress | None = None,
                 restored: Callable[[dict], None] | None = None, sites: Collection[str] = ()) -> ListRestore:
    """Each patient of the list, found in the catalog by MRN or by last name and birth date, restored whole
    (the newest version, from the best place: a snapshot before an archive; on `store` only, when given)
    into a new folder of its own under `destination` (made if need be, 0700; its folders 0750 for `group`).
    `restored` is told of each patient restored, or not (its entry), as it happens: the web's audit trail.
    `sites`: only patients of these sites are found (a user limited to sites), none: every site."""
    started, now = time.monotonic(), datetime.now()
    report = ListRestore(str(destination), patients.to_json())
    report.catalog_empty = catalog.one("SELECT 1 FROM patients LIMIT 1") is None
    _made(destination)
    seen, progress = _Seen(), progress or NoProgress()
    progress.begin("Restoring patients", len(patients.rows))
    try:
        for asked in patients.rows:
            entry = _restore_row(report, seen, config, catalog, asked, destination, (store, group, sites), now)
            if entry is not None and restored is not None:
                restored(entry)
            progress.advance()
    finally:
        progress.end()
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _restore_row(report: ListRestore, seen: _Seen, config: Config, catalog: Catalog, asked: Asked,
                 destination: Path, where: tuple[str, str, Collection[str]], now: datetime) -> dict | None:
    """One row: resolved, restored, and its entry added to the report; the entry of a patient restored or failed.
    `where`: the store read from ("" any), the group of the folders made, the sites its patients may be of."""
    store, group, sites = where
    row = {"line": asked.line, "asked": asked.to_json()}
    if asked.problem:
        report.invalid.append({**row, "reason": asked.problem})
        return None
    if seen.earlier(report, row, mrn=asked.mrn):
        return None
    found = (patients_with_mrn(catalog, asked.mrn) if asked.mrn else
             patients_named(catalog, asked.last_name, asked.birth_date, asked.first_name))
    if sites:
        report.other_sites += [{"line": asked.line, "key": p["key"], "site": p["site"]} for p in found
                               if p["site"] not in sites]
        found = [patient for patient in found if patient["site"] in sites]
    if len(found) != 1 or found[0].get("partial"):  # a last name that is one word of another's is never a match
        if found:
            report.ambiguous.append({**row, "candidates": [_who(p) for p in found],
                                     **({"reason": "the last name asked is only part of each candidate's: check "
                                                   "the list"} if found[0].get("partial") else {})})
        else:
            what = "this MRN" if asked.mrn else "this last name and birth date" + (" and first name" if
                                                                                 asked.first_name else "")
            report.not_found.append({**row, "reason": f"no patient in the catalog has {what}"})
        return None
    who = _who(found[0])
    if seen.earlier(report, row, key=str(who["key"])):
        return None
    try:
        done = restore_into(destination, config, choose(catalog, config, str(who["key"]), store=store), group=group,
                            now=now)
    except CatalogError:
        raise  # the catalog itself failing is no one patient's fault: it stops the list
    except RtvaultError as error:
        entry = {**row, **who, "reason": str(error)}
        report.failed.append(entry)
        return entry
    entry = {**row, **who, "directory": done["directory"], "source": done["source"], "version": done["version"],
             "files": done["files"], "bytes": done["bytes"]}
    if lacking := _lacking(list(done.get("unread_at_backup") or [])):  # type: ignore[arg-type]
        entry["lacking"] = lacking
    report.restored.append(entry)
    report.files += int(done["files"])  # type: ignore[call-overload]
    report.bytes += int(done["bytes"])  # type: ignore[call-overload]
    return entry


def _made(destination: Path) -> None:
    """The destination, made (0700: it will hold patient data) when it does not exist."""
    if destination.exists() and not destination.is_dir():
        raise InputError(f"cannot restore into {destination}: it exists and is not a directory; choose a directory")
    try:
        if not destination.exists():
            destination.mkdir(parents=True)
            destination.chmod(0o700)
    except OSError as error:
        raise os_failure(error, destination, doing="create") from None


def restore_keys(store: Store, keys: Sequence[str], destination: Path, *, snapshot: str | None = None,
                 at: str | None = None, force: bool = False, progress: Progress | None = None) -> ListRestore:
    """Each patient a key names (path, MRN or PatientID, as `restore --patient`), found in the store's snapshots
    and restored at its relative path under `destination` (the version `snapshot` or `at` chooses, else the
    newest); a key naming no patient, or several, is said and the others are restored."""
    started = time.monotonic()
    report = ListRestore(str(destination))
    manifests = store.manifests_and_damage()[0]
    seen, progress = _Seen(), progress or NoProgress()
    progress.begin("Restoring patients", len(keys))
    try:
        for key in keys:
            _restore_key(report, seen, store, manifests, key, destination, snapshot, at, force)
            progress.advance()
    finally:
        progress.end()
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _restore_key(report: ListRestore, seen: _Seen, store: Store, manifests: list[Manifest], key: str,
                 destination: Path, snapshot: str | None, at: str | None, force: bool) -> None:
    row: dict = {"line": None, "asked": {"patient": key}}
    try:
        found = versions(store, key, manifests)
    except NoSuchPatient as error:
        report.not_found.append({**row, "reason": str(error)})
        return
    except SeveralPatients as error:
        report.ambiguous.append({**row, "candidates": [_entry_who(entry) for entry in error.entries]})
        return
    who = _entry_who(found[-1].entry)
    if seen.earlier(report, row, key=str(who["key"])):
        return
    try:
        summary = restore_patient(store, found[-1].path, destination, snapshot=snapshot, at=at, force=force)
    except RestoreIncomplete as incomplete:
        failure = incomplete.summary.failed[0]
        report.files += incomplete.summary.files
        report.bytes += incomplete.summary.bytes
        report.failed.append({**row, **who, "reason": str(incomplete), "files_written": failure["files_written"],
                              "files_not_written": failure["files_not_written"],
                              "older_snapshot": failure["older_snapshot"]})
        return
    except RtvaultError as error:
        report.failed.append({**row, **who, "reason": str(error)})
        return
    entry = {**row, **who, "directory": str(destination / found[-1].path), "source": f"snapshot {summary.snapshot}",
             "files": summary.files, "bytes": summary.bytes}
    if lacking := summary.lacking():
        entry["lacking"] = lacking
    report.restored.append(entry)
    report.files += summary.files
    report.bytes += summary.bytes


def restore_list_web(config: Config, catalog: Catalog, data: bytes, name: str,
                     restored: Callable[[dict], None] | None = None,
                     sites: Collection[str] = ()) -> tuple[ListRestore, str]:
    """The web's list restore: the list in `data` (the file `name` a form sent, at most WEB_MOST_ROWS rows),
    each patient restored into a new folder of `[web] restore_dir` as one restore from the web is; the report,
    and the id it is kept under (`kept_report`), "" when it could not be kept (said in its `problems`)."""
    base = web_restore_dir(config)
    if not data and not name:
        raise InputError("csv: choose the CSV file listing the patients (MRN, or last name and birth date)")
    patients = read_patient_list(data, name or "list.csv", most_rows=WEB_MOST_ROWS)
    report = restore_list(config, catalog, patients, base, group=config.web.restore_group, restored=restored,
                          sites=sites)
    return report, keep_report(base, report)


def keep_report(base: Path, report: ListRestore) -> str:
    """Keep the report as CSV in `base`/.rtvault-reports (owner-only: it names patients) under a new id; ""
    when it cannot be written (the restores stand: the problem is added to the report)."""
    report_id = f"{datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    try:
        write_atomically(base / REPORTS / f"{report_id}.csv", report.to_csv(), private=True)
    except OSError as error:
        report.problems.append(f"the report could not be kept in {base / REPORTS}: {os_advice(error)}")
        return ""
    return report_id


def kept_report(config: Config, report_id: str) -> bytes:
    """The CSV of a list restore the web interface kept (`keep_report`)."""
    if not _REPORT_ID.fullmatch(report_id):
        raise NotFound(f"no list restore report {report_id!r}", "report")
    path = web_restore_dir(config) / REPORTS / f"{report_id}.csv"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no list restore report {report_id!r} in {path.parent}", "report") from None
    except OSError as error:
        raise os_failure(error, path, doing="read") from None
