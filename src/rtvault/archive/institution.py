"""The filtered `Institution` file at the head of a Pinnacle archive: the institution's settings, with a
PatientLiteList holding just the archived patient, and the Backup* fields filled as Pinnacle does."""

from __future__ import annotations

import re
from datetime import datetime

from rtvault.pinnacle.discover import normalise_patient_path
from rtvault.pinnacle.grammar import UTF8_BOM, PObject, coerce_scalar, parse_bytes, parse_text, split_stamp, unquote
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


# The PatientLiteList as Pinnacle writes it, and nothing else: `PatientLite ={ Key = value; ... };` blocks of
# one-token values, no comment, no dotted key. Anything else is left to the parser (`_cut` returns None).
_SPACE = r"[ \t\r\n]*"
_VALUE = r'"(?:[^"\\]|\\.)*"|(?!//|/\*)[^ \t\r\n\f\v\x00={};,"]+'
_STATEMENT = re.compile(rf"{_SPACE}([A-Za-z_][A-Za-z0-9_]*){_SPACE}={_SPACE}({_VALUE}){_SPACE};", re.S)
_LITE_OPEN = re.compile(rf"{_SPACE}PatientLite{_SPACE}={_SPACE}\{{")
_CLOSE = re.compile(rf"{_SPACE}\}}{_SPACE};")
_LIST_OPEN = re.compile(rf"PatientLiteList{_SPACE}={_SPACE}\{{")
_LIST = "PatientLiteList"
_BOM = UTF8_BOM.decode("latin-1")  # a file read as UTF-8: left to the parser


def _lite_end(text: str, pos: int) -> tuple[int, str] | None:
    """Where the PatientLite block whose `{` ends at `pos` ends, and its PatientPath as the parser reads it."""
    found = None
    while (statement := _STATEMENT.match(text, pos)) is not None:
        key, value = statement.group(1), statement.group(2)
        if found is None and key == "PatientPath":
            found = str(unquote(value) if value.startswith('"') else coerce_scalar(value))
        pos = statement.end()
    close = _CLOSE.match(text, pos)
    return (close.end(), found if found is not None else "") if close else None


def _cut(text: str, path: str) -> str | None:
    """The Institution text with its PatientLiteList holding only the first block of `path` (or none): the
    parser then reads a few statements instead of thousands of patients (an archive of one patient needs
    one). None unless the cut text provably parses as the whole would: one PatientLiteList, after statements
    the parser reads without a problem (so at the top level, between two statements), of blocks as above."""
    start = text.find(_LIST)
    if text.startswith(_BOM) or start < 0 or text.find(_LIST, start + 1) >= 0:
        return None
    if start and (not text[:start].endswith("\n") or parse_text(text[:start], "Institution").problems):
        return None
    opened = _LIST_OPEN.match(text, start)
    if opened is None:
        return None
    pos, kept = opened.end(), ""
    while (lite := _LITE_OPEN.match(text, pos)) is not None:
        if (end := _lite_end(text, lite.end())) is None:
            return None
        if not kept and normalise_patient_path(end[1]) == path:
            kept = text[pos:end[0]]
        pos = end[0]
    close = _CLOSE.match(text, pos)
    if close is None:
        return None
    return text[:opened.end()] + kept + text[pos:]


def _parsed(source: bytes, path: str) -> PObject:
    """The Institution file's tree, its PatientLiteList reduced to `path` when the text allows a safe cut
    (the filtered file is the same: only that patient's block is kept)."""
    body, _ = split_stamp(source)
    if (cut := _cut(body.decode("latin-1"), path)) is not None:
        return parse_text(cut, "Institution").root
    return parse_bytes(source, "Institution").root


def _base(source: bytes | None, path: str) -> PObject:
    if source is not None:
        return _parsed(source, path)
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
