"""`rtvault init`, `rtvault backup` and `rtvault snapshots`."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, progress_for, reported
from rtvault.configured import init_stores, open_store
from rtvault.jobs.backup import backup
from rtvault.jobs.backup_report import BackedUp, BackedUpSources
from rtvault.report import Plain

store_option = click.option("--store", "store_name", help="Store name from the configuration (default: the first).")


@click.command("init", epilog="""\b
Examples:
  rtvault init
  rtvault --config /etc/rtvault/rtvault.toml init --json
""")
@reported
@click.pass_obj
def init_command(app: AppContext, as_json: bool) -> Plain:
    """Create the configured stores (does nothing for a store that already exists).

    Refuses a directory that holds anything other than an rtvault store.
    """
    done = init_stores(app.load_config())
    return Plain.of({"stores": done}, *(f"store {item['store']}: {item['path']} "
                                        f"{'created' if item['created'] else 'already initialised'}" for item in done))


@click.command("backup", epilog="""\b
Examples:
  rtvault backup
  rtvault backup --json
  rtvault backup --allow-shrink     # after deleting many patients on purpose
  rtvault backup --source physics   # one of the configured [sources.<name>]
""")
@click.option("--allow-shrink", is_flag=True, help="Back up even if the patient count dropped suspiciously.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Back up this source only (repeatable; default: every configured source).")
@store_option
@reported
@click.pass_obj
def backup_command(app: AppContext, allow_shrink: bool, sources: tuple[str, ...], store_name: str | None,
                   as_json: bool) -> BackedUp | BackedUpSources:
    """Take a snapshot of each configured source ([source.pinnacle], [sources.<name>]) into the store.

    Incremental and deduplicated; each source has its own snapshots. Refuses a missing, empty or suspiciously
    shrunk source, or a physics tree configured as patients and the reverse (exit code 5; the other sources are
    still backed up).
    A patient, file or folder that cannot be read is named, its earlier copy kept, and the exit code is 9.
    Patients gone from Pinnacle are archived once the snapshot is saved; an archive that fails is named and the
    exit code is 9 (the next backup archives it).
    """
    config = app.load_config()
    store = open_store(config, store_name, write=True)
    return backup(config, store, sources=tuple(dict.fromkeys(sources)), allow_shrink=allow_shrink,
                  progress=progress_for(as_json))
