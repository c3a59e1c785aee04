"""Writers of the small Pinnacle text files: Institution, Patient, image set headers, plan side files.

Each function returns the file's bytes (Latin-1, with the trailing stamp where real files have one);
plan.Trial and plan.roi live in `trial.py` and `roi.py`, the machine file in `machines.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rtvault.demo import clock, geometry, scanner
from rtvault.demo.names import Identity
from rtvault.demo.spec import INSTITUTION_DIR, MOUNT, ImageSetSpec, PatientSpec, PlanSpec
from rtvault.demo.syntax import Entries, document, encode, object_version

LAUNCHPAD = "Launch Pad: 16.2"
_SETUPS = {
    "HFS": ("On back (supine)", "Head First Into Scanner"), "HFP": ("On front (prone)", "Head First Into Scanner"),
    "FFS": ("On back (supine)", "Feet First Into Scanner"), "FFP": ("On front (prone)", "Feet First Into Scanner"),
}


def launchpad(spec: PatientSpec) -> str:
    """The Launch Pad version a patient's files were written with."""
    return f"Launch Pad: {spec.pinnacle_version}"


def pinnacle(spec: PatientSpec) -> str:
    """The planning version a patient's plan files were written with (`Pinnacle v16.2`, `Pinnacle v7.4f`)."""
    return f"Pinnacle v{spec.pinnacle_version}"
LOGIN = "p3rtp"
INSTITUTION_NAME = "Institut Synthétique de Radiothérapie"


@dataclass(frozen=True)
class LiteEntry:
    """One PatientLite of the Institution file."""

    patient_id: int
    path: str
    formatted: str  # LAST&&First&&Middle&&MRN&&RadOnc&&YYYY-MM-DD HH:MM:SS
    dir_size_mb: float


def lite_entry(spec: PatientSpec) -> LiteEntry:
    who = spec.identity
    fields = (who.last_name, who.first_name, who.middle_name, who.mrn, who.radiation_oncologist)
    return LiteEntry(spec.number, spec.path, "&&".join((*fields, clock.text(spec.modified))), spec.dir_size_mb)


def institution_bytes(entries: list[LiteEntry], written: datetime, stamp: bytes) -> bytes:
    lites: Entries = [
        (
            "PatientLite",
            [
                ("PatientID", e.patient_id),
                ("PatientPath", e.path),
                ("MountPoint", MOUNT),
                ("FormattedDescription", e.formatted),
                ("DirSize", round(e.dir_size_mb, 3)),
            ],
        )
        for e in entries
    ]
    now = clock.text(written)
    body: Entries = [
        ("InstitutionID", 1),
        ("InstitutionPath", INSTITUTION_DIR),
        ("PinnInstitutionPath", INSTITUTION_DIR),
        ("Name", INSTITUTION_NAME),
        ("StreetAddress", "12 rue des Accélérateurs"),
        ("StreetAddress2", ""),
        ("City", "Saint-Étienne"),
        ("State", ""),
        ("ZipCode", "42000"),
        ("Country", "France"),
        ("PatientLiteList", lites),
        ("MountPointList", [("SimpleString", [("String", MOUNT)])]),
        *[(key, []) for key in ("SelectedMachineDirList", "BackupMachineList", "BackupMachineListNonCommissioned")],
        *[(key, []) for key in ("BackupIsotopeList", "BackupIsotopeListNonCommissioned")],
        *[(f"DeviceSpaceRequired{k}", 0) for k in ("Patients", "Physics", "Scripts", "OrganModels", "Atlas")],
        ("DefaultMountPoint", MOUNT),
        *[(key, "") for key in ("BackupDescription", "BackupVolume", "BackupFileName")],
        ("Session", "1"),
        *[(key, "") for key in ("ScriptsDir", "OrganModelsDir", "AtlasFile", "BackupTimeStamp")],
        ("BackupDeviceType", "None"),
        *[(key, 0) for key in ("IsPatientBackup", "IsPhysicsMachinesBackup", "IncludePhysicsData")],
        ("MachinesInV7Format", 0),
        ("IsSolarisFormat", 0),
        *[(key, 0) for key in ("IncludeAllPatients", "FullFileNameIncluded", "BackupID")],
        ("ObjectVersion", object_version(LAUNCHPAD, LOGIN, "2014-09-01 09:00:00", now, now.replace(" ", "."))),
        ("DynamicRebuild", 0),
        ("ScorecardsBackupInfo", [("DeviceSpaceRequired", 0), ("Dir", "")]),
        ("TreatmentTechniquesBackupInfo", [("DeviceSpaceRequired", 0), ("TreatmentTechniquesDir", "")]),
    ]
    return document(body, stamp)


