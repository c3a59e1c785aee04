"""Where the scanner put an image set, from its own slices kept in `ImageSet_N.DICOM/` (docs/design.md, "Pinnacle
treatment model and coordinates"): the first kept slice's ImagePositionPatient, as the image's start (x, y) in the
scanner's frame, in Pinnacle cm. One file is read, its pixels never. A header before Pinnacle 9 lacks that frame
(it has no `x_start_dicom`), so the kept slice gives it; a later header has it, and a slice that disagrees is a
warning. A slice that cannot be read, is another image's or is not axial is named and not used."""

from __future__ import annotations

import math
import warnings
from io import BytesIO
from typing import TYPE_CHECKING

import pydicom

from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import AXIS_SIGNS

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_source import PatientFiles
    from rtvault.pinnacle.treatment_types import Dims3, ImageSlice, PatientPosition, Point3

AGREE_MM = 0.01  # the scanner's slice and the model agree when within this (DICOM writes positions to 0.001 mm)
_TAGS = ("SOPInstanceUID", "ImagePositionPatient", "ImageOrientationPatient")


def scanner_start(
    source: PatientFiles, names: set[str], name: str, slices: tuple[ImageSlice, ...],
    geometry: tuple[Dims3, Point3, PatientPosition] | None, problems: list[Problem],
) -> tuple[float, float] | None:
    """The image's first voxel (x, y) in the scanner's frame (cm), from the first slice whose file ImageInfo names
    and Pinnacle kept; None when none is kept, or the one kept cannot be used (a problem names it)."""
    kept = next(((k, s) for k, s in enumerate(slices) if s.dicom_file and f"{name}.DICOM/{s.dicom_file}" in names),
                None)
    if kept is None or geometry is None:
        if kept is None and any(n.startswith(f"{name}.DICOM/") for n in names):
            problems.append(Problem(f"{name}.DICOM", "none of the scanner's files kept here is one that ImageInfo "
                                    "names (DICOMFileName): the scanner's positions are not used"))
        return None
    k, entry = kept
    file = f"{name}.DICOM/{entry.dicom_file}"
    found = _read(source, file, problems)
    if found is None:
        return None
    uid, position, orientation = found
    dims, voxel, patient_position = geometry
    sx, sy, sz = AXIS_SIGNS[patient_position]
    if entry.instance_uid and uid != entry.instance_uid:
        problems.append(Problem(file, f"its SOPInstanceUID {uid[:64]} is not the one ImageInfo lists for slice "
                                f"{k + 1}: another image's slice, not used"))
        return None
    if any(abs(a - b) > 1e-3 for a, b in zip(orientation, (sx, 0, 0, 0, -sy, 0), strict=True)):
        problems.append(Problem(file, f"its ImageOrientationPatient is not the axial one of {patient_position}: "
                                "the scanner's positions are not used"))
        return None
    table = entry.table_position_cm
    if table is not None and abs(position[2] - sz * 10.0 * table) > AGREE_MM:
        problems.append(Problem(file, f"the scanner put this slice at z = {position[2]:.3f} mm where its "
                                f"TablePosition says {sz * 10.0 * table:.3f} mm: the TablePosition is used"))
    top = position[1] / (10.0 * sy)
    return position[0] / (10.0 * sx), top - (dims[1] - 1) * voxel[1]


def _read(source: PatientFiles, file: str, problems: list[Problem]
          ) -> tuple[str, tuple[float, float, float], tuple[float, ...]] | None:
    """The slice's SOPInstanceUID, ImagePositionPatient and ImageOrientationPatient; None when unreadable."""
    try:
        with warnings.catch_warnings():  # pydicom warns of damage it reads past: the problem below says it once
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(BytesIO(source.read(file)), stop_before_pixels=True, specific_tags=list(_TAGS))
        uid = str(ds.SOPInstanceUID)
        position = tuple(float(v) for v in ds.ImagePositionPatient)
        orientation = tuple(float(v) for v in ds.ImageOrientationPatient)
    except OSError as error:
        problems.append(Problem(file, f"cannot be read ({error.strerror or error}): the scanner's positions are "
                                "not read"))
        return None
    except Exception as error:  # pydicom raises many kinds on damaged bytes: none may escape
        problems.append(Problem(file, f"not a DICOM slice with a position ({type(error).__name__}): the "
                                "scanner's positions are not read"))
        return None
    if len(position) != 3 or len(orientation) != 6 or not all(map(math.isfinite, (*position, *orientation))):
        problems.append(Problem(file, "its ImagePositionPatient or ImageOrientationPatient is not 3 and 6 "
                                "numbers: the scanner's positions are not read"))
        return None
    return uid, position, orientation  # type: ignore[return-value]


def check_header(name: str, slices: tuple[ImageSlice, ...], start_dicom: tuple[float, float] | None,
                 scanner: tuple[float, float] | None, position: PatientPosition | None,
                 problems: list[Problem]) -> None:
    """A header's x_start_dicom/y_start_dicom against the scanner's kept slice: a warning when they differ by
    more than AGREE_MM (the header is kept: the plan's objects are drawn against it)."""
    if start_dicom is None or scanner is None or position is None:
        return
    sx, sy, _ = AXIS_SIGNS[position]
    dx, dy = 10.0 * sx * (scanner[0] - start_dicom[0]), 10.0 * sy * (scanner[1] - start_dicom[1])
    if max(abs(dx), abs(dy)) > AGREE_MM:
        file = next(f"{name}.DICOM/{s.dicom_file}" for s in slices if s.dicom_file)
        problems.append(Problem(file, f"the scanner put its slices {dx:+.2f} mm in x and {dy:+.2f} mm in y (DICOM) "
                                f"from where {name}.header's x_start_dicom/y_start_dicom put them: the header is "
                                "used, as the plan's contours, points and dose are drawn against it; check the CT "
                                "against the scanner's"))
