"""`rtvault snapshots`, `rtvault diff` and `rtvault restore`."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.configured import open_catalog_for, open_store
from rtvault.configured import store_name as store_name_of
from rtvault.copies.volume_read import member_reader, open_volume
from rtvault.copies.volumes import volume_path
from rtvault.errors import InputError, PartialResult, os_failure
from rtvault.events import Progress
from rtvault.jobs import history
from rtvault.jobs.archives import restore_from_archive
from rtvault.jobs.machines import restore_physics
from rtvault.jobs.patient_list import MAX_BYTES as MAX_LIST_BYTES
from rtvault.jobs.patient_list import read_patient_list
from rtvault.jobs.restore import RestoreIncomplete, RestoreSummary, restore_all, restore_patient
from rtvault.jobs.restore_list import ListRestore, restore_keys, restore_list
from rtvault.localfile import write_atomically
from rtvault.report import OK, Line, Plain, Report, Verdict, err
from rtvault.store import Store
from rtvault.store.repository import SnapshotInfo


@click.command("snapshots", epilog="""\b
Examples:
  rtvault snapshots
  rtvault snapshots --patient 2021993744          # every version of one patient (MRN)
  rtvault snapshots --patient Institution_1/Mount_0/Patient_7 --json
""")
@click.option("--patient", "key", help="Medical record number, PatientID or patient path.")
@store_option
@reported
@click.pass_obj
def snapshots_command(app: AppContext, key: str | None, store_name: str | None, as_json: bool) -> Plain:
    """List the snapshots of the store, or the versions of one patient."""
    store = open_store(app.load_config(), store_name)
    if key:
        found = history.versions(store, key)
        rows = [{"snapshot": v.snapshot, "time": v.time, "path": v.path, "files": v.entry.files,
                 "bytes": v.entry.bytes, "tree": v.tree} for v in found]
        who = found[-1].entry
        return Plain.of({"patient": who.to_json(), "versions": rows},
                        f"{who.last_name} {who.first_name} (MRN {who.mrn}, {found[-1].path}):",
                        *(f"  {row['snapshot']}  {row['time']}  {row['files']} files  {row['bytes'] / 1e6:.1f} MB"
                          for row in rows))
    manifests, damaged = store.manifests_and_damage()
    infos = [SnapshotInfo.of(m) for m in manifests]
    lines: list[str | Line] = [f"{info.id}  {info.time}  {info.patients} patients  {info.files} files  "
                               f"{info.bytes / 1e6:.1f} MB" for info in infos]
    lines.append(f"{len(infos)} snapshot(s) in {store.location}")
    lines += [err(f"  DAMAGED {snapshot_id}: {why}") for snapshot_id, why in sorted(damaged.items())]
    outcome = Verdict.failed(PartialResult(
        f"{len(damaged)} snapshot manifest(s) are damaged (named above): heal the store (`rtvault verify --all`, "
        "then `rtvault repair`)")) if damaged else OK
    shown = {"damaged": [{"id": d, "error": why} for d, why in sorted(damaged.items())]} if damaged else {}
    return Plain.of({"snapshots": [info.__dict__ for info in infos], **shown}, *lines, outcome=outcome)


@click.command("diff", epilog="""\b
Examples:
  rtvault diff 20261123T180000Z latest
  rtvault diff latest~1 latest --json
""")
@click.argument("first")
@click.argument("second")
@store_option
@reported
@click.pass_obj
def diff_command(app: AppContext, first: str, second: str, store_name: str | None, as_json: bool) -> Plain:
    """Patients added, removed and changed between two snapshots (ids, unique prefixes, latest, latest~N)."""
    result = history.diff(open_store(app.load_config(), store_name), first, second)
    lines = [f"from {result['from']} to {result['to']}:"]
    for sign, kind in (("+", "added"), ("-", "removed")):
        lines += [f"  {sign} {who['path']}  {who['last_name']} {who['first_name']} (MRN {who['mrn']})"
                  for who in result[kind]]
    for change in result["changed"]:
        counts = ", ".join(f"{len(change[k])} {k.split('_')[1]}" for k in ("files_added", "files_removed",
                                                                            "files_changed") if change[k])
        lines.append(f"  ~ {change['path']}  ({counts})")
    return Plain.of(result, *lines)


@click.command("restore", epilog="""\b
Examples:
  rtvault restore --patient 2021993744 --to /tmp/restored
  rtvault restore --patient 2021993744 --patient 2019080178 --to /tmp/restored   # several: one report
  rtvault restore --patients-from list.csv --to /tmp/restored --report report.csv
  rtvault restore --patient Institution_1/Mount_0/Patient_7 --to /tmp/r --at "2026-11-23 18:00"
  rtvault restore --all --to /mnt/new-pinnacle/NewPatients --snapshot 20261124T0300
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive          # the newest archive holding it
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive 3f2a9c
  rtvault restore --patient 2021993744 --to /tmp/r --from-archive 3f2a9c --unverified
  rtvault restore --physics --to /tmp/physics --at "2026-01-07 12:00"       # the machines in force then
  rtvault restore --physics --source physics --to /tmp/physics

