"""`rtvault demo generate` and `rtvault demo evolve`: synthetic Pinnacle databases (never real patients)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from rtvault.cli.output import progress_for, reported
from rtvault.report import Plain

if TYPE_CHECKING:
    from rtvault.demo.dicom import DemoDicom

GENERATE_EXAMPLES = """\b
Examples:
  rtvault demo generate --out demo-db --patients 20 --seed 1
  rtvault demo generate --out bench-db --patients 500 --seed 7 --image-mb 50 --json
"""

EVOLVE_EXAMPLES = """\b
Examples:
  rtvault demo evolve --db demo-db --day 1
  for d in 1 2 3; do rtvault demo evolve --db demo-db --day $d --json; done
  rtvault demo evolve --db demo-physics --day 2
"""

DICOM_EXAMPLES = """\b
Examples:
  rtvault demo dicom --to demo-dicom --patients 3 --seed 1
  rtvault demo dicom --to demo-dicom --json && rtvault dicom send orthanc demo-dicom
\b
Exit codes: 0 written; 4 TO exists and is not an empty directory, or cannot be written.
"""

PHYSICS_EXAMPLES = """\b
Examples:
  rtvault demo physics --out demo-physics
  rtvault demo physics --out demo-physics --seed 3 --json
"""


@click.group()
def demo() -> None:
    """Generate and evolve synthetic Pinnacle databases."""


@demo.command(epilog=GENERATE_EXAMPLES)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) directory to write the database into.",
)
@click.option("--patients", required=True, type=click.IntRange(min=1), help="Number of patients.")
@click.option("--seed", required=True, type=click.IntRange(min=0), help="Random seed: same seed, same bytes.")
@click.option(
    "--image-mb",
    default=4.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Approximate size of each CT image set, in MB (10^6 bytes).",
)
@reported
def generate(out: Path, patients: int, seed: int, image_mb: float, as_json: bool) -> Plain:
    """Write a synthetic Pinnacle database at OUT (never real patient data).

    Same seed and options, same bytes and mtimes. OUT must be new or empty.
    """
    from rtvault.demo import generate_database  # numpy: loaded only by the demo commands

    result = generate_database(out, patients, seed, image_mb, progress_for(as_json))
    return Plain.of(
        result.to_json(),
        f"Generated {len(result.patients)} patients in {result.out}: {result.files} files, "
        f"{result.bytes / 1e6:.1f} MB in {result.duration_s:.1f} s (seed {seed})."
    )


@demo.command(epilog=EVOLVE_EXAMPLES)
@click.option(
    "--db",
    "db",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A database written by `rtvault demo generate`, or a physics tree written by `rtvault demo physics`.",
)
@click.option("--day", required=True, type=click.IntRange(min=1), help="Clinical working day to play (1, 2, ...).")
@reported
def evolve(db: Path, day: int, as_json: bool) -> Plain:
    """Play one clinical day: edit plans, admit a patient, delete a finished one; on a physics tree, recommission
    one machine (a new version: its VersionTimestamp and a calibration change).

    Only trees written by `rtvault demo generate` or `rtvault demo physics` are accepted; file times are those of
    working day DAY after 2026-01-05.
    """
    from rtvault.demo import evolve_database

    result = evolve_database(db, day, progress_for(as_json))
    if result.recommissioned:
        return Plain.of(result.to_json(), f"Day {day}: recommissioned {', '.join(result.recommissioned)} "
                                          f"({', '.join(result.edited)}).")
    return Plain.of(
        result.to_json(),
        f"Day {day}: {len(result.edited)} files edited, {len(result.added)} added, {len(result.deleted)} deleted "
        f"(admitted {', '.join(result.added_patients) or 'nobody'}; "
        f"deleted {', '.join(result.deleted_patients) or 'nobody'})."
    )


@demo.command(epilog=PHYSICS_EXAMPLES)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) directory to write the PinnacleSiteData tree into.",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Random seed: same seed, same bytes.")
@reported
def physics(out: Path, seed: int, as_json: bool) -> Plain:
    """Write a synthetic PinnacleSiteData tree at OUT: the machines the plans of `rtvault demo generate` name
    (Physics/ReadOnlyMachineDB/Machine.<n>/Pinnacle.Machine), their commissioning measurements, scripts and
    solid models. `rtvault demo evolve --db OUT --day D` then gives a machine a new version.
    """
    from rtvault.demo import generate_physics

    tree = generate_physics(out, seed)
    return Plain.of(tree.to_json(), f"Generated the physics of {len(tree.machines)} machines in {tree.out} "
                                    f"({', '.join(tree.machines)}): {len(tree.files)} files, "
                                    f"{tree.bytes / 1e6:.1f} MB.")


@demo.command("dicom", epilog=DICOM_EXAMPLES)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New (or empty) directory to write the DICOM files into.")
@click.option("--patients", default=2, show_default=True, type=click.IntRange(min=1), help="Number of patients.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Random seed: same seed, same files (and the patients `demo generate` makes with it).")
@reported
def dicom_command(to: Path, patients: int, seed: int, as_json: bool) -> DemoDicom:
    """Write synthetic DICOM-RT objects at TO (never real patient data): per patient a CT series, an RTSTRUCT, an
    RTPLAN, RTDOSEs, an RT Image (DRR) per beam and an RT Beams Treatment Record per plan, with a DICOMDIR, under
    TO/<MRN>/. The patients are those `rtvault demo generate` makes with the same seed and number of patients
    (PatientID is their MRN), exported as `rtvault export dicom` does.
    """
    from rtvault.demo.dicom import generate_dicom  # numpy: loaded only by the demo commands

    return generate_dicom(to, patients, seed, progress_for(as_json))