def _image_set_item(spec: PatientSpec, image: ImageSetSpec) -> Entries:
    return [
        ("ImageSetID", image.id),
        ("PatientID", spec.number),
        ("ImageName", image.name),
        ("NameFromScanner", ""),
        ("ExamID", image.exam_id),
        ("StudyID", str(spec.number)),
        ("Modality", image.modality),
        ("NumberOfImages", image.dims[2]),
        ("ScanTimeFromScanner", clock.text(image.scanned)),
        ("FileName", ""),
        ("SeriesDescription", image.series_description),
        ("MRN", spec.identity.mrn),
        ("DOB", spec.identity.birth_date_text),
        ("GatingUId", ""),
        ("SeriesUID", image.series_uid),
    ]


def _plan_item(spec: PatientSpec, plan: PlanSpec) -> Entries:
    return [
        ("PlanID", plan.id),
        ("ToolType", "Pinnacle^3"),
        ("PlanName", plan.name),
        ("Physicist", plan.physicist),
        ("Comment", plan.comment),
        ("Dosimetrist", plan.dosimetrist),
        ("PrimaryCTImageSetID", plan.image_set_id),
        ("FusionIDArray", []),
        ("PrimaryImageType", "Images"),
        ("PinnacleVersionDescription", f"Pinnacle {spec.pinnacle_version}"),
        ("IsNewPlanPrefix", 1),
        ("PlanIsLocked", int(plan.locked)),
        ("OKForSyntegraInLaunchpad", 0),
        (
            "ObjectVersion",
            object_version(
                launchpad(spec), LOGIN, clock.text(plan.created), clock.text(plan.modified), clock.text(plan.modified)
            ),
        ),
    ]


def _physicians(who: Identity) -> Entries:
    return [
        ("EncounterNumber", ""),
        ("PrimaryPhysician", who.primary_physician),
        ("AttendingPhysician", who.radiation_oncologist),
        ("ReferringPhysician", who.referring_physician),
        ("RadiationOncologist", who.radiation_oncologist),
        ("Oncologist", who.oncologist),
        ("Radiologist", who.radiologist),
    ]


def patient_bytes(spec: PatientSpec, written: datetime, stamp: bytes) -> bytes:
    who = spec.identity
    body: Entries = [
        ("PatientID", spec.number),
        ("PatientPath", spec.path),
        ("LastName", who.last_name),
        ("FirstName", who.first_name),
        ("MiddleName", who.middle_name),
        ("MedicalRecordNumber", who.mrn),
        *_physicians(who),
        ("Prescription", ""),
        ("Disease", ""),
        ("Diagnosis", spec.diagnosis),
        ("Comment", who.comment),
        ("NextUniquePlanID", max((p.id for p in spec.plans), default=-1) + 1),
        ("NextUniqueImageSetID", max((i.id for i in spec.image_sets), default=-1) + 1),
        ("Gender", who.gender),
        ("DateOfBirth", who.birth_date_text),
        ("ImageSetList", [("ImageSet", _image_set_item(spec, image)) for image in spec.image_sets]),
        ("PulmoWaveCaptureList", []),
        ("PlanList", [("Plan", _plan_item(spec, plan)) for plan in spec.plans]),
        ("ObjectVersion", object_version(launchpad(spec), LOGIN, clock.text(spec.created), clock.text(written))),
        ("DirSize", round(spec.dir_size_mb, 3)),
    ]
    return document(body, stamp)


