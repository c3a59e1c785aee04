"""`rtvault inspect PATH`: what a Pinnacle root, institution or patient directory holds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtvault.cli.output import emit_json, json_option, progress_for, safe
from rtvault.pinnacle import ScanResult, scan

EPILOG = """\b
Examples:
  rtvault inspect /PrimaryPatientData/NewPatients
  rtvault inspect /PrimaryPatientData/NewPatients/Institution_1
  rtvault inspect /PrimaryPatientData/NewPatients/Institution_1/Mount_0/Patient_7 --json
"""


@click.command("inspect", epilog=EPILOG)
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def inspect_command(path: Path, as_json: bool) -> None:
    """List the patients under PATH (a Pinnacle root, an Institution_N or a Patient_N directory).

    Read-only: nothing under PATH is ever written.
    """
    result = scan(path, progress=progress_for(as_json))
    if as_json:
        emit_json({"patients": [p.to_json() for p in result.patients],
                   "warnings": [w.to_json() for w in result.warnings]})
    else:
        _print_text(result)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _print_text(result: ScanResult) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: object) -> Text:  # a Text is shown as it is: no [markup], and safe() escaped its controls
        return Text(safe(value))

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title=cell(f"{len(result.patients)} patient(s) in {result.root}"))
    for column in ("Path", "Name", "MRN", "Birth date", "Radiation oncologist", "Plans", "Image sets", "Size"):
        table.add_column(column, justify="right" if column in ("Plans", "Image sets", "Size") else "left")
    for p in result.patients:
        name = f"{p.last_name} {p.first_name} {p.middle_name}".strip()
        table.add_row(cell(p.path), cell(name), cell(p.mrn), cell(p.birth_date or ""), cell(p.radiation_oncologist),
                      str(len(p.plans)), str(len(p.image_sets)), _human_size(p.size_bytes))
    console.print(table)
    if result.warnings:
        console.print(f"{len(result.warnings)} warning(s):")
        for warning in result.warnings:
            console.print(cell(f"  - {warning}"))
