"""A plan directory of a treatment: `plan.roi`, `plan.Points`, `plan.PatientSetup`, `plan.Trial`,
`plan.Pinnacle.Machines`, and the coordinate frame its objects are drawn in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import (
    FIRST_DICOM_VERSION,
    image_extent,
    inside_fraction,
    major_version,
    offset_for,
    position_from_setup,
)
from rtvault.pinnacle.dialects import parse_roi
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.physics import ENERGY_LISTS, PLAN_MACHINES, Machine, machine_of
from rtvault.pinnacle.treatment_fields import child, number, objects, read_parsed, text
from rtvault.pinnacle.treatment_source import PatientFiles
from rtvault.pinnacle.treatment_trial import Calibrations, TrialContext, read_trials
from rtvault.pinnacle.treatment_types import CoordinateFrame, Curve, ImageSet, PatientPosition, Plan, Poi, Roi

_MACHINES_CACHE: dict[str, tuple[tuple[Machine, ...], dict[tuple[str, str], float], tuple[Problem, ...]]] = {}
_MACHINES_CACHE_SIZE = 16


@dataclass(frozen=True)
class PlanEntry:
    """A plan as the Patient file lists it (or only its directory on disk)."""

    id: int
    name: str
    primary_image_set_id: int | None
    version: str  # PinnacleVersionDescription


def read_plan(source: PatientFiles, names: set[str], entry: PlanEntry, image_sets: tuple[ImageSet, ...],
              problems: list[Problem]) -> Plan:
    directory = f"Plan_{entry.id}"
    primary = _primary(entry, image_sets, problems)
    setup = read_parsed(source, names, f"{directory}/plan.PatientSetup", problems, parse_bytes, required=False)
    points = _points(read_parsed(source, names, f"{directory}/plan.Points", problems, parse_bytes))
    rois = _rois(read_parsed(source, names, f"{directory}/plan.roi", problems, parse_roi), directory, image_sets,
                 primary, problems)
    machines, calibrations = _machines(source, names, f"{directory}/{PLAN_MACHINES}", problems)
    trial_root = read_parsed(source, names, f"{directory}/plan.Trial", problems, parse_bytes)
    context = TrialContext(source, names, directory, {p.name: p.position_cm for p in points}, calibrations, problems)
    trials = read_trials(trial_root, context) if trial_root is not None else ()
    version = _version(trial_root, setup, entry)
    position = _position(setup, primary, directory, problems)
    frame = decide_frame(primary, position, version, rois, points, directory, problems)
    return Plan(entry.id, entry.name, directory, entry.primary_image_set_id, position, version, frame, rois,
                points, trials, machines)


def _primary(entry: PlanEntry, image_sets: tuple[ImageSet, ...], problems: list[Problem]) -> ImageSet | None:
    found = next((i for i in image_sets if i.id == entry.primary_image_set_id), None)
    if found is None and image_sets:
        found = image_sets[0]
        problems.append(Problem("Patient", f"plan {entry.id}: primary image set {entry.primary_image_set_id} not "
                                f"found: {found.name} used"))
    return found


def _points(root: PObject | None) -> tuple[Poi, ...]:
    found = []
    for poi in (p for p in (root.get_all("Poi") if root is not None else []) if isinstance(p, PObject)):
        xyz = tuple(number(poi, f"{axis}Coord") for axis in "XYZ")
        if None in xyz:
            continue
        found.append(Poi(text(poi, "Name"), xyz, text(poi, "Color"),  # type: ignore[arg-type]
                         text(poi, "PoiInterpretedType"), text(poi, "CoordSys"), text(poi, "VolumeName")))
    return tuple(found)


def _rois(root: PObject | None, directory: str, image_sets: tuple[ImageSet, ...], primary: ImageSet | None,
          problems: list[Problem]) -> tuple[Roi, ...]:
    found = []
    for number_, roi in enumerate((r for r in (root.get_all("roi") if root else []) if isinstance(r, PObject)), 1):
        name = text(roi, "name") or f"ROI #{number_}"
        curves = tuple(c for c in (_curve(c, name, directory, problems) for c in roi.get_all("curve")) if c)
        volume = text(roi, "volume_name")
        found.append(Roi(number_, name, text(roi, "color"), text(roi, "roiinterpretedtype"), volume,
                         _image_set_of(volume, image_sets, primary), text(roi, "UID"), number(roi, "volume"),
                         curves))
    return tuple(found)


def _curve(obj: object, roi: str, directory: str, problems: list[Problem]) -> Curve | None:
    rows = obj.get("points") if isinstance(obj, PObject) else None
    if not isinstance(rows, list):
        return None
    points = tuple(tuple(row) for row in rows if len(row) == 3)
    if len(points) != len(rows):
        problems.append(Problem(f"{directory}/plan.roi", f"ROI {roi!r}: {len(rows) - len(points)} points without "
                                "three coordinates left out"))
    return Curve(points) if points else None  # type: ignore[arg-type]


def _image_set_of(volume: str, image_sets: tuple[ImageSet, ...], primary: ImageSet | None) -> int | None:
    """The image set an ROI was drawn on: the only one of that volume name, else the plan's primary."""
    named = [i for i in image_sets if volume and i.volume_name == volume]
    if len(named) == 1:
        return named[0].id
    return primary.id if primary is not None else None


