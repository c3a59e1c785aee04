"""The RT Structure Set of one plan (docs/design.md, "DICOM export"): every ROI of `plan.roi` once, with its
colour and interpreted type, each curve a CLOSED_PLANAR contour that references the CT instance of its slice, and
each point of `plan.Points` a POINT contour; the CT series each ROI was drawn on is referenced.

Coordinates go through the plan's frame (`points_to_dicom_mm`), the same rule as the CT's, so the contours lie
on the exported slices. A curve of fewer than three distinct points cannot close a polygon: it is left out and
named in the writer's notes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtvault.dicom.common import (
    CT_IMAGE,
    RT_STRUCTURE_SET,
    Export,
    content_date,
    equipment,
    format_ds_list,
    format_is,
    frame_of_reference,
    new_dataset,
    series,
)
from rtvault.dicom.ct import CtSeries
from rtvault.pinnacle import colours
from rtvault.pinnacle.coordinates import points_to_dicom_mm
from rtvault.pinnacle.treatment_types import Curve, Plan, Poi, Roi

STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # the SOP class an RTReferencedStudySequence names (PS3.3 C.8.8.5)
INTERPRETED_TYPES = frozenset({
    "EXTERNAL", "PTV", "CTV", "GTV", "TREATED_VOLUME", "IRRAD_VOLUME", "BOLUS", "AVOIDANCE", "ORGAN", "MARKER",
    "REGISTRATION", "ISOCENTER", "CONTRAST_AGENT", "CAVITY", "BRACHY_CHANNEL", "BRACHY_ACCESSORY",
    "BRACHY_SRC_APP", "BRACHY_CHNL_SHLD", "SUPPORT", "FIXATION", "DOSE_REGION", "CONTROL", "DOSE_MEASUREMENT",
})


@dataclass
class StructureSet:
    """The written dataset and what could not be put in it (one sentence each)."""

    dataset: Dataset
    notes: list[str] = field(default_factory=list)


def rtstruct_dataset(export: Export, plan: Plan, ct: Mapping[int, CtSeries]) -> StructureSet:
    """The RT Structure Set of `plan`; `ct` maps an image set id to its exported (or planned) CT series."""
    assert plan.frame is not None  # the caller names a plan without a frame as missing
    result = StructureSet(new_dataset(export, RT_STRUCTURE_SET, export.ids.of("rtstruct", plan.directory)))
    ds = result.dataset
    series(ds, "RTSTRUCT", export.ids.of("rtstruct", plan.directory, "series"), 100 + plan.id,
           f"{plan.name or plan.directory} structures", rt=True)
    frame_of_reference(ds, _frame_uid(export, ct, plan.primary_image_set_id))
    equipment(ds, "Philips", "Pinnacle", f"{plan.pinnacle_version}; {export.software}".strip("; "))
    ds.InstanceNumber = format_is(1)
    ds.StructureSetLabel = (plan.name or plan.directory)[:16]
    ds.StructureSetName = (plan.name or plan.directory)[:64]
    content_date(ds, export, prefix="StructureSet")
    entries = [(roi.image_set_id, roi) for roi in plan.rois]
    entries += [(plan.primary_image_set_id, poi) for poi in plan.points]
    frames = [_referenced_frame(export, series_) for i, series_ in sorted(ct.items())
              if any(image_set == i for image_set, _ in entries)]
    if frames:  # Type 3, but never empty when present: none when no CT was written
        ds.ReferencedFrameOfReferenceSequence = Sequence(frames)
    structures, contours, observations = Sequence(), Sequence(), Sequence()
    for number, (image_set, thing) in enumerate(entries, start=1):
        frame_uid = _frame_uid(export, ct, image_set)
        structures.append(_structure(number, thing.name, frame_uid))
        contours.append(_roi_contour(number, thing, ct.get(image_set), plan, result.notes))
        observations.append(_observation(number, thing))
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = (
        structures, contours, observations)
    return result


def _frame_uid(export: Export, ct: Mapping[int, CtSeries], image_set: int | None) -> str:
    return ct[image_set].frame_uid if image_set in ct else export.ids.frame_of_reference(f"ImageSet_{image_set}")


def _referenced_frame(export: Export, ct: CtSeries) -> Dataset:
    images = Sequence(_image_reference(s.sop_instance_uid) for s in ct.slices)
    series_item = Dataset()
    series_item.SeriesInstanceUID = ct.series_uid
    series_item.ContourImageSequence = images
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_COMPONENT
    study.ReferencedSOPInstanceUID = export.ids.study
    study.RTReferencedSeriesSequence = Sequence([series_item])
    item = Dataset()
    item.FrameOfReferenceUID = ct.frame_uid
    item.RTReferencedStudySequence = Sequence([study])
    return item


def _image_reference(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CT_IMAGE
    item.ReferencedSOPInstanceUID = uid
    return item


def _structure(number: int, name: str, frame_uid: str) -> Dataset:
    item = Dataset()
    item.ROINumber = format_is(number)
    item.ReferencedFrameOfReferenceUID = frame_uid
    item.ROIName = name[:64]
    item.ROIGenerationAlgorithm = ""
    return item


def _roi_contour(number: int, thing: Roi | Poi, ct: CtSeries | None, plan: Plan, notes: list[str]) -> Dataset:
    item = Dataset()
    item.ReferencedROINumber = format_is(number)
    colour = colours.known(thing.color)
    if colour is None:
        notes.append(f"{plan.directory}: {thing.name!r} has colour {thing.color!r}, not one rtvault knows: shown "
                     "magenta")
    item.ROIDisplayColor = [str(c) for c in colour or colours.UNKNOWN]
    if isinstance(thing, Poi):
        item.ContourSequence = Sequence([_contour(1, "POINT", np.asarray([thing.position_cm]), plan, ct)])
        return item
    contours = Sequence()
    for k, curve in enumerate(thing.curves):
        points = _polygon(curve)
        if points is None:
            notes.append(f"{plan.directory}: ROI {thing.name!r} curve {k + 1} has fewer than three distinct "
                         "points: left out")
            continue
        contours.append(_contour(len(contours) + 1, "CLOSED_PLANAR", points, plan, ct))
    if contours:
        item.ContourSequence = contours
    return item


def _polygon(curve: Curve) -> np.ndarray | None:
    """The curve's points without the closing repeat of the first; None when under three distinct points."""
    points = np.asarray(curve.points_cm, dtype=np.float64).reshape(-1, 3)
    if len(points) > 1 and np.allclose(points[0], points[-1]):
        points = points[:-1]
    return points if len(np.unique(points, axis=0)) >= 3 else None


