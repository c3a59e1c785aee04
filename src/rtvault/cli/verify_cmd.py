"""`rtvault verify` and `rtvault repair`: every store re-read over a cycle, damage healed from another store."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, echo, emit_json, json_option, progress_for, update_catalog
from rtvault.config import Config
from rtvault.copies.repair import RepairReport, VerifyOutcome, repair_stores, verify_stores
from rtvault.copies.sealed import check_without_key
from rtvault.copies.verify import parse_budget
from rtvault.errors import ExitCode, InputError
from rtvault.jobs.stores import sealed_backend_of
from rtvault.jobs.stores import store_name as configured_store


@click.command("verify", epilog="""\b
Examples:
  rtvault verify                          # today's share of every store ([verify] cycle_days)
  rtvault verify --store secondary --budget 10m
  rtvault verify --budget 5% --json
  rtvault verify --all                    # every file of every store, now
  rtvault verify --store offsite --without-key   # an encrypted store, checked with no passphrase
""")
@store_option
@click.option("--budget", metavar="DURATION|PERCENT",
              help="Verify for this long (90s, 10m, 2h) or this share of the store (5%) instead of the cycle's "
                   "daily share.")
@click.option("--all", "everything", is_flag=True, help="Verify every file of the store in this run.")
@click.option("--without-key", is_flag=True,
              help="An encrypted store (--store): check every file's checksum without the passphrase.")
@json_option
@click.pass_obj
def verify_command(app: AppContext, store_name: str | None, budget: str | None, everything: bool,
                   without_key: bool, as_json: bool) -> None:
    """Re-read and re-hash the next slice of each store (or of --store), so that every file is covered once per
    [verify] cycle_days when run daily; finds missing, corrupt and unexpected files.

    Verifying only reads and takes no lock. With [verify] repair = true, problems found are repaired at once
    from another store. Exit code 7 while problems remain, 8 when a store cannot be read.
    """
    config = app.load_config()
    if without_key:
        _verify_sealed(config, store_name, as_json)
        return
    outcomes = verify_stores(config, store_name, budget=parse_budget(budget), all=everything,
                             progress=progress_for(as_json))
    if any(o.repair and o.repair.repaired for o in outcomes):
        update_catalog(config)
    if as_json:
        emit_json({"stores": [o.to_json() for o in outcomes], "healthy": all(o.healthy for o in outcomes)})
    else:
        for outcome in outcomes:
            _echo_outcome(outcome)
    _exit(next((o.error.exit_code for o in outcomes if o.error), None), not all(o.healthy for o in outcomes))


def _echo_outcome(outcome: VerifyOutcome) -> None:
    report = outcome.report
    if report is not None:
        cycle = "cycle complete" if report.cycle_completed else f"cycle {report.coverage_percent:.1f} % covered"
        echo(f"{outcome.store}: verified {report.objects_verified} of {report.total} files "
             f"({_size(report.bytes)}) in {report.duration_s:.1f} s; {cycle}")
    if outcome.repair is not None:
        _echo_repair(outcome.repair)
    for problem in report.problems if report else []:
        echo(f"  {problem.kind:<10} {problem.key}: {problem.detail} (since {problem.found})")
    if outcome.error is not None:
        echo(f"rtvault: error: {outcome.store}: {outcome.error}", err=True)


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _echo_repair(report: RepairReport) -> None:
    echo(f"{report.store}: repaired {len(report.repaired)}, not repairable {len(report.unrepairable)}"
         + (f", {len(report.already_good)} good again" if report.already_good else ""))
    for item in report.repaired:
        echo(f"  repaired   {item['key']} (from {item['from']})")
    for item in report.unrepairable:
        echo(f"  NOT REPAIRED {item['key']}: {item['detail']}")
    for warning in report.warnings:
        echo(f"  warning: {warning}", err=True)


def _exit(error_code: int | None, problems: bool) -> None:
    """The first store's error code (8: unreadable, 6: locked), else 7 while problems remain."""
    if error_code:
        click.get_current_context().exit(int(error_code))
    if problems:
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))


@click.command("repair", epilog="""\b
Examples:
  rtvault repair                          # every store whose last verify found damage
  rtvault repair --store primary --json
  rtvault verify --all --store primary && rtvault repair --store primary
""")
@store_option
@json_option
@click.pass_obj
def repair_command(app: AppContext, store_name: str | None, as_json: bool) -> None:
    """Replace each missing or corrupt file that verify found on a store (each store without --store) by a copy
    from another configured store, used only once it verifies there; the repaired file is verified again.

    Holds the store's writer lock. Exit code 7 when something could not be repaired (no good copy anywhere).
    """
    config = app.load_config()
    reports = repair_stores(config, store_name, progress=progress_for(as_json))
    if any(r.repaired for r in reports):
        update_catalog(config)
    if as_json:
        emit_json({"stores": [r.to_json() for r in reports], "healthy": all(r.healthy for r in reports)})
    else:
        for report in reports:
            _echo_repair(report)
    _exit(None, not all(r.healthy for r in reports))


def _verify_sealed(config: Config, wanted: str | None, as_json: bool) -> None:
    if wanted is None:
        raise InputError("--without-key checks one encrypted store: name it with --store")
    name = configured_store(config, wanted)
    report = check_without_key(name, sealed_backend_of(config, name))
    if as_json:
        emit_json(report.to_json())
    else:
        echo(f"{name}: {report.files} sealed files ({_size(report.bytes)}) checked without the key in "
             f"{report.duration_s:.1f} s; {len(report.problems) or 'no'} problem(s)")
        for problem in report.problems:
            echo(f"  {problem.file}: {problem.message}")
    if report.problems:
        click.get_current_context().exit(int(ExitCode.CHECK_FAILED))
