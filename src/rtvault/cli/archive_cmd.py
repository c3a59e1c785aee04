"""`rtvault archive ...`: archives of finished and deleted patients, and old archives imported."""

from __future__ import annotations

import getpass
from datetime import date, datetime
from pathlib import Path

import click

from rtvault.archive import records
from rtvault.archive.formats import ArchivedPatient
from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, journalled, reported
from rtvault.configured import open_store
from rtvault.errors import InputError
from rtvault.jobs import archives, archiving, destruction
from rtvault.jobs.archive_now import ArchivedNow, archive_now
from rtvault.report import Plain


@click.group("archive")
def archive() -> None:
    """Archives: Pinnacle-format tar files of finished and deleted patients, and old archives imported."""


@archive.command("ingest", epilog="""\b
Examples:
  rtvault archive ingest /media/dvd-2009/*.tar.gz
  rtvault archive ingest /mnt/old-tapes --json
""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@reported
@click.pass_obj
def ingest_command(app: AppContext, paths: tuple[Path, ...], store_name: str | None,
                   as_json: bool) -> archiving.Ingested:
    """Import archive files (.tar, .tar.gz; directories are searched): verified, hashed, indexed.

    Damaged archives are salvaged; ingesting the same file twice adds nothing.
    """
    config = app.load_config()
    return archiving.ingest(config, open_store(config, store_name, write=True), list(paths))


@archive.command("sweep", epilog="""\b
Examples:
  rtvault archive sweep
  rtvault archive sweep --json
""")
@store_option
@reported
@click.pass_obj
def sweep_command(app: AppContext, store_name: str | None, as_json: bool) -> archiving.Swept:
    """Archive every patient deleted from Pinnacle, and ingest the files dropped in [archive] inbox."""
    config = app.load_config()
    return archiving.sweep(config, open_store(config, store_name, write=True))


@archive.command("now", epilog="""\b
Examples:
  rtvault archive now --patient 2021993744
  rtvault archive now --patient Institution_1/Mount_0/Patient_7 --patient 2019843156
  rtvault archive now --idle --json
""")
@click.option("--patient", "keys", multiple=True, metavar="KEY",
              help="MRN, PatientID or patient path (repeat for several patients).")
@click.option("--idle", is_flag=True, help="Every patient unchanged in Pinnacle for [reconcile] idle_months.")
@store_option
@reported
@click.pass_obj
def now_command(app: AppContext, keys: tuple[str, ...], idle: bool, store_name: str | None,
                as_json: bool) -> ArchivedNow:
    """Archive a patient's latest version now, as a Pinnacle-format tar, before it is deleted from Pinnacle.

    From the newest snapshot holding it; a version already archived is not archived again. --idle: every
    patient unchanged for [reconcile] idle_months and exactly as its newest snapshot holds it (one that changed
    since is named: back it up first, exit code 9). `rtvault reconcile` then says when it is safe to delete.
    """
    if bool(keys) == idle:
        raise click.UsageError("give --patient KEY (repeatable) or --idle")
    config = app.load_config()
    return archive_now(config, open_store(config, store_name, write=True), keys=keys, idle=idle)


@archive.command("list", epilog="""\b
Examples:
  rtvault archive list
  rtvault archive list --patient 2021993744 --json
""")
@click.option("--patient", "key", help="Only archives holding this patient (MRN, PatientID or path).")
@store_option
@reported
@click.pass_obj
def list_command(app: AppContext, key: str | None, store_name: str | None, as_json: bool) -> Plain:
    """List the archives of the store (newest last)."""
    found = archiving.holding(open_store(app.load_config(), store_name), key)
    listed = [{**r.summary_json(), **({"integrity": r.integrity} if r.integrity else {})} for r in found]
    return Plain.of({"archives": listed}, *map(archiving.line, found), f"{len(found)} archive(s)")


@archive.command("show", epilog="""\b
Examples:
  rtvault archive show 3f2a9c
  rtvault archive show 3f2a9c --json
""")
@click.argument("archive_id")
@store_option
@reported
@click.pass_obj
def show_command(app: AppContext, archive_id: str, store_name: str | None, as_json: bool) -> Plain:
    """Show one archive: its patients, keep-until dates, the physics in force, damage and members."""
    store = open_store(app.load_config(), store_name)
    record = records.load(store, archive_id)
    keeps = {p.path: records.patient_keep(store, record, p) for p in record.patients}
    lines = [f"archive {record.id}",
             f"  file: {record.file} ({record.size} bytes, {record.compression}), {record.origin} "
             f"{record.created}, {len(record.members)} members"]
    for patient in record.patients:
        keep = keeps[patient.path]
        lines.append(f"  {patient.path}: {patient.last_name} {patient.first_name} (MRN {patient.mrn}), "
                     f"{patient.files} files{'' if patient.complete else ', INCOMPLETE'}{_counts(patient)}; "
                     f"keep until {keep.date or 'further notice'}: {keep.rule}")
        lines += [f"    warning: {warning}" for warning in patient.warnings]
    lines += [f"  physics in force: snapshot {p.snapshot} of the source {p.source} ({p.time})"
              for p in record.physics] or ["  no physics snapshot recorded"]
    lines.append(f"  status: {record.state}")
    lines += [f"  problem: {problem}" for problem in record.problems]
    lines += [f"  not whole: {text}" for text in record.not_whole()]
    return Plain.of({**record.summary_json(), "physics": [p.to_json() for p in record.physics],
                     "members": [m.to_json() for m in record.members],
                     "keep_until": {k: {"date": v.date.isoformat() if v.date else None, "rule": v.rule}
                                    for k, v in keeps.items()}}, *lines)


def _counts(patient: ArchivedPatient) -> str:
    counts = [f"{len(names)} {key}" for key in ("lost", "unverified", "missing") if (names := getattr(patient, key))]
    return f" ({', '.join(counts)})" if counts else ""


@archive.command("export", epilog="""\b
Examples:
  rtvault archive export --patient 2021993744 --out lefevre.tar
  rtvault archive export --patient Institution_1/Mount_0/Patient_7 --archive 3f2a9c --out p7.tar
  rtvault archive export --patient 2021993744 --out lefevre.tar --with-physics lefevre-physics
""")
@click.option("--patient", "key", required=True, help="MRN, PatientID or patient path.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Tar file to write.")
@click.option("--snapshot", help="Snapshot id or prefix (default: the latest holding the patient).")
@click.option("--archive", "archive_id", help="Take the patient from this archive instead of a snapshot.")
@click.option("--with-physics", "physics_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the physics in force for that version into this directory (new or empty).")
@click.option("--force", is_flag=True, help="Overwrite --out (and files in --with-physics) if they exist.")
@store_option
@reported
@click.pass_obj
def export_command(app: AppContext, key: str, out: Path, snapshot: str | None, archive_id: str | None,
                   physics_dir: Path | None, force: bool, store_name: str | None, as_json: bool) -> archiving.Exported:
    """Write a fresh Pinnacle-format tar of a patient version, for Pinnacle's import or a colleague.

    --with-physics DIR: also the physics tree in force for that version (an archive's recorded physics snapshot;
    for a snapshot, the newest physics snapshot of its site at or before it), restored byte for byte, so the plan
    can be reopened on another Pinnacle; the machines its plans name that this physics lacks are named (exit 9).
    """
    return archiving.Exported(archives.export(open_store(app.load_config(), store_name), key, out, snapshot=snapshot,
                                              archive_id=archive_id, force=force, with_physics=physics_dir))


@archive.command("expired", epilog="""\b
Examples:
  rtvault archive expired
  rtvault archive expired --all --json
""")
@click.option("--all", "everything", is_flag=True, help="List every archived patient, not only the expired.")
@store_option
@reported
@click.pass_obj
def expired_command(app: AppContext, everything: bool, store_name: str | None, as_json: bool) -> Plain:
    """Archived patients whose legal keeping period is over: for a human decision, nothing is deleted."""
    rows = archiving.expired(open_store(app.load_config(), store_name), date.today(), everything)
    return Plain.of({"patients": rows}, *(f"{row['archive'][:12]}  {row['path']}  {row['last_name']} "
                                          f"{row['first_name']}  keep until {row['keep_until'] or 'further notice'}"
                                          f"  ({row['rule']})" for row in rows), f"{len(rows)} patient(s)")


@archive.command("override", epilog="""\b
Examples:
  rtvault archive override 3f2a9c --hold --reason "litigation, letter of 2026-11-02"
  rtvault archive override 3f2a9c --patient 2021993744 --death 2027-03-01 --reason "death certificate"
  rtvault archive override 3f2a9c --last-visit 2031-05-04 --reason "consultation in the HIS"
""")
@click.argument("archive_id")
@click.option("--patient", "key", help="Only this patient of the archive (default: all its patients).")
@click.option("--hold", "kind", flag_value="hold", help="Litigation hold: never destroyed until released.")
@click.option("--release", "kind", flag_value="release", help="End the litigation holds.")
@click.option("--death", "death", type=click.DateTime(["%Y-%m-%d"]), help="Known date of death.")
@click.option("--last-visit", "last_visit", type=click.DateTime(["%Y-%m-%d"]), help="Last visit known elsewhere.")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]), help="Keep at least until this date.")
@click.option("--reason", required=True, help="Why (recorded with your user name and the time).")
@store_option
@journalled
@click.pass_obj
def override_command(app: AppContext, archive_id: str, key: str | None, kind: str | None, death: datetime | None,
                     last_visit: datetime | None, until: datetime | None, reason: str, store_name: str | None) -> None:
    """Record an administrator's retention override (immutable, audited) for an archive or one patient."""
    given = [(k, v) for k, v in (("hold", kind == "hold"), ("release", kind == "release"), ("death", death),
                                 ("last_visit", last_visit), ("until", until)) if v]
    if len(given) != 1:
        raise InputError("give exactly one of --hold, --release, --death, --last-visit, --until")
    what, value = given[0]
    day = value.date() if hasattr(value, "date") else None
    config = app.load_config()
    store = open_store(config, store_name, write=True)
    problem = archiving.record_override(config, store, archive_id, key, what, day, reason, getpass.getuser())
    if problem:
        echo(f"rtvault: warning: {problem}", err=True)
    echo(f"recorded {what} for archive {archive_id}" + (f" patient {key}" if key else ""))


@archive.command("delete", epilog="""\b
Examples:
  rtvault archive delete 3f2a9c --reason "retention ended, committee of 2046-03-02" --certificate destruction.pdf
  rtvault archive delete 3f2a9c --certificate destruction.pdf --lang en   # again: the certificate as it stands
  rtvault archive delete --pending --json       # finish what a store offline or a disk unplugged kept
""")
@click.argument("archive_id", required=False)
@click.option("--reason", help="Why the archive is destroyed (required the first time; in the certificate, with "
                               "your user name).")
@click.option("--certificate", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the destruction certificate to this file (.pdf or .html).")
@click.option("--lang", type=click.Choice(destruction.LANGUAGES), default="fr", show_default=True,
              help="Language of the certificate.")
@click.option("--pending", is_flag=True, help="Carry on every destruction with a copy still to remove.")
@reported
@click.pass_obj
def delete_command(app: AppContext, archive_id: str | None, reason: str | None, out: Path | None, lang: str,
                   pending: bool, as_json: bool) -> destruction.Destroyed:
    """Legal destruction: remove an archive whose every patient is past its keep-until date from every store and
    every removable disk that holds it (refused otherwise, exit 4), and certify it.

    Admin only: run by the operating-system user who can write the stores and the catalog; that user, this host
    and --reason are recorded. A store that does not answer, or a disk not mounted, keeps its copy listed as
    pending destruction (in `rtvault status`, `rtvault health` and the dashboard; exit 9) until `--pending` or
    the disk's next `volume sync`/`verify` removes it. Run again after a crash: it carries on.
    """
    config = app.load_config()
    if pending:
        if archive_id or reason or out:
            raise click.UsageError("--pending takes no ARCHIVE_ID, --reason or --certificate")
        return destruction.resume(config)
    if not archive_id:
        raise click.UsageError("give ARCHIVE_ID (and --reason), or --pending")
    return destruction.destroy(config, archive_id, reason, date.today(), out=out, lang=lang)
