"""`rtvault report`: the month's evidence (runs, drills, verification, alerts) for the quality manager's file."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.evidence_report import LANGUAGES, MonthReport, report


def _last_month() -> str:
    return (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


@click.command("report", epilog="""\b
Examples:
  rtvault report --month 2026-11 --out rapport-2026-11.pdf
  rtvault report --out last-month.pdf --lang en          # the month before this one, in English
  rtvault report --month 2026-12 --out now.html --json   # the month so far; its figures as JSON
  lp rapport-2026-11.pdf                                  # print it (CUPS)
\b
Read from the run journal (the daemon's runs, `rtvault drill`, failovers) as the catalog indexes it: every run
per job and per day and each one that did not succeed, the restore drills against [continuity]'s targets, how
much of each store was verified, and each health alert from its first report to its resolution. What is
missing (a store never verified, no drill, a month without runs, an alert still open) is printed and said on
stderr (exit 0). The month is local time. After the loss of the catalog, `rtvault catalog sync` first.
""")
@click.option("--month", default=None, metavar="YYYY-MM", help="The month (local time); default: the previous one.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .pdf or .html (the format follows the extension).")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True, help="Language.")
@reported
@click.pass_obj
def report_command(app: AppContext, month: str | None, out: Path, lang: str, as_json: bool) -> MonthReport:
    """Write the monthly report of runs, restore drills, verification coverage and alerts (PDF or HTML)."""
    return report(app.load_config(), month or _last_month(), out, lang)