def _machines(source: PatientFiles, names: set[str], name: str,
              problems: list[Problem]) -> tuple[tuple[Machine, ...], Calibrations]:
    """The machines of plan.Pinnacle.Machines and each energy's DosePerMuAtCalibration; the file is large and the
    same in every plan of a department: parsed once per distinct content."""
    if name not in names:
        problems.append(Problem(name, "missing: machines unknown, MU cannot be computed"))
        return (), {}
    try:
        data = source.read(name)
    except OSError as error:
        problems.append(Problem(name, f"cannot be read ({error.strerror or error}): MU cannot be computed"))
        return (), {}
    digest = hashlib.sha256(data).hexdigest()
    if (known := _MACHINES_CACHE.get(digest)) is None:
        known = _read_machines(data)
        if len(_MACHINES_CACHE) >= _MACHINES_CACHE_SIZE:
            _MACHINES_CACHE.pop(next(iter(_MACHINES_CACHE)))
        _MACHINES_CACHE[digest] = known
    machines, calibrations, found = known
    problems.extend(Problem(name, p.message, p.line) for p in found)
    return machines, calibrations


def _read_machines(data: bytes) -> tuple[tuple[Machine, ...], dict[tuple[str, str], float], tuple[Problem, ...]]:
    parsed = parse_bytes(data, "")
    warnings = list(parsed.problems)
    machines, calibrations = [], {}
    for item in (v for k, v in parsed.root.entries if k.startswith("#") and isinstance(v, PObject)):
        machine = machine_of(item, "", warnings)
        if machine is None:
            continue
        machines.append(machine)
        for _, key in ENERGY_LISTS:
            for energy in objects(item.child(key)):
                dpmu = number(child(energy, "PhysicsData", "OutputFactor"), "DosePerMuAtCalibration")
                if dpmu is not None:
                    calibrations.setdefault((machine.name, text(energy, "Name")), dpmu)
    return tuple(machines), calibrations, tuple(warnings)


def _version(trial: PObject | None, setup: PObject | None, entry: PlanEntry) -> str:
    """The Pinnacle version that wrote the plan: plan.Trial's, else plan.PatientSetup's, else the Patient file's."""
    for obj in (child(trial, "Trial", "ObjectVersion"), child(setup, "ObjectVersion")):
        if (written := text(obj, "WriteVersion")) and major_version(written) is not None:
            return written
    return entry.version


def _position(setup: PObject | None, primary: ImageSet | None, directory: str,
              problems: list[Problem]) -> PatientPosition | None:
    if setup is not None:
        position = position_from_setup(text(setup, "Position"), text(setup, "Orientation"))
        if position is not None:
            if primary is not None and primary.patient_position not in (None, position):
                problems.append(Problem(f"{directory}/plan.PatientSetup", f"patient position {position} differs from "
                                        f"{primary.name}'s {primary.patient_position}: the plan's is used"))
            return position
    if primary is not None and primary.patient_position is not None:
        return primary.patient_position
    problems.append(Problem(f"{directory}/plan.PatientSetup", "patient position unknown (neither plan.PatientSetup "
                            "nor the image header says HFS, HFP, FFS or FFP): no DICOM coordinates"))
    return None