def _contour(number: int, kind: str, points_cm: np.ndarray, plan: Plan, ct: CtSeries | None) -> Dataset:
    assert plan.frame is not None
    mm = points_to_dicom_mm(points_cm, plan.frame)
    item = Dataset()
    item.ContourNumber = format_is(number)
    if ct is not None and (cut := ct.slice_at(float(mm[0, 2]), _half_gap(ct))) is not None:
        item.ContourImageSequence = Sequence([_image_reference(cut.sop_instance_uid)])
    item.ContourGeometricType = kind
    item.NumberOfContourPoints = format_is(len(mm))
    item.ContourData = format_ds_list(mm.ravel())
    return item


def _half_gap(ct: CtSeries) -> float:
    """Half the smallest distance between neighbouring slices (mm): a contour farther than that from every slice
    references none."""
    z = sorted(s.z_mm for s in ct.slices)
    gaps = [b - a for a, b in itertools.pairwise(z) if b - a > 1e-6]
    return min(gaps) / 2 if gaps else 0.5


def _observation(number: int, thing: Roi | Poi) -> Dataset:
    item = Dataset()
    item.ObservationNumber = format_is(number)
    item.ReferencedROINumber = format_is(number)
    item.ROIObservationLabel = thing.name[:64]
    kind = thing.interpreted_type.strip().upper()
    item.RTROIInterpretedType = kind if kind in INTERPRETED_TYPES else ""
    item.ROIInterpreter = ""
    return item
