"""The demo's synthetic RT Image and RT Beams Treatment Record of an RTPLAN (`rtvault demo dicom`): what a
treatment room sends back after the plan, so that a peer or rtvault's node can be tried with every RT storage
class, never with real patient data.

- `rt_images(plan)`: one DRR per beam (RT Image Storage, `DERIVED\\SECONDARY\\DRR`), in the plan's study, naming
  the plan and the beam (RTImageLabel `<beam name> DRR`, RTImagePlane NORMAL, the beam's gantry, collimator and
  couch angles, SAD and an SID of 1500 mm), its pixels a synthetic 128 x 128 picture (a field on a gradient).
- `treatment_record(plan)`: one treatment session delivering every beam of the plan's first fraction group
  (RT Beams Treatment Record Storage): the referenced plan, TreatmentDate/Time (the plan's date), per beam its
  specified and delivered meterset (the plan's), TreatmentTerminationStatus NORMAL.

Nothing reads the clock or a random source: the UIDs derive from the plan's SOP Instance UID, the dates are the
plan's, so the same plan gives the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from rtvault.dicom.common import IMPLEMENTATION_NAME, IMPLEMENTATION_UID, format_ds, format_is
from rtvault.dicom.uids import DEFAULT_ROOT, derive

RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
RT_BEAMS_TREATMENT_RECORD = "1.2.840.10008.5.1.4.1.1.481.4"
SIDE = 128  # pixels of a DRR's side
PIXEL_MM = 2.0  # at the receptor
SID_MM = 1500.0  # source to image receptor distance
_COPIED = ("SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
           "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def rt_images(plan: Dataset) -> list[Dataset]:
    """A DRR of each beam of the plan."""
    series = derive(DEFAULT_ROOT, str(plan.SOPInstanceUID), "rtimage", "series")
    return [_rt_image(plan, beam, series, number) for number, beam in enumerate(_beams(plan), start=1)]


def treatment_record(plan: Dataset) -> Dataset:
    """One session delivering the beams of the plan's first fraction group."""
    uid = derive(DEFAULT_ROOT, str(plan.SOPInstanceUID), "rtrecord")
    ds = _new(plan, RT_BEAMS_TREATMENT_RECORD, uid)
    _series(ds, plan, "RTRECORD", derive(DEFAULT_ROOT, str(plan.SOPInstanceUID), "rtrecord", "series"),
            f"Treatment record of {plan.get('RTPlanLabel', 'the plan')}")
    when_date, when_time = _plan_date(plan)
    ds.Manufacturer = "rtvault demo"
    ds.InstanceNumber = "1"
    ds.TreatmentDate, ds.TreatmentTime = when_date, when_time
    ds.ReferencedRTPlanSequence = Sequence([_reference(plan)])
    machine = Dataset()
    machine.TreatmentMachineName = _machine(plan)
    machine.Manufacturer = "rtvault demo"
    machine.InstitutionName = ""
    machine.ManufacturerModelName = ""
    machine.DeviceSerialNumber = ""
    ds.TreatmentMachineSequence = Sequence([machine])
    group = plan.FractionGroupSequence[0] if "FractionGroupSequence" in plan else Dataset()
    meterset = {int(r.ReferencedBeamNumber): float(r.get("BeamMeterset") or 0)
                for r in group.get("ReferencedBeamSequence", [])}
    ds.ReferencedFractionGroupNumber = group.get("FractionGroupNumber", 1)
    ds.NumberOfFractionsPlanned = group.get("NumberOfFractionsPlanned", 1)
    ds.PrimaryDosimeterUnit = "MU"
    ds.TreatmentSessionBeamSequence = Sequence(
        [_session_beam(beam, meterset.get(int(beam.BeamNumber), 0.0), when_date, when_time)
         for beam in _beams(plan) if int(beam.BeamNumber) in meterset or not meterset])
    return ds


def _beams(plan: Dataset) -> Iterator[Dataset]:
    yield from plan.get("BeamSequence", [])


