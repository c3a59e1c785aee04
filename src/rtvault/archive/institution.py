"""The filtered `Institution` file at the head of a Pinnacle archive: the institution's settings, with a
PatientLiteList holding just the archived patient, and the Backup* fields filled as Pinnacle does."""

from __future__ import annotations

from datetime import datetime

from rtvault.pinnacle.discover import normalise_patient_path
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.serialise import dump


def _patient_lite(path: str, identity: dict) -> PObject:
    lite = PObject()
    lite.add("PatientID", identity.get("patient_id") or int(path.rsplit("_", 1)[-1]))
    lite.add("PatientPath", path)
    lite.add("MountPoint", path.split("/")[1] if path.count("/") == 2 else "Mount_0")
    description = "&&".join(str(identity.get(k) or "") for k in (
        "last_name", "first_name", "middle_name", "mrn", "radiation_oncologist"))
    modified = (identity.get("last_modified") or "").replace("T", " ").replace("Z", "")
    lite.add("FormattedDescription", f"{description}&&{modified}")
    return lite


def _base(source: bytes | None, path: str) -> PObject:
    if source is not None:
        return parse_bytes(source, "Institution").root
    root = PObject()
    institution = path.split("/")[0] if path.startswith("Institution_") else "Institution_1"
    root.add("InstitutionID", int(institution.rsplit("_", 1)[-1]))
    root.add("InstitutionPath", institution)
    root.add("PinnInstitutionPath", institution)
    root.add("Name", "")
    return root


def filtered_institution(source: bytes | None, path: str, identity: dict, archive_name: str,
                         when: datetime) -> bytes:
    """The Institution file of an archive of the patient at `path` (built from `source` when known)."""
    root = _base(source, path)
    lites = root.child("PatientLiteList")
    keep = [lite for lite in (lites.items_list() if lites else [])
            if isinstance(lite, PObject) and normalise_patient_path(str(lite.get("PatientPath", ""))) == path]
    patient_list = PObject()
    patient_list.add("PatientLite", keep[0] if keep else _patient_lite(path, identity))
    root.set("PatientLiteList", patient_list)
    for key, value in (("BackupDescription", f"rtvault archive of {path}"), ("BackupVolume", "rtvault"),
                       ("BackupFileName", archive_name), ("BackupTimeStamp", when.strftime("%Y-%m-%d %H:%M:%S")),
                       ("BackupDeviceType", "File"), ("IsPatientBackup", 1), ("IsPhysicsMachinesBackup", 0),
                       ("IncludePhysicsData", 0), ("IncludeAllPatients", 0)):
        root.set(key, value)
    return dump(root)
