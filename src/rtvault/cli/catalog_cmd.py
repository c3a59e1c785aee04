"""`rtvault search` and `rtvault catalog sync|rebuild`."""

from __future__ import annotations

import click

from rtvault.catalog.search import Criteria, search
from rtvault.cli.output import AppContext, reported
from rtvault.configured import open_catalog_for, store_labels
from rtvault.jobs.catalog import Synced, rebuild_all, refresh
from rtvault.jobs.catalog_backup import CatalogBackedUp, back_up
from rtvault.report import Plain


@click.group("catalog", epilog="""\b
Examples:
  rtvault catalog sync
  rtvault catalog rebuild --json
  rtvault catalog backup
""")
def catalog() -> None:
    """The catalog: the searchable index of every patient in the stores."""


@catalog.command("sync", epilog="""\b
Examples:
  rtvault catalog sync
  rtvault catalog sync --json
""")
@reported
@click.pass_obj
def sync_command(app: AppContext, as_json: bool) -> Synced:
    """Index what the stores gained or lost since the last sync (backup and ingest do it themselves)."""
    return Synced(tuple(refresh(app.load_config())))


@catalog.command("rebuild", epilog="""\b
Examples:
  rtvault catalog rebuild
  rtvault catalog rebuild --json
""")
@reported
@click.pass_obj
def rebuild_command(app: AppContext, as_json: bool) -> Synced:
    """Empty the patient index and rebuild it from the stores alone (users and the audit trail are kept).

    Then users, roles, tokens and removable disks are restored from the newest catalog backup on the stores
    (`rtvault catalog backup`) into a catalog created after it; what the catalog has already is kept as it is.
    """
    return rebuild_all(app.load_config())


@catalog.command("backup", epilog="""\b
Examples:
  rtvault catalog backup
  rtvault catalog backup --json
""")
@reported
@click.pass_obj
def backup_command(app: AppContext, as_json: bool) -> CatalogBackedUp:
    """Write what lives only in the catalog (users, roles, tokens, removable disks) to the stores.

    Only to a store that is encrypted or owner-only (a directory of mode 0700 owned by the user rtvault runs
    as): each other store is named with what would make it eligible. The daemon runs it daily
    ([schedule] catalog_backup); `rtvault catalog rebuild` restores it. Exit 9 when no store got it.
    """
    return back_up(app.load_config())


def _criteria_options(command):  # one --option per search criterion, named after Criteria's fields
    for name in reversed(Criteria.names()):
        meta = Criteria.labels()[name]
        command = click.option(f"--{name.replace('_', '-')}", name, default="",
                               help=f"{meta['label']['en']}: {meta['help']}.")(command)
    return command


@click.command("search", epilog="""\b
Examples:
  rtvault search --last-name lefevre
  rtvault search --last-name "n'diaye" --first-name jean-baptiste
  rtvault search --born 1950-1960 --physician martin --status archived --json
  rtvault search --mrn 2021993744
""")
@_criteria_options
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page of results.")
@click.option("--per-page", default=20, show_default=True, type=click.IntRange(1, 200), help="Results per page.")
@reported
@click.pass_obj
def search_command(app: AppContext, page: int, per_page: int, as_json: bool, **criteria: str) -> Plain:
    """Find patients in the catalog, with where each one is (snapshots, archives, stores).

    Names ignore accents, case and punctuation, match by prefix and tolerate one typo.
    """
    config = app.load_config()
    with open_catalog_for(config) as db:
        result = search(db, Criteria(**criteria), page=page, per_page=per_page, shown=store_labels(config, db))
    lines = []
    for p in result.patients:
        lines += [f"{p['last_name']} {p['first_name']}  MRN {p['mrn'] or '-'}  born {p['birth_date'] or '-'}  "
                  f"{p['status']}  {p['path'] or 'DICOM ' + p['mrn']}{_site(p)}",
                  f"    {', '.join([*(_where(loc) for loc in p['locations']), *_received(p['dicom'])])}"]
    shown = f"{(page - 1) * per_page + 1}-{(page - 1) * per_page + len(result.patients)}" if result.patients else "0"
    return Plain.of(result.to_json(), *lines, f"{shown} of {result.total}{'+' if result.more else ''} patient(s)")


def _site(patient: dict) -> str:
    named = [f"{what} {patient[what]}" for what in ("site", "source") if patient[what]]
    return f"  ({', '.join(named)})" if named else ""


def _received(dicom: dict | None) -> list[str]:
    if not dicom:
        return []
    return [f"DICOM, {dicom['studies']} study(ies), {dicom['series']} series, {dicom['instances']} instance(s) "
            f"(last received {dicom['last_received'][:16]})"]


def _where(location: dict) -> str:
    if location["kind"] == "snapshots":
        return f"{location['count']} snapshot(s) in {location['store']} (last {location['last'][:16]})"
    damaged = ", DAMAGED" if location["damaged"] else ""
    return f"archive {location['file']} in {location['store']}{damaged}"


@catalog.command("fill", epilog="""\b
Examples:
  rtvault catalog fill --patients 10000 --seed 1
  rtvault catalog fill --patients 1000000 --seed 7 --json
""")
@click.option("--patients", required=True, type=click.IntRange(min=1), help="How many synthetic patients to add.")
@click.option("--seed", default=1, show_default=True, type=int, help="The same seed gives the same patients.")
@click.option("--force", is_flag=True, help="Fill even a catalog that holds real patients (never in production).")
@reported
@click.pass_obj
def fill_command(app: AppContext, patients: int, seed: int, force: bool, as_json: bool) -> Plain:
    """Add synthetic patients to the catalog, for demonstrations and benchmarks.

    They live in a store named "synthetic" that no configuration has; `rtvault catalog rebuild` removes them.
    A catalog that already holds real patients is refused unless --force.
    """
    from rtvault.cli.output import progress_for
    from rtvault.demo.catalog import SYNTHETIC_STORE, fill
    from rtvault.errors import ConfigError

    config = app.load_config()
    if SYNTHETIC_STORE in config.stores:
        raise ConfigError(str(config.file), [f"stores.{SYNTHETIC_STORE}: that store name is reserved for synthetic "
                                             "patients; rename that store"])
    with open_catalog_for(config) as db:
        summary = fill(db, patients, seed, progress_for(as_json), force=force)
    return Plain.of(summary, f"{summary['patients']} synthetic patient(s) added to store {summary['store']} "
                             f"({summary['versions']} versions, {summary['locations']} locations, "
                             f"{summary['distinct_last_names']} distinct last names) in {summary['seconds']:.1f} s")
