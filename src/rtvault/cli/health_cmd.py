"""`rtvault health`: every check of the site, for a person, a program (--json) or Nagios/Centreon (--nagios)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from rtvault.cli.output import AppContext, echo, error_lines, reported
from rtvault.errors import RtvaultError
from rtvault.jobs.health import HealthReport, evaluate
from rtvault.jobs.health_nagios import nagios_line, unknown_line


def _nagios(app: AppContext) -> int:
    """Print the plugin line; its exit code. Whatever stops the checks from running (the configuration, the
    catalog, a bug) is UNKNOWN (3) with its reason, as Centreon reads the exit code."""
    try:
        config = app.load_config()
        report = evaluate(config, datetime.now(UTC))
        line, code = nagios_line(config, report), int(report.status)
    except RtvaultError as error:
        line, code = unknown_line(" ".join(error_lines(error))), 3
    except Exception as error:  # a bug: still the UNKNOWN a plugin owes its caller, never a traceback
        line, code = unknown_line(f"rtvault health failed ({type(error).__name__}: {error}): a bug, rerun "
                                  "`rtvault --debug health` and report it"), 3
        if app.debug:
            raise
    echo(line)
    return code


@click.command("health", epilog="""\b
Examples:
  rtvault health
  rtvault health --json | jq -r '.checks[] | select(.status != "OK") | .message'
  rtvault health --nagios          # Centreon / Nagios: one line with perfdata, exit 0 1 2 3
\b
Checks: backup:<source> (age of the last backup), source:<source> (mounted, patient count), replication:<store>
(lag of each copy), verify:<store>, space:<store> (free space, days until full), daemon (its heartbeat),
copies (versions and archives on fewer than two verified stores), jobs (the last run of each job failed).
Thresholds are [health] in the configuration (docs/configuration.md).
\b
Exit codes: 0 every check OK, 7 one or more WARNING, CRITICAL or UNKNOWN (the output says which);
with --nagios 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a configuration or catalog error, or a wrong command
line, included).
""")
@click.option("--nagios", is_flag=True, help="Print one Nagios plugin line with perfdata; exit 0, 1, 2 or 3.")
@reported
@click.pass_obj
def health_command(app: AppContext, nagios: bool, as_json: bool) -> HealthReport | None:
    """One check per concern, each OK, WARNING, CRITICAL or UNKNOWN with its value, threshold and what to do."""
    if nagios and as_json:
        raise click.UsageError("--json and --nagios are two different outputs: give one of them")
    if nagios:
        click.get_current_context().exit(_nagios(app))
    return evaluate(app.load_config(), datetime.now(UTC))