def decide_frame(image: ImageSet | None, position: PatientPosition | None, version: str, rois: tuple[Roi, ...],
                 points: tuple[Poi, ...], directory: str, problems: list[Problem]) -> CoordinateFrame | None:
    """Which image start the plan's objects are drawn against, from the Pinnacle version that wrote the plan and
    from where its contours and points lie; a warning when the files cannot decide it."""
    if image is None or position is None:
        return None
    if image.start_cm is None and image.start_dicom_cm is None:
        problems.append(Problem(f"{image.name}.header", "no x_start/y_start: the image's place is unknown, Pinnacle "
                                "coordinates are used unshifted"))
        return CoordinateFrame(position, (0.0, 0.0, 0.0), "pinnacle", False, "the header gives no image start")
    if image.start_dicom_cm is None:
        return _old_header_frame(image, position, version, problems)
    if image.start_cm is None or _same_start(image):
        return CoordinateFrame(position, (0.0, 0.0, 0.0), "dicom", True, "the header's start is the scanner's")
    by_version = _by_version(version)
    by_geometry = _by_geometry(image, rois, points)
    which = by_geometry or by_version or "dicom"
    reason = (f"the version ({version or 'unknown'}) says {by_version or 'nothing'}; the contours and points lie in "
              f"the {by_geometry or 'neither (or both)'} image frame")
    decided = (by_geometry or by_version) is not None and not (by_version and by_geometry and by_version != by_geometry)
    if not decided:
        problems.append(Problem(directory, f"the Y offset between Pinnacle and DICOM coordinates cannot be decided "
                                f"({reason}): the {which} start is used; check the contours against the CT"))
    return CoordinateFrame(position, offset_for(image, which), which, decided, reason)  # type: ignore[arg-type]


def _old_header_frame(image: ImageSet, position: PatientPosition, version: str,
                      problems: list[Problem]) -> CoordinateFrame:
    """A header without x_start_dicom (Pinnacle before 9): objects are drawn against x_start/y_start, which hold
    the couch height and the image centre; the scanner's frame is that of its slices when Pinnacle kept them, else
    taken as centred on the image."""
    major = major_version(version)
    decided = major is not None and major < FIRST_DICOM_VERSION
    kept = image.scanner_start_cm is not None
    scanner = (f"the scanner's frame is that of its slices kept in {image.name}.DICOM" if kept else
               "the image is taken as centred on the scanner's axis")
    if decided:
        reason = f"written by {version}, before Pinnacle 9: drawn against x_start/y_start; {scanner}"
        if not kept:
            problems.append(Problem(f"{image.name}.header", "no x_start_dicom/y_start_dicom (Pinnacle before 9) nor "
                                    "the scanner's slices: the scanner's frame is taken as centred on the image; CT "
                                    "positions may differ from the scanner's original slices"))
    else:
        reason = f"the header has no x_start_dicom although the plan's version is {version or 'unknown'}"
        problems.append(Problem(f"{image.name}.header", f"the Y offset between Pinnacle and DICOM coordinates cannot "
                                f"be decided ({reason}): {scanner}; check the contours against the CT"))
    return CoordinateFrame(position, offset_for(image, "pinnacle"), "pinnacle", decided, reason)


def _same_start(image: ImageSet) -> bool:
    assert image.start_cm is not None and image.start_dicom_cm is not None
    return abs(image.start_cm[0] - image.start_dicom_cm[0]) < 1e-4 and abs(image.start_cm[1] -
                                                                            image.start_dicom_cm[1]) < 1e-4


def _single_reason(image: ImageSet) -> str:
    if image.start_dicom_cm is None:
        return "the header has only x_start/y_start (Pinnacle before 9)"
    if image.start_cm is None:
        return "the header has only x_start_dicom/y_start_dicom"
    return "the header's Pinnacle and DICOM starts are the same"


def _by_version(version: str) -> str | None:
    major = major_version(version)
    if major is None:
        return None
    return "dicom" if major >= FIRST_DICOM_VERSION else "pinnacle"


def _by_geometry(image: ImageSet, rois: tuple[Roi, ...], points: tuple[Poi, ...]) -> str | None:
    """"dicom" or "pinnacle" when nearly all contour points and POIs lie inside the image in one frame only."""
    coords = [p for roi in rois for curve in roi.curves for p in curve.points_cm] + [p.position_cm for p in points]
    if not coords:
        return None
    array = np.asarray(coords, dtype=np.float64)
    scores = {}
    for which in ("dicom", "pinnacle"):
        extent = image_extent(image, which)
        scores[which] = inside_fraction(array, extent) if extent is not None else 0.0
    inside = [w for w, score in scores.items() if score >= 0.9]
    return inside[0] if len(inside) == 1 and min(scores.values()) < 0.5 else None