def header_bytes(spec: PatientSpec, image: ImageSetSpec) -> bytes:
    """`ImageSet_N.header`: `key = value;` and `key : value` lines, tab-indented, no stamp. x_start and y_start are
    the centres of the first column and of the last (posterior) row, as in real headers and the treatment model,
    z_start the first slice's TablePosition. A recent version adds x_start_dicom and y_start_dicom (the frame of
    its ROIs, points and doses) and keeps in y_start a legacy value one image height lower, as real 16.x headers
    do; an old version has only y_start, in its legacy frame (demo/geometry.py)."""
    (nx, ny, nz), (px, py, pz) = image.dims, image.pixdim
    legacy = geometry.is_legacy(spec.pinnacle_version)
    x_start, y_start = geometry.first_centre(image)
    assign = {
        "t_dim": 0, "x_dim": nx, "y_dim": ny, "z_dim": nz, "datatype": 1,
        "bitpix": 16, "bytes_pix": 2, "vol_max": 4095.0, "vol_min": 0.0, "t_pixdim": 0.0, "x_pixdim": px,
        "y_pixdim": py, "z_pixdim": pz, "t_start": 0.0, "x_start": x_start,
        "y_start": y_start + geometry.y_shift(spec.pinnacle_version, image) if legacy else y_start - ny * py,
        "z_start": geometry.slice_z(image, 0), "z_time": 0.0,
    }  # fmt: skip
    lines = [f"\tbyte_order = {image.byte_order};", '\tread_conversion = "";', '\twrite_conversion = "";']
    lines += [f"\t{key} = {_header_number(value)};" for key, value in assign.items()]
    colon = {
        "dim_units": "", "voxel_type": "", "db_name": spec.identity.volume_name, "medical_record": spec.identity.mrn,
        "originator": "", "date": image.scanned.strftime("%Y%m%d"), "scanner_id": "CT_SIM",
        "patient_position": image.position, "manufacturer": "Philips", "model": "Brilliance Big Bore",
        "study_id": str(spec.number), "exam_id": image.exam_id, "patient_id": spec.identity.mrn,
        "modality": image.modality, "series_UID": image.series_uid,
        "Series_Description": image.series_description, "Scan_Options": "HELICAL MODE",
        "Station_Name": "ctrt", "KVP": "120", "SeriesDateTime": clock.text(image.scanned),
        "Version": spec.pinnacle_version,
    }  # fmt: skip
    lines += [f"\t{key} : {value}" for key, value in colon.items()]
    lines += [f"\tcouch_height = {image.couch_height:.6f};", f"\tSeriesNumber = {image.id + 2};", "\tis_OMAR = 0;"]
    if not legacy:
        lines += [f"\tx_start_dicom = {x_start:.6f};", f"\ty_start_dicom = {y_start:.6f};"]
    lines += [f"\thas_couchheight = {int(legacy)};"]
    return encode(lines, None)


def _header_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"


def image_info_bytes(image: ImageSetSpec, stamp: bytes) -> bytes:
    """`ImageSet_N.ImageInfo`: one `ImageInfo ={...};` per slice."""
    when = image.scanned.strftime("%H%M%S")
    entries: Entries = []
    for index in range(image.dims[2]):
        z = geometry.slice_z(image, index)
        entries.append(
            (
                "ImageInfo",
                [
                    ("TablePosition", round(z, 6)),
                    ("CouchPos", round(-z, 6)),
                    ("SliceNumber", index + 1),
                    ("SeriesUID", image.series_uid),
                    ("StudyInstanceUID", image.series_uid + scanner.STUDY_SUFFIX),
                    ("FrameUID", image.series_uid + scanner.FRAME_SUFFIX),
                    ("ClassUID", "1.2.840.10008.5.1.4.1.1.2"),
                    ("InstanceUID", scanner.instance_uid(image, index)),
                    ("SUVScale", 1),
                    ("ColorLUTScale", 1),
                    ("DICOMFileName", scanner.file_name(image, index)),
                    ("AcquisitionTime", when),
                    ("ImageTime", when),
                ],
            )
        )
    return document(entries, stamp)


def image_set_bytes(spec: PatientSpec, image: ImageSetSpec, stamp: bytes) -> bytes:
    """`ImageSet_N.ImageSet`: the image set's own description, echoed in the Patient file."""
    scanned = clock.text(image.scanned)
    body = [
        *_image_set_item(spec, image),
        ("VolumeName", spec.identity.volume_name),
        ("ObjectVersion", object_version(launchpad(spec), LOGIN, scanned, scanned)),
    ]
    return document(body, stamp)


