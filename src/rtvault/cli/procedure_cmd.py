"""`rtvault procedure`: the site's operating and emergency procedures, to print."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.procedure import LANGUAGES, ROLES, ProcedureReport, procedure


@click.command("procedure", epilog="""\b
Examples:
  rtvault procedure --out procedures.pdf                      # every role, in French
  rtvault procedure --lang en --role operator --out operator.pdf
  rtvault procedure --role physicist --out physicist.html     # HTML: the format follows the extension
  lp procedures.pdf                                           # print it (CUPS)
\b
Written from this site's configuration (file, stores, source root, [web] restore_dir, [site] name and contacts)
and its measured figures (the last `rtvault drill`, the removable disks): daily and weekly checks of each role,
how to restore one patient, rebuild the Pinnacle server, fail over and back, where the disks are, whom to call.
What the configuration lacks is printed as a field to complete by hand and named on stderr (exit 0).
Print it again after any change of the configuration and after each drill; keep the paper outside the server room.
""")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .pdf or .html (the format follows the extension).")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True, help="Language.")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="Only this role's procedures (physicist: physicist or dosimetrist); default: every role.")
@reported
@click.pass_obj
def procedure_command(app: AppContext, out: Path, lang: str, role: str | None, as_json: bool) -> ProcedureReport:
    """Write the site's printed operating and emergency procedures (PDF or HTML)."""
    return procedure(app.load_config(), out, lang, role)