\b
A list (--patients-from) is a CSV file with a header line: an MRN column (mrn, IPP, medical record number
...), or a last name column (last_name, nom ...) with a birth date column (birth_date, date de naissance ...;
1957-03-14 or 14/03/1957), and optionally a first name column (first_name, prénom); separated by ; or , ;
UTF-8 or Latin-1. Each patient found in the catalog goes whole into a folder of its own under --to, with the
Institution file Pinnacle imports it with; exit 0 only when every row was restored, else 9.
""")
@click.option("--patient", "keys", multiple=True, metavar="KEY",
              help="Medical record number, PatientID or patient path; repeat it for several patients.")
@click.option("--patients-from", "patients_from", type=click.Path(dir_okay=False), metavar="FILE.csv",
              help="A CSV list of patients (MRN, or last name and birth date), found through the catalog.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), metavar="FILE.csv",
              help="With several patients: also write the report as CSV (one row per patient asked).")
@click.option("--all", "everything", is_flag=True, help="The whole database (disaster recovery).")
@click.option("--physics", is_flag=True,
              help="The physics tree (PinnacleSiteData) of the physics snapshot in force --at a date (default: the "
                   "newest).")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="Directory to restore under; the patient lands at its relative path.")
@click.option("--snapshot", help="Snapshot id or unique prefix (default: the latest holding the patient).")
@click.option("--at", "at", help="Date and time: the newest version at or before it.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist under --to.")
@click.option("--from-archive", "from_archive", is_flag=False, flag_value="", default=None, metavar="[ARCHIVE_ID]",
              help="Restore from an archive (the newest holding the patient, or the one given).")
@click.option("--unverified", is_flag=True,
              help="With --from-archive: also write the members of a gzip archive whose checksum failed (each is "
                   "named; any one of them may hold a wrong byte).")
@click.option("--source", "source", default=None, metavar="NAME",
              help="The configured source ([sources.NAME]) to restore from, when the store holds several (with "
                   "--physics: the physics source).")
@click.option("--volume", "volume", default=None, metavar="LABEL",
              help="Restore from the archives of this mounted removable disk instead of a store (--patient only).")
@store_option
@reported
@click.pass_obj
def restore_command(app: AppContext, keys: tuple[str, ...], patients_from: str | None, report_file: str | None,
                    everything: bool, physics: bool, to: str, snapshot: str | None, at: str | None, force: bool,
                    from_archive: str | None, unverified: bool, source: str | None, volume: str | None,
                    store_name: str | None, as_json: bool) -> Report:
    """Restore one patient (--patient KEY), several (--patient repeated, or --patients-from FILE.csv),
    everything (--all) or the physics (--physics), byte-identical, under --to.

    What a damaged store cannot give (a patient's tree, a file's content) is named with the reason and the
    commands that may help, everything else is restored, and the exit code is 9.
    """
    if sum((bool(keys), bool(patients_from), everything, physics)) != 1:
        raise InputError("give one of --patient KEY (repeated for several), --patients-from FILE.csv, --all or "
                         "--physics")
    if physics and (snapshot or from_archive is not None or volume is not None or report_file):
        raise InputError("--physics restores the physics snapshot in force --at a date (default: the newest): "
                         "--snapshot, --from-archive, --volume and --report do not go with it")
    if everything and at:
        raise InputError("--at goes with --patient; with --all give --snapshot")
    if unverified and from_archive is None:
        raise InputError("--unverified goes with --from-archive: snapshots hold only verified content")
    if not to.strip():  # an unset shell variable must not mean the current directory
        raise InputError("--to is empty: give the directory to restore under")
    if report_file is not None and len(keys) < 2 and not patients_from:
        raise InputError("--report goes with several patients (--patient repeated, or --patients-from)")
    destination = Path(to)
    if source is not None and (patients_from or len(keys) > 1 or from_archive is not None or volume is not None):
        raise InputError("--source goes with one --patient, --all or --physics, from the snapshots (archives and "
                         "lists name their patients themselves)")
    if patients_from or len(keys) > 1:
        return _restore_several(app, keys, patients_from, report_file, destination, snapshot, at, force,
                                from_archive, volume, store_name, as_json)
    key = keys[0] if keys else None
    if volume is not None:
        if everything or snapshot or at or store_name:
            raise InputError("--volume goes with --patient (and --from-archive ID) only: a disk holds archives")
        root = volume_path(app.load_config(), volume)
        disk = open_volume(root, volume)
        return Restored(restore_from_archive(disk, key or "", destination, archive_id=from_archive or None,
                                             force=force, unverified=unverified, progress=progress_for(as_json),
                                             read=member_reader(disk.backend)), ())  # type: ignore[arg-type]
    store = open_store(app.load_config(), store_name)
    progress = progress_for(as_json)
    try:
        if physics:
            summary = restore_physics(store, destination, at=at, source=source, force=force, progress=progress)
        else:
            summary = _restore(store, key, everything, destination, snapshot, at, force, from_archive, unverified,
                               source, progress)
    except RestoreIncomplete as incomplete:  # the others were restored: say so, name each failure, exit 9
        return Restored(incomplete.summary, tuple(_hints(incomplete.summary, store_name)), incomplete)
    return Restored(summary, ())


def _restore_several(app: AppContext, keys: tuple[str, ...], patients_from: str | None, report_file: str | None,
                     destination: Path, snapshot: str | None, at: str | None, force: bool, from_archive: str | None,
                     volume: str | None, store_name: str | None, as_json: bool) -> ListRestore:
    """Several patients, one report: a list through the catalog, or keys through the store."""
    if from_archive is not None or volume is not None:
        raise InputError("--from-archive and --volume restore one patient (each archive restore writes its own "
                         "Institution file at the top of --to): give one --patient, or use --patients-from, which "
                         "puts each patient in a folder of its own")
    report_path = Path(report_file) if report_file else None
    if report_path is not None and report_path.exists() and not force:
        raise InputError(f"{report_path} already exists: choose another --report file, or use --force")
    config = app.load_config()
    if patients_from:
        if snapshot or at or force:
            raise InputError("--patients-from restores the newest version of each patient into a new folder of "
                             "its own: --snapshot, --at and --force do not go with it")
        patients = read_patient_list(_read_list(Path(patients_from)), patients_from)
        with open_catalog_for(config) as catalog:
            report = restore_list(config, catalog, patients, destination,
                                  store=store_name_of(config, store_name) if store_name else "",
                                  progress=progress_for(as_json))
    else:
        report = restore_keys(open_store(config, store_name), keys, destination, snapshot=snapshot, at=at,
                              force=force, progress=progress_for(as_json))
    if report_path is not None:
        try:
            write_atomically(report_path, report.to_csv(), private=True)
        except OSError as error:
            raise os_failure(error, report_path, doing="write the report to") from None
    return report


def _read_list(path: Path) -> bytes:
    try:
        with path.open("rb") as source:
            return source.read(MAX_LIST_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: give the CSV file listing the patients") from None
    except OSError as error:
        raise os_failure(error, path, doing="read") from None


def _restore(store: Store, key: str | None, everything: bool, destination: Path, snapshot: str | None,
             at: str | None, force: bool, from_archive: str | None, unverified: bool, source: str | None,
             progress: Progress) -> RestoreSummary:
    if from_archive is not None:
        if everything or snapshot or at:
            raise InputError("--from-archive goes with --patient only (not --all, --snapshot or --at)")
        return restore_from_archive(store, key or "", destination, archive_id=from_archive or None, force=force,
                                    unverified=unverified, progress=progress)
    if everything:
        return restore_all(store, destination, snapshot=snapshot or "latest", source=source, force=force,
                           progress=progress)
    return restore_patient(store, key or "", destination, snapshot=snapshot, at=at, source=source, force=force,
                           progress=progress)


def _hints(summary: RestoreSummary, store_name: str | None) -> list[str]:
    """The commands that may bring back what was not restored."""
    store = f" --store {shlex.quote(store_name)}" if store_name else ""
    hints = []
    for failure in summary.failed:
        if failure["older_snapshot"] and failure["patient"]:
            force = " --force" if failure["files_written"] else ""
            hints.append(f"rtvault restore --patient {shlex.quote(failure['patient'])} --snapshot "
                         f"{failure['older_snapshot']} --to {shlex.quote(summary.to)}{store}{force}   (an older "
                         "version, which may be whole)")
    hints.append(f"rtvault verify --all{store} && rtvault repair{store}   (heals damaged files from another store "
                 "holding good copies; then run this restore again with --force)")
    return hints


@dataclass(frozen=True)
class Restored(Report):
    """A restore's summary for a person: what was written, each failure with the commands that may help, and the
    verdict (9 when a file could not be restored, or the backup could not read everything)."""

    summary: RestoreSummary
    hints: tuple[str, ...]
    failure: RestoreIncomplete | None = None

    def to_json(self) -> dict[str, object]:
        return {**self.summary.to_json(), **({"hints": list(self.hints)} if self.summary.failed else {})}

    def lines(self) -> Iterable[Line]:
        summary = self.summary
        source = summary.snapshot if summary.snapshot.startswith("archive") else f"snapshot {summary.snapshot}"
        if summary.files or not summary.incomplete:
            who = f"{len(summary.patients)} patient(s), " if summary.patients else ""  # a physics tree has none
            yield Line(f"restored {who}{summary.files} files, "
                       f"{summary.bytes / 1e6:.1f} MB from {source} into {summary.to} in {summary.duration_s:.1f} s")
        else:
            yield Line(f"restored nothing from {source}: no file of {', '.join(summary.patients)} can be written")
        yield from (err(f"  not written: {skipped}") for skipped in summary.skipped)
        yield from (err(f"  written UNVERIFIED (archive checksum failed, may hold a wrong byte): {name}")
                    for name in summary.unverified)
        yield from (err(f"  NOT RESTORED: {missing}") for missing in summary.incomplete)
        for failure in summary.failed:
            yield from _failure_lines(failure)
        for version in summary.unread_at_backup:
            for item in version["unreadable"]:
                where = f"{version['patient']}/{item['name']}".strip("/")
                yield err(f"  unreadable at backup time: {where} ({item['error']}): " + (
                    "an earlier copy was restored in its place" if item.get("carried_forward")
                    else "not in this version"))
        if self.hints:
            yield err("may help:")
            yield from (err(f"  {hint}") for hint in self.hints)

    def verdict(self) -> Verdict:
        summary, lacking = self.summary, self.summary.lacking()
        if self.failure is not None:
            return Verdict.failed(self.failure)
        if summary.incomplete:
            what = "nothing was written" if not summary.files else "the rest was written"
            return Verdict.failed(PartialResult(f"{len(summary.incomplete)} file(s) of {', '.join(summary.patients)} "
                                                f"could not be restored (named above); {what}"))
        if lacking:  # restored as backed up, but the backup could not read everything
            return Verdict.failed(PartialResult(
                f"the restored version(s) lack {len(lacking)} file(s) or folder(s) that the backup could not read "
                f"({', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}); an older snapshot may hold them "
                "(`rtvault snapshots --patient ...`)"))
        return OK


def _failure_lines(failure: dict) -> Iterable[Line]:
    who = failure["patient"] or "the root files (Institution, or a physics tree's files)"
    if not failure["files_not_written"]:
        yield err(f"NOT RESTORED {who}: {failure['reason']}")
        return
    yield err(f"INCOMPLETE {who}: {failure['files_written']} file(s) written, "
              f"{len(failure['files_not_written'])} not:")
    yield from (err(f"    {file['name']}: {file['reason']}") for file in failure["files_not_written"])