def _poi(name: str, xyz: tuple[float, float, float], color: str, spec: PatientSpec, when: str) -> Entries:
    """A point of plan.Points, `xyz` already in the files' frame."""
    return [
        ("Name", name),
        ("XCoord", round(xyz[0], 5)),
        ("YCoord", round(xyz[1], 5)),
        ("ZCoord", round(xyz[2], 5)),
        *[(f"{axis}Rotation", 0) for axis in "XYZ"],
        ("Radius", 1),
        ("Color", color),
        ("CoordSys", "CT"),
        ("CoordinateFormat", "%6.2f"),
        ("Display2d", "Off"),
        ("Display3d", "Off"),
        ("ObjectVersion", object_version(pinnacle(spec), LOGIN, when, when)),
        ("VolumeName", spec.identity.volume_name),
        ("PoiInterpretedType", "MARKER"),
        ("PoiDisplayOnOtherVolumes", 1),
        ("IsLocked", int(name == "iso")),
    ]


def points_bytes(spec: PatientSpec, plan: PlanSpec, stamp: bytes) -> bytes:
    """plan.Points: the isocentre ("iso", every trial's prescription point) and two markers, y in the files'
    frame (an old version's legacy frame: demo/geometry.py)."""
    shift = geometry.y_shift(spec.pinnacle_version, spec.image_set(plan.image_set_id))
    x, y, z = plan.isocenter
    when = clock.text(plan.created)
    pois = [("iso", (x, y + shift, z), "red"), ("REF TATOUAGES", (0.0, y - 8.0 + shift, z), "yellow")]
    pois.append(("Ref DICOM", (round(x - 1.5, 2), shift, 0.0), "green"))
    return document([("Poi", _poi(name, xyz, color, spec, when)) for name, xyz, color in pois], stamp)


def plan_info_bytes(spec: PatientSpec, plan: PlanSpec, stamp: bytes) -> bytes:
    body = [
        ("PlanName", plan.name),
        ("PatientName", f"{spec.identity.last_name}, {spec.identity.first_name}"),
        ("MedicalRecordNumber", spec.identity.mrn),
        ("Physicist", plan.physicist),
        ("Dosimetrist", plan.dosimetrist),
        ("Comment", plan.comment),
        ("PrimaryCTImageSetID", plan.image_set_id),
        ("PlanIsLocked", int(plan.locked)),
        ("TrialNames", ", ".join(trial.name for trial in plan.trials)),
        ("ObjectVersion", object_version(pinnacle(spec), LOGIN, clock.text(plan.created), clock.text(plan.modified))),
    ]
    return document(body, stamp)


def patient_setup_bytes(spec: PatientSpec, plan: PlanSpec) -> bytes:
    """`plan.PatientSetup`: the position of the plan's image set, no stamp, like the real ones."""
    position, orientation = _SETUPS[spec.image_set(plan.image_set_id).position]
    created = clock.text(plan.created)
    body = [
        ("Position", position),
        ("Orientation", orientation),
        ("TableMotion", "Table Moves Into Scanner"),
        ("ProductionLevel", 1),
        ("ObjectVersion", object_version(pinnacle(spec), LOGIN, created, created)),
    ]
    return document(body, None) + b"\n"


def error_log_bytes(plan: PlanSpec) -> bytes:
    when = plan.modified.strftime("%a %b %d %H:%M:%S %Y")
    lines = [
        f"{when}: Warning: dose grid for {plan.trials[0].name} extends outside the CT volume",
        f"{when}: Warning: couch removal Y coordinate reset",
    ]
    return encode(lines, None)


def transcript_bytes(plan: PlanSpec, moment: datetime) -> bytes:
    lines = [f"// Pinnacle transcript {clock.text(moment)}", f'PlanName = "{plan.name}";']
    for trial in plan.trials:
        for index, beam in enumerate(trial.beams):
            lines.append(f"TrialList .{trial.name} .BeamList .#{index} .Weight = {beam.weight:g};")
    lines.append("ComputeAll = 1;")
    return encode(lines, None)


def later(moment: datetime, minutes: float) -> datetime:
    return moment + timedelta(minutes=minutes)
