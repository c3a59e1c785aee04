"""Dose files of a treatment: `plan.Trial.binary.NNN`, big-endian float32 in cGy per MU, x fastest, one per beam."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rtvault.errors import PartialResult

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_source import PatientFiles
    from rtvault.pinnacle.treatment_types import Beam, Trial


def load_beam_dose(source: PatientFiles, trial: Trial, beam: Beam) -> np.ndarray | None:
    """A beam's dose (cGy/MU, float32 native order, shape (z, y, x)); None when the model found no usable file
    (a problem already says why); PartialResult when the file can no longer be read."""
    if beam.dose_file is None or trial.dose_grid is None:
        return None
    nx, ny, nz = trial.dose_grid.dims
    try:
        data = source.read(beam.dose_file)
    except OSError as error:
        raise PartialResult(f"{beam.dose_file}: cannot be read ({error.strerror or error}): beam {beam.name!r} has "
                            "no dose; check the source and run again.") from error
    if len(data) != nx * ny * nz * 4:
        raise PartialResult(f"{beam.dose_file}: {len(data)} bytes where the dose grid needs {nx * ny * nz * 4}: "
                            f"beam {beam.name!r} has no dose.")
    return np.frombuffer(data, dtype=">f4").reshape(nz, ny, nx).astype(np.float32)


def fractions_of(trial: Trial, beam: Beam) -> int | None:
    prescription = next((p for p in trial.prescriptions if p.name == beam.prescription_name), None)
    return prescription.fractions if prescription is not None else None


def trial_dose_gy(source: PatientFiles, trial: Trial) -> np.ndarray | None:
    """Σ over beams of dose (cGy/MU) × MU × fractions / 100: the trial's total dose in Gy (float32, (z, y, x));
    beams without their file, MU or fractions are left out (the model's problems name them); None when none is
    left."""
    total: np.ndarray | None = None
    for beam in trial.beams:
        fractions = fractions_of(trial, beam)
        if beam.monitor_units is None or not fractions:
            continue
        dose = load_beam_dose(source, trial, beam)
        if dose is None:
            continue
        scaled = dose * np.float32(beam.monitor_units * fractions / 100.0)
        total = scaled if total is None else total + scaled
    return total
