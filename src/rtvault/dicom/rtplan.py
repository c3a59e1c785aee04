"""RT Plan (RT Beams) of one Pinnacle trial (docs/design.md, "DICOM export", RTPLAN).

`build_rtplan(export, treatment, plan, trial_index)` gives the dataset and each problem met: the RT General Plan,
RT Prescription (one dose reference per prescription, at its point), RT Patient Setup (the patient position),
RT Fraction Scheme (one fraction group per prescription: fractions and each beam's MU) and RT Beams modules.
Each beam keeps its own control points (`rtplan_beams.py`): a Pinnacle segment is two DICOM control points with
its own jaws, leaves and cumulative meterset weight, angles are IEC 61217 (the couch through `couch_iec`).
What cannot be written truthfully is left out and named: a beam whose MU is unknown (machine or energy not in
`plan.Pinnacle.Machines`) has no BeamMeterset, never a negative or guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtvault.dicom.common import (
    RT_PLAN,
    RT_STRUCTURE_SET,
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
from rtvault.dicom.rtplan_beams import BeamContext, beam_item
from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import to_dicom_mm
from rtvault.pinnacle.treatment_machines import machine_geometry
from rtvault.pinnacle.treatment_types import Beam, ImageSet, Plan, Prescription, Treatment, Trial

SERIES_NUMBER = 300  # RTPLAN series: 300 + the plan's id (CT and RTSTRUCT number theirs below)
MANUFACTURER = "Philips"
MODEL = "Pinnacle"


@dataclass(frozen=True)
class BuiltPlan:
    """An RT Plan built from one trial: the dataset, which beams it holds (beam number → fraction group number,
    for the RT Doses that reference them), and what could not be written."""

    dataset: Dataset
    sop_instance_uid: str
    beam_groups: dict[int, int]
    problems: tuple[Problem, ...]


def software(export: Export, plan: Plan) -> str:
    """SoftwareVersions as the RT Structure Set writes it: the Pinnacle version that wrote the plan, then rtvault."""
    return f"{plan.pinnacle_version}; {export.software}".strip("; ")


def rtplan_uid(export: Export, plan: Plan, trial_index: int) -> str:
    return export.ids.of("rtplan", plan.directory, "trial", str(trial_index))


def primary_image(treatment: Treatment, plan: Plan) -> ImageSet | None:
    """The plan's primary image set, else the patient's first (as the model decides the plan's frame)."""
    return treatment.image_set(plan.primary_image_set_id) or (treatment.image_sets[0] if treatment.image_sets
                                                                else None)


def frame_uid(export: Export, treatment: Treatment, plan: Plan) -> str:
    """The Frame of Reference the plan's objects share with its primary image set's CT."""
    image = primary_image(treatment, plan)
    return export.ids.frame_of_reference(image.name if image is not None else plan.directory)


def build_rtplan(export: Export, treatment: Treatment, plan: Plan, trial_index: int, *,
                 structure_set_uid: str | None = None) -> BuiltPlan:
    """The RT Plan of `plan.trials[trial_index]`; `structure_set_uid` is the plan's RTSTRUCT (RTPlanGeometry
    PATIENT when given, TREATMENT_DEVICE otherwise)."""
    trial = plan.trials[trial_index]
    where = f"{plan.directory}/plan.Trial"
    problems: list[Problem] = []
    uid = rtplan_uid(export, plan, trial_index)
    ds = new_dataset(export, RT_PLAN, uid)
    content_date(ds, export, prefix="InstanceCreation")
    series(ds, "RTPLAN", export.ids.of("rtplan", plan.directory, "series"), SERIES_NUMBER + plan.id,
           f"Pinnacle plan {plan.name or plan.directory}", rt=True)
    frame_of_reference(ds, frame_uid(export, treatment, plan))
    equipment(ds, MANUFACTURER, MODEL, software(export, plan))
    _general_plan(ds, export, plan, trial, structure_set_uid)
    if plan.frame is None:
        problems.append(Problem(plan.directory, "the patient position is unknown: the isocentres and the "
                                "prescription points are left out of the RT Plan"))
    ds.DoseReferenceSequence = Sequence(_dose_references(export, plan, trial_index, problems))
    if not ds.DoseReferenceSequence:
        del ds.DoseReferenceSequence
    ds.PatientSetupSequence = Sequence([_patient_setup(plan, problems)])
    groups = _group_numbers(trial)
    context = BeamContext(plan, trial, machine_geometry(treatment.source, plan.directory), where, problems)
    beams = [(beam, item) for beam in trial.beams if (item := beam_item(beam, context)) is not None]
    ds.BeamSequence = Sequence([item for _, item in beams])
    ds.FractionGroupSequence = Sequence(_fraction_groups(trial, [b for b, _ in beams], groups, where, problems))
    ds.ApprovalStatus = "UNAPPROVED"
    beam_groups = {beam.number: groups[beam.prescription_name] for beam, _ in beams}
    return BuiltPlan(ds, uid, beam_groups, tuple(problems))


def _general_plan(ds: Dataset, export: Export, plan: Plan, trial: Trial, structure_set_uid: str | None) -> None:
    ds.RTPlanLabel = (trial.name or plan.name or plan.directory)[:16]
    ds.RTPlanName = f"{plan.name or plan.directory} / {trial.name}"[:64]
    ds.RTPlanDescription = f"Pinnacle {plan.directory} ({plan.name}), trial {trial.name!r}"[:1024]
    content_date(ds, export, prefix="RTPlan")
    if structure_set_uid is None:
        ds.RTPlanGeometry = "TREATMENT_DEVICE"
        return
    ds.RTPlanGeometry = "PATIENT"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_STRUCTURE_SET
    reference.ReferencedSOPInstanceUID = structure_set_uid
    ds.ReferencedStructureSetSequence = Sequence([reference])


def total_dose_cgy(prescription: Prescription) -> float | None:
    """The prescribed dose over all fractions (cGy): PrescriptionDose × fractions when it is per fraction."""
    if prescription.dose_cgy is None:
        return None
    if prescription.period.lower().startswith("overall"):
        return prescription.dose_cgy
    return prescription.dose_cgy * prescription.fractions if prescription.fractions else None


def _dose_references(export: Export, plan: Plan, trial_index: int, problems: list[Problem]) -> list[Dataset]:
    """One TARGET dose reference per prescription: at its point (COORDINATES) when the point is known, else SITE;
    TargetPrescriptionDose is the prescribed dose (Gy, all fractions), the description says the isodose."""
    trial, items = plan.trials[trial_index], []
    points = {p.name: p.position_cm for p in plan.points}
    for number, prescription in enumerate(trial.prescriptions, 1):
        item = Dataset()
        item.DoseReferenceNumber = format_is(number)
        item.DoseReferenceUID = export.ids.of("rtplan", plan.directory, "trial", str(trial_index),
                                              "dose-reference", str(number))
        point = points.get(prescription.point_name)
        if point is not None and plan.frame is not None:
            item.DoseReferenceStructureType = "COORDINATES"
            item.DoseReferencePointCoordinates = format_ds_list(to_dicom_mm(point, plan.frame))
        else:
            item.DoseReferenceStructureType = "SITE"
            if prescription.point_name:
                problems.append(Problem(plan.directory, f"prescription {prescription.name!r}: its point "
                                        f"{prescription.point_name!r} is not placed: written as a site"))
        item.DoseReferenceDescription = _describe(prescription)[:64]
        item.DoseReferenceType = "TARGET"
        total = total_dose_cgy(prescription)
        if total is not None:
            item.TargetPrescriptionDose = format_ds(total / 100.0)
        items.append(item)
    return items


def _describe(prescription: Prescription) -> str:
    percent = prescription.percent or 100.0
    return f"{prescription.name} ({format_ds(percent)} % isodose)" if percent != 100.0 else prescription.name


def _patient_setup(plan: Plan, problems: list[Problem]) -> Dataset:
    setup = Dataset()
    setup.PatientSetupNumber = "1"
    if plan.patient_position is not None:
        setup.PatientPosition = plan.patient_position
    else:
        setup.PatientPosition = ""
        setup.PatientAdditionalPosition = "unknown"
        problems.append(Problem(plan.directory, "patient position unknown: PatientPosition left empty"))
    return setup


def _group_numbers(trial: Trial) -> dict[str, int]:
    """Fraction group k+1 is the trial's k-th prescription; a beam naming no known prescription gets its own."""
    numbers = {p.name: k for k, p in enumerate(trial.prescriptions, 1)}
    for beam in trial.beams:
        numbers.setdefault(beam.prescription_name, len(numbers) + 1)
    return numbers


def _fraction_groups(trial: Trial, beams: list[Beam], groups: dict[str, int], where: str,
                     problems: list[Problem]) -> list[Dataset]:
    by_name = {p.name: p for p in trial.prescriptions}
    items = []
    for name, number in groups.items():
        members = [b for b in beams if b.prescription_name == name]
        if not members and name not in by_name:
            continue
        group = Dataset()
        group.FractionGroupNumber = format_is(number)
        group.FractionGroupDescription = name[:64]
        prescription = by_name.get(name)
        fractions = prescription.fractions if prescription is not None else None
        group.NumberOfFractionsPlanned = format_is(fractions) if fractions else ""
        if not fractions:
            problems.append(Problem(where, f"trial {trial.name!r}: prescription {name!r} gives no number of "
                                    "fractions: NumberOfFractionsPlanned left empty"))
        group.NumberOfBeams = format_is(len(members))
        group.NumberOfBrachyApplicationSetups = "0"
        if members:
            group.ReferencedBeamSequence = Sequence([_referenced_beam(b) for b in members])
        items.append(group)
    return items


def _referenced_beam(beam: Beam) -> Dataset:
    item = Dataset()
    item.ReferencedBeamNumber = format_is(beam.number)
    if beam.monitor_units is not None and beam.monitor_units >= 0:
        item.BeamMeterset = format_ds(beam.monitor_units)
    return item
