"""`rtvault passphrase`: the passphrase of an encrypted store."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.backup_cmd import store_option
from rtvault.cli.output import AppContext, reported
from rtvault.configured import change_passphrase
from rtvault.report import Plain


@click.command("passphrase", epilog="""\b
Examples:
  rtvault passphrase --store offsite --new /etc/rtvault/offsite-passphrase.new
  mv /etc/rtvault/offsite-passphrase.new /etc/rtvault/offsite-passphrase    # then print it for the safe
""")
@click.option("--new", "new_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the new passphrase (readable by its owner only).")
@store_option
@reported
@click.pass_obj
def passphrase_command(app: AppContext, new_file: Path, store_name: str | None, as_json: bool) -> Plain:
    """Change the passphrase of an encrypted store: its key is re-wrapped, no data file changes.

    The store's passphrase_file must hold the current passphrase; afterwards, move the new file over it (or
    point passphrase_file at the new file), print the new passphrase for the safe and destroy the old sheet.
    """
    done = change_passphrase(app.load_config(), store_name, new_file)
    return Plain.of(done, f"store {done['store']}: passphrase changed ({', '.join(done['key_files'])} "  # type: ignore[arg-type]
                          f"re-wrapped); now move {new_file} over the configured passphrase_file")
