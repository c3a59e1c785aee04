"""`rtvault machines`: the machines of the physics snapshots and their versions over time."""

from __future__ import annotations

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, reported
from rtvault.configured import open_store
from rtvault.jobs.machines import MachinesReport, machine_history


@click.command("machines", epilog="""\b
Examples:
  rtvault machines
  rtvault machines --at "2026-01-07 12:00"       # the machines in force then, one version each
  rtvault machines --source physics --json
""")
@click.option("--at", "at", help="Date and time: the machines of the physics snapshot in force then.")
@click.option("--source", "source", metavar="NAME", help="Only the physics of this source ([sources.NAME]).")
@store_option
@reported
@click.pass_obj
def machines_command(app: AppContext, at: str | None, source: str | None, store_name: str | None,
                     as_json: bool) -> MachinesReport:
    """List the machines of the physics snapshots (name, energies, version and commissioning dates read from
    their Pinnacle.Machine) with their versions over time: each distinct content of a machine's folder, first and
    last seen."""
    return machine_history(open_store(app.load_config(), store_name), at=at, source=source)