def _new(plan: Dataset, sop_class: str, uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_NAME
    ds = Dataset()
    ds.file_meta = meta
    for keyword in _COPIED:
        if keyword in plan:
            setattr(ds, keyword, plan[keyword].value)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    return ds


def _series(ds: Dataset, plan: Dataset, modality: str, uid: str, description: str) -> None:
    ds.Modality = modality
    ds.SeriesInstanceUID = uid
    ds.SeriesNumber = str(int(plan.get("SeriesNumber") or 0) + 100)
    ds.SeriesDescription = description[:64]
    ds.OperatorsName = ""


def _plan_date(plan: Dataset) -> tuple[str, str]:
    date = str(plan.get("RTPlanDate") or plan.get("StudyDate") or "")
    time = str(plan.get("RTPlanTime") or plan.get("StudyTime") or "")
    return date, time


def _reference(plan: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = plan.SOPClassUID
    item.ReferencedSOPInstanceUID = plan.SOPInstanceUID
    return item


def _machine(plan: Dataset) -> str:
    return next((str(b.TreatmentMachineName) for b in _beams(plan) if b.get("TreatmentMachineName")), "")


def _first_point(beam: Dataset) -> Dataset:
    points = beam.get("ControlPointSequence") or []
    return points[0] if points else Dataset()


def _rt_image(plan: Dataset, beam: Dataset, series: str, number: int) -> Dataset:
    uid = derive(DEFAULT_ROOT, str(plan.SOPInstanceUID), "rtimage", str(beam.BeamNumber))
    ds = _new(plan, RT_IMAGE, uid)
    _series(ds, plan, "RTIMAGE", series, f"DRRs of {plan.get('RTPlanLabel', 'the plan')}")
    date, time = _plan_date(plan)
    point = _first_point(beam)
    gantry = float(point.get("GantryAngle") or 0)
    ds.Manufacturer = "rtvault demo"
    ds.InstanceNumber = format_is(number)
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = date, time
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImageType = ["DERIVED", "SECONDARY", "DRR"]
    ds.ConversionType = "WSD"
    name = str(beam.get("BeamName") or beam.BeamNumber)
    ds.RTImageLabel = f"{name} DRR"[:16]
    ds.RTImageName = f"DRR of beam {name}"[:64]
    ds.RTImagePlane = "NORMAL"
    ds.XRayImageReceptorAngle = "0"
    ds.ImagePlanePixelSpacing = [format_ds(PIXEL_MM), format_ds(PIXEL_MM)]
    ds.RTImagePosition = [format_ds(-PIXEL_MM * (SIDE - 1) / 2), format_ds(PIXEL_MM * (SIDE - 1) / 2)]
    ds.RadiationMachineName = str(beam.get("TreatmentMachineName") or "")
    ds.PrimaryDosimeterUnit = str(beam.get("PrimaryDosimeterUnit") or "MU")
    ds.RadiationMachineSAD = format_ds(float(beam.get("SourceAxisDistance") or 1000))
    ds.RTImageSID = format_ds(SID_MM)
    ds.ReferencedRTPlanSequence = Sequence([_reference(plan)])
    ds.ReferencedBeamNumber = beam.BeamNumber
    ds.GantryAngle = format_ds(gantry)
    ds.BeamLimitingDeviceAngle = format_ds(float(point.get("BeamLimitingDeviceAngle") or 0))
    ds.PatientSupportAngle = format_ds(float(point.get("PatientSupportAngle") or 0))
    ds.PixelData = _drr_pixels(gantry)
    return ds


def _drr_pixels(gantry: float) -> bytes:
    """A field (brighter square) on a gradient whose phase follows the gantry angle: 12 bits in 16, little endian."""
    low, high, shift = SIDE // 4, 3 * SIDE // 4, int(gantry) % SIDE
    values = [min(400 + 8 * ((row + column + shift) % SIDE) + (1800 if low <= row < high and low <= column < high
                                                                 else 0), 4095)
              for row in range(SIDE) for column in range(SIDE)]
    return struct.pack(f"<{len(values)}H", *values)


def _leaf_pairs(beam: Dataset) -> list[Dataset]:
    """The beam's jaws and leaves as the plan declares them (a pair of X and Y jaws when it declares none)."""
    declared = [(str(d.RTBeamLimitingDeviceType), int(d.NumberOfLeafJawPairs))
                for d in beam.get("BeamLimitingDeviceSequence", [])] or [("ASYMX", 1), ("ASYMY", 1)]
    items = []
    for kind, pairs in declared:
        item = Dataset()
        item.RTBeamLimitingDeviceType = kind
        item.NumberOfLeafJawPairs = pairs
        items.append(item)
    return items


def _session_beam(beam: Dataset, meterset: float, date: str, time: str) -> Dataset:
    item = Dataset()
    item.ReferencedBeamNumber = beam.BeamNumber
    item.BeamName = beam.get("BeamName", "")
    item.BeamType = beam.get("BeamType", "STATIC")
    item.RadiationType = beam.get("RadiationType", "PHOTON")
    item.TreatmentDeliveryType = "TREATMENT"
    item.NumberOfWedges = 0
    item.NumberOfCompensators = 0
    item.NumberOfBoli = 0
    item.NumberOfBlocks = 0
    item.CurrentFractionNumber = 1
    item.TreatmentTerminationStatus = "NORMAL"
    item.TreatmentVerificationStatus = ""  # Type 2: no record-and-verify system in the demo
    item.SpecifiedPrimaryMeterset = format_ds(meterset)
    item.DeliveredPrimaryMeterset = format_ds(meterset)
    item.BeamLimitingDeviceLeafPairsSequence = Sequence(_leaf_pairs(beam))
    item.NumberOfControlPoints = 2
    point = _first_point(beam)
    first, last = Dataset(), Dataset()
    for index, cp in enumerate((first, last)):
        cp.ReferencedControlPointIndex = index
        cp.TreatmentControlPointDate = date
        cp.TreatmentControlPointTime = time
        cp.SpecifiedMeterset = format_ds(meterset * index)
        cp.DeliveredMeterset = format_ds(meterset * index)
        cp.DoseRateSet = "600"
        cp.DoseRateDelivered = "600"
    first.NominalBeamEnergyUnit = "MV"
    first.NominalBeamEnergy = point.get("NominalBeamEnergy", 6)
    first.GantryAngle = point.get("GantryAngle", 0)
    first.GantryRotationDirection = "NONE"
    first.BeamLimitingDeviceAngle = point.get("BeamLimitingDeviceAngle", 0)
    first.BeamLimitingDeviceRotationDirection = "NONE"
    first.PatientSupportAngle = point.get("PatientSupportAngle", 0)
    first.PatientSupportRotationDirection = "NONE"
    item.ControlPointDeliverySequence = Sequence([first, last])
    return item
