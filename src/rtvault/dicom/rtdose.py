"""RT Dose of one Pinnacle trial: each beam's dose (DoseSummationType BEAM) and the trial's sum (PLAN), in Gy over
all fractions (docs/design.md, "DICOM export", RTDOSE).

A beam's dose is its file's cGy per MU × MU × fractions / 100. The grid keeps Pinnacle's voxels: columns along
Pinnacle x, rows from the grid's highest y down, frames along z by `VoxelSize.Z` (never X), written so that
GridFrameOffsetVector increases from 0 along the image normal; ImagePositionPatient is the first written voxel
(the dose grid's origin corner in x and z, converted per patient position with the plan's frame offset). Pixel
data are 16-bit unsigned with DoseGridScaling = max ÷ 65000 (a step is 1.5·10⁻⁵ of the maximum; see `BITS`).
A beam without its dose file, MU or fractions gets no BEAM dose, and then no PLAN sum is written either (a sum
missing a beam would be wrong); each is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtvault.dicom.common import (
    RT_DOSE,
    RT_PLAN,
    Export,
    content_date,
    equipment,
    format_ds,
    format_ds_list,
    format_is,
    frame_of_reference,
    new_dataset,
    series,
)
from rtvault.dicom.rtplan import MANUFACTURER, MODEL, BuiltPlan, frame_uid, software
from rtvault.errors import PartialResult, Problem
from rtvault.pinnacle.coordinates import AXIS_SIGNS, dose_voxel_cm, to_dicom_mm
from rtvault.pinnacle.treatment_bulk import fractions_of
from rtvault.pinnacle.treatment_types import Beam, DoseGrid, Plan, Treatment, Trial

SERIES_NUMBER = 400  # RTDOSE series: 400 + the plan's id
# 16-bit pixels: dciodvfy (dicom3tools 1.00~20220618) aborts on BitsAllocated 32 ("Assertion `bitsallocated <=
# bytesinword*8u' failed"), so a 32-bit RT Dose could not be validated; 16 bits keep 1.5e-5 of the maximum.
BITS = 16
LEVELS = 65000.0  # the highest stored value is about this: under 2**16 - 1 whatever DoseGridScaling's rounding


@dataclass(frozen=True)
class BuiltDose:
    """One RT Dose: its dataset, SOP instance UID, and what it holds ("PLAN" or the beam's number)."""

    dataset: Dataset
    sop_instance_uid: str
    summation: str  # "PLAN" or "BEAM"
    beam_number: int | None


@dataclass(frozen=True)
class BuiltDoses:
    doses: tuple[BuiltDose, ...]
    problems: tuple[Problem, ...]


def build_rtdoses(export: Export, treatment: Treatment, plan: Plan, trial_index: int, rtplan: BuiltPlan) -> BuiltDoses:
    """The BEAM doses of the trial's beams that the RT Plan holds, and the PLAN sum when every beam has its dose."""
    trial = plan.trials[trial_index]
    where = f"{plan.directory}/plan.Trial"
    problems: list[Problem] = []
    grid = trial.dose_grid
    if grid is None or plan.frame is None:
        why = "no usable dose grid" if grid is None else "the patient position is unknown"
        problems.append(Problem(where, f"trial {trial.name!r}: {why}: no RT Dose written"))
        return BuiltDoses((), tuple(problems))
    doses: list[BuiltDose] = []
    total: np.ndarray | None = np.zeros(grid.dims[::-1], dtype=np.float64)
    for beam in trial.beams:
        gray = _beam_gray(treatment, trial, beam, where, problems)
        if gray is None:
            total = None
            continue
        if total is not None:
            total += gray
        if beam.number not in rtplan.beam_groups:
            problems.append(Problem(where, f"trial {trial.name!r} beam {beam.name!r}: not in the RT Plan: its dose "
                                    "is in the PLAN sum only"))
            continue
        uid = export.ids.of("rtdose", plan.directory, "trial", str(trial_index), "beam", str(beam.number))
        ds = _dataset(export, treatment, plan, trial_index, uid, "BEAM", gray, rtplan, problems)
        _reference_beam(ds, rtplan, beam.number)
        doses.append(BuiltDose(ds, uid, "BEAM", beam.number))
    if total is None or not trial.beams:
        problems.append(Problem(where, f"trial {trial.name!r}: the PLAN dose is not written: "
                                + ("the trial has no beam" if not trial.beams else "a beam's dose is missing")))
    else:
        uid = export.ids.of("rtdose", plan.directory, "trial", str(trial_index), "plan")
        doses.insert(0, BuiltDose(_dataset(export, treatment, plan, trial_index, uid, "PLAN", total, rtplan,
                                           problems), uid,
                                  "PLAN", None))
    return BuiltDoses(tuple(doses), tuple(problems))


def _beam_gray(treatment: Treatment, trial: Trial, beam: Beam, where: str,
               problems: list[Problem]) -> np.ndarray | None:
    """The beam's dose in Gy over all fractions, float64 (z, y, x); None, named, when it cannot be known."""
    fractions = fractions_of(trial, beam)
    about = f"trial {trial.name!r} beam {beam.name!r}"
    if beam.monitor_units is None or not fractions:
        problems.append(Problem(where, f"{about}: {'MU' if beam.monitor_units is None else 'number of fractions'} "
                                "unknown: no BEAM dose"))
        return None
    try:
        dose = treatment.beam_dose(trial, beam)
    except PartialResult as error:
        problems.append(Problem(beam.dose_file or where, f"{error}"))
        return None
    if dose is None:
        problems.append(Problem(where, f"{about}: its dose file is missing or unusable: no BEAM dose"))
        return None
    return dose.astype(np.float64) * (beam.monitor_units * fractions / 100.0)


def _reference_beam(ds: Dataset, rtplan: BuiltPlan, beam_number: int) -> None:
    beam = Dataset()
    beam.ReferencedBeamNumber = format_is(beam_number)
    group = Dataset()
    group.ReferencedFractionGroupNumber = format_is(rtplan.beam_groups[beam_number])
    group.ReferencedBeamSequence = Sequence([beam])
    ds.ReferencedRTPlanSequence[0].ReferencedFractionGroupSequence = Sequence([group])


def _dataset(export: Export, treatment: Treatment, plan: Plan, trial_index: int, uid: str, summation: str,
             gray: np.ndarray, rtplan: BuiltPlan, problems: list[Problem]) -> Dataset:
    trial = plan.trials[trial_index]
    assert trial.dose_grid is not None and plan.frame is not None
    ds = new_dataset(export, RT_DOSE, uid)
    content_date(ds, export, prefix="InstanceCreation")
    series(ds, "RTDOSE", export.ids.of("rtdose", plan.directory, "trial", str(trial_index), "series"),
           SERIES_NUMBER + plan.id, f"Pinnacle dose {plan.name or plan.directory} / {trial.name}", rt=True)
    frame_of_reference(ds, frame_uid(export, treatment, plan))
    equipment(ds, MANUFACTURER, MODEL, software(export, plan))
    ds.InstanceNumber = "1"
    content_date(ds, export)
    frames = _geometry(ds, trial.dose_grid, plan)
    _pixels(ds, gray[frames], plan, trial, problems)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_PLAN
    reference.ReferencedSOPInstanceUID = rtplan.sop_instance_uid
    ds.ReferencedRTPlanSequence = Sequence([reference])
    return ds


def frame_order(grid: DoseGrid, position: str) -> list[int]:
    """The grid's slices in the order written: GridFrameOffsetVector grows along the normal (row × column)."""
    sx, sy, sz = AXIS_SIGNS[position]
    normal_z = -sx * sy  # row direction (sx, 0, 0) × column direction (0, -sy, 0)
    ascending = sz * normal_z > 0
    return list(range(grid.dims[2])) if ascending else list(range(grid.dims[2] - 1, -1, -1))


def _geometry(ds: Dataset, grid: DoseGrid, plan: Plan) -> list[int]:
    assert plan.frame is not None
    sx, sy, _ = AXIS_SIGNS[plan.frame.position]
    order = frame_order(grid, plan.frame.position)
    (vx, vy, vz), (nx, ny, nz) = grid.voxel_size_cm, grid.dims
    ds.ImagePositionPatient = format_ds_list(to_dicom_mm(dose_voxel_cm(grid, 0, 0, order[0]), plan.frame))
    ds.ImageOrientationPatient = format_ds_list([sx, 0, 0, 0, -sy, 0])
    ds.PixelSpacing = format_ds_list([10.0 * vy, 10.0 * vx])  # row spacing, then column spacing
    ds.SliceThickness = format_ds(10.0 * vz)
    ds.GridFrameOffsetVector = format_ds_list([10.0 * vz * k for k in range(nz)])
    ds.NumberOfFrames = format_is(nz)
    ds.FrameIncrementPointer = (0x3004, 0x000C)
    ds.Rows, ds.Columns = ny, nx
    return order


def _pixels(ds: Dataset, gray: np.ndarray, plan: Plan, trial: Trial, problems: list[Problem]) -> None:
    negative = float(gray.min()) if gray.size else 0.0
    if negative < -1e-6:
        problems.append(Problem(f"{plan.directory}/plan.Trial", f"trial {trial.name!r}: negative doses (down to "
                                f"{negative:.3g} Gy) written as 0"))
    peak = float(gray.max()) if gray.size else 0.0
    scaling = float(format_ds(peak / LEVELS)) if peak > 0 else 1.0
    stored = np.rint(np.clip(gray, 0.0, None) / scaling).astype(f"<u{BITS // 8}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = BITS
    ds.HighBit = BITS - 1
    ds.PixelRepresentation = 0
    ds.DoseGridScaling = format_ds(scaling)
    ds.PixelData = stored.tobytes()
