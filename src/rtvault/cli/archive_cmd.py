"""`rtvault archive ...`: archives of finished and deleted patients, and old archives imported."""

from __future__ import annotations

import getpass
from datetime import date, datetime
from pathlib import Path

import click

from rtvault.archive import index, records
from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, update_catalog
from rtvault.errors import ExitCode, InputError, PartialResult
from rtvault.jobs import archives
from rtvault.jobs.history import matches
from rtvault.jobs.stores import open_store


@click.group("archive")
def archive() -> None:
    """Archives: Pinnacle-format tar files of finished and deleted patients, and old archives imported."""


def _line(summary: dict) -> str:
    who = ", ".join(f"{p['last_name']} {p['first_name']}".strip() or p["path"] for p in summary["patients"])
    state = index.archive_status(summary)
    state = "DAMAGED" if state == "damaged" else state
    what = who or (f"physics: {', '.join(summary['machines'])}" if summary["machines"] else "no patient")
    return f"{summary['id'][:12]}  {summary['created'][:10]}  {state:18}  {summary['file']}  {what}"


def _not_whole(summary: dict) -> list[str]:
    """Every file of the archive's patients that was lost, is unverified or was announced and is absent, and
    every patient its Institution header lists that it lacks, one line each."""
    lines = [f"{path}: listed in the Institution header, absent from the archive"
             for path in summary.get("missing", []) if summary["damaged"]]
    for patient in summary["patients"]:
        lines += [f"{name}: lost" for name in patient.get("lost", [])]
        lines += [f"{name}: {index.UNVERIFIED}" for name in patient.get("unverified", [])]
        lines += [f"{name}: announced but absent" for name in patient.get("missing", [])]
    return lines


@archive.command("ingest", epilog="""\b
Examples:
  rtvault archive ingest /media/dvd-2009/*.tar.gz
  rtvault archive ingest /mnt/old-tapes --json
""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@json_option
@click.pass_obj
def ingest_command(app: AppContext, paths: tuple[Path, ...], store_name: str | None, as_json: bool) -> None:
    """Import archive files (.tar, .tar.gz; directories are searched): verified, hashed, indexed.

    Damaged archives are salvaged; ingesting the same file twice adds nothing.
    """
    config = app.load_config()
    store = open_store(config, store_name)
    results, errors, warnings = archives.ingest(config, store, list(paths))
    for warning in warnings:
        echo(f"rtvault: warning: {warning}", err=True)
    update_catalog(config)
    partial = [r for r in results if r["damaged"] or _not_whole(r)]
    if as_json:
        emit_json({"archives": results, "errors": errors})
        if errors or partial:
            click.get_current_context().exit(int(ExitCode.INPUT if errors else ExitCode.PARTIAL))
        return
    for result in results:
        echo(("already stored  " if result["already"] else "") + _line(result))
        for problem in result["problems"][:20]:
            echo(f"    {problem}")
        if len(result["problems"]) > 20:
            more = len(result["problems"]) - 20
            echo(f"    ... {more} more problems: rtvault archive show {result['id'][:12]}")
        for line in _not_whole(result):
            echo(f"    NOT WHOLE: {line}")
    for error in errors:
        echo(f"rtvault: error: {error['error']}", err=True)
    if errors:
        raise InputError(f"{len(errors)} of {len(errors) + len(results)} file(s) could not be ingested")
    if partial:
        raise PartialResult(f"{len(partial)} of {len(results)} archive(s) stored but damaged or incomplete: what "
                            "could not be read is named above")


@archive.command("sweep", epilog="""\b
Examples:
  rtvault archive sweep
  rtvault archive sweep --json
""")
@store_option
@json_option
@click.pass_obj
def sweep_command(app: AppContext, store_name: str | None, as_json: bool) -> None:
    """Archive every patient deleted from Pinnacle, and ingest the files dropped in [archive] inbox."""
    config = app.load_config()
    result = archives.sweep(config, open_store(config, store_name))
    for warning in result["warnings"]:
        echo(f"rtvault: warning: {warning['file']}: {warning['message']}", err=True)
    update_catalog(config)
    damaged = [r for r in result["ingested"] if r["damaged"] or _not_whole(r)]
    if as_json:
        emit_json(result)
        if damaged or result["problems"]:
            click.get_current_context().exit(int(ExitCode.PARTIAL))
        return
    for summary in result["archived"]:
        echo(f"archived {_line(summary)}")
    for summary in result["ingested"]:
        echo(f"ingested {_line(summary)}")
        for line in _not_whole(summary):
            echo(f"    NOT WHOLE: {line}")
    for problem in result["problems"]:
        echo(f"  problem: {problem['file']}: {problem['message']}", err=True)
    echo(f"{len(result['archived'])} archived, {len(result['ingested'])} ingested")
    if not_archived := result["not_archived"]:
        raise PartialResult(f"{len(not_archived)} patient(s) gone from Pinnacle could not be archived "
                            f"({', '.join(not_archived)}): the reason is named above; each stays in its last "
                            "snapshot, which retention keeps; run the sweep again once that is fixed")
    if damaged or result["problems"]:
        raise PartialResult(f"{len(damaged)} archive(s) ingested damaged or incomplete and "
                            f"{len(result['problems'])} file(s) of the inbox not ingested (named above)")


@archive.command("list", epilog="""\b
Examples:
  rtvault archive list
  rtvault archive list --patient 2021993744 --json
""")
@click.option("--patient", "key", help="Only archives holding this patient (MRN, PatientID or path).")
@store_option
@json_option
@click.pass_obj
def list_command(app: AppContext, key: str | None, store_name: str | None, as_json: bool) -> None:
    """List the archives of the store (newest last)."""
    store = open_store(app.load_config(), store_name)
    found = [r for r in records.summaries(store) if key is None or any(matches(p, key) for p in r["patients"])]
    if as_json:
        emit_json({"archives": found})
        return
    for summary in found:
        echo(_line(summary))
    echo(f"{len(found)} archive(s)")


@archive.command("show", epilog="""\b
Examples:
  rtvault archive show 3f2a9c
  rtvault archive show 3f2a9c --json
""")
@click.argument("archive_id")
@store_option
@json_option
@click.pass_obj
def show_command(app: AppContext, archive_id: str, store_name: str | None, as_json: bool) -> None:
    """Show one archive: its patients, keep-until dates, damage and members."""
    store = open_store(app.load_config(), store_name)
    record = records.load(store, archive_id)
    keeps = {p["path"]: records.patient_keep(store, record, p) for p in record["patients"]}
    if as_json:
        emit_json({**index.summary(record), "members": record["members"],
                   "keep_until": {k: {"date": v.date.isoformat() if v.date else None, "rule": v.rule}
                                  for k, v in keeps.items()}})
        return
    echo(f"archive {record['id']}")
    echo(f"  file: {record['file']} ({record['size']} bytes, "
               f"{record['compression']}), {record['origin']} {record['created']}, {len(record['members'])} members")
    for patient in record["patients"]:
        keep = keeps[patient["path"]]
        echo(f"  {patient['path']}: {patient['last_name']} {patient['first_name']} (MRN {patient['mrn']}), "
             f"{patient['files']} files{'' if patient['complete'] else ', INCOMPLETE'}{_counts(patient)}; "
             "keep until "
                   f"{keep.date or 'further notice'}: {keep.rule}")
        for warning in patient.get("warnings", []):
            echo(f"    warning: {warning}")
    echo(f"  status: {index.archive_status(record)}")
    for problem in record["problems"]:
        echo(f"  problem: {problem}")
    for line in _not_whole(index.summary(record)):
        echo(f"  not whole: {line}")


def _counts(patient: dict) -> str:
    counts = [f"{len(patient.get(key, []))} {key}" for key in ("lost", "unverified", "missing") if patient.get(key)]
    return f" ({', '.join(counts)})" if counts else ""


@archive.command("export", epilog="""\b
Examples:
  rtvault archive export --patient 2021993744 --out lefevre.tar
  rtvault archive export --patient Institution_1/Mount_0/Patient_7 --archive 3f2a9c --out p7.tar
""")
@click.option("--patient", "key", required=True, help="MRN, PatientID or patient path.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Tar file to write.")
@click.option("--snapshot", help="Snapshot id or prefix (default: the latest holding the patient).")
@click.option("--archive", "archive_id", help="Take the patient from this archive instead of a snapshot.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@store_option
@json_option
@click.pass_obj
def export_command(app: AppContext, key: str, out: Path, snapshot: str | None, archive_id: str | None,
                   force: bool, store_name: str | None, as_json: bool) -> None:
    """Write a fresh Pinnacle-format tar of a patient version, for Pinnacle's import or a colleague."""
    result = archives.export(open_store(app.load_config(), store_name), key, out, snapshot=snapshot,
                             archive_id=archive_id, force=force)
    if as_json:
        emit_json(result)
        if result["incomplete"]:
            click.get_current_context().exit(int(ExitCode.PARTIAL))
        return
    echo(f"wrote {result['out']}: {result['members']} members, {result['bytes']} bytes")
    for missing in result["incomplete"]:
        echo(f"  NOT EXPORTED: {missing}", err=True)
    if result["incomplete"]:
        raise PartialResult(f"{len(result['incomplete'])} file(s) of the patient are not in {result['out']} "
                            "(named above)")


@archive.command("expired", epilog="""\b
Examples:
  rtvault archive expired
  rtvault archive expired --all --json
""")
@click.option("--all", "everything", is_flag=True, help="List every archived patient, not only the expired.")
@store_option
@json_option
@click.pass_obj
def expired_command(app: AppContext, everything: bool, store_name: str | None, as_json: bool) -> None:
    """Archived patients whose legal keeping period is over: for a human decision, nothing is deleted."""
    rows = archives.retention_rows(open_store(app.load_config(), store_name), date.today())
    rows = rows if everything else [r for r in rows if r["may_destroy"]]
    if as_json:
        emit_json({"patients": rows})
        return
    for row in rows:
        echo(f"{row['archive'][:12]}  {row['path']}  {row['last_name']} {row['first_name']}  "
                   f"keep until {row['keep_until'] or 'further notice'}  ({row['rule']})")
    echo(f"{len(rows)} patient(s)")


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
    archives.record_override(open_store(config, store_name), archive_id, key, what, day, reason, getpass.getuser())
    update_catalog(config, frozenset({archive_id}))
    echo(f"recorded {what} for archive {archive_id}" + (f" patient {key}" if key else ""))


@archive.command("delete", epilog="""\b
Examples:
  rtvault archive delete 3f2a9c
""")
@click.argument("archive_id")
@store_option
@json_option
@click.pass_obj
def delete_command(app: AppContext, archive_id: str, store_name: str | None, as_json: bool) -> None:
    """Destroy an archive whose every patient is past its keep-until date (refused otherwise)."""
    config = app.load_config()
    result = archives.delete_archive(open_store(config, store_name), archive_id, date.today())
    update_catalog(config)
    if as_json:
        emit_json(result)
    else:
        echo(f"deleted archive {result['deleted']} ({result['file']})")
