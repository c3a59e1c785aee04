"""From the members of an archive to its index record: which patients it holds (from the Institution
header and from the Patient files themselves), who they are, what is damaged or hostile, and whether it is an
archive of Pinnacle physics data instead."""

from __future__ import annotations

import re

from rtvault.archive.formats import IDENTITY_KEYS, LOST, READ, UNVERIFIED, VERIFIED, ArchiveRecord
from rtvault.pinnacle.discover import normalise_patient_path, parse_institution_entries
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.patient import iso_mtime, record_from_patient_file
from rtvault.utc import now_iso

PATIENT_IN_NAME = re.compile(r"(?:^|/)((?:Institution_\d+/Mount_\d+/)?Patient_\d+)(?:/|$)")
CAPTURED = ("Patient", "Institution")


def wants_capture(name: str) -> bool:
    """Small files the index needs to read: the Institution header and each patient's Patient file."""
    return name.rsplit("/", 1)[-1] in CAPTURED


def _patient_of(member: dict) -> tuple[str, str] | None:
    name = member.get("safe_name")
    match = PATIENT_IN_NAME.search(name) if name else None
    if match is None:
        return None
    return match.group(1), name[: match.end(1)]


def _header(members: list[dict], captured: dict[str, bytes]) -> tuple[str | None, PObject | None]:
    for member in members:
        name = member.get("safe_name") or ""
        if name.rsplit("/", 1)[-1] == "Institution" and _patient_of(member) is None and name in captured:
            return name, parse_bytes(captured[name], name).root
    return None, None


def _patients(members: list[dict], captured: dict[str, bytes]) -> dict[str, dict]:
    groups: dict[str, dict] = {}
    for member in members:
        found = _patient_of(member)
        if found is None:
            continue
        path, prefix = found
        group = groups.setdefault(prefix, {"path": path, "prefix": prefix, "members": []})
        group["members"].append(member)
    return groups


def member_status(member: dict) -> str:
    """A member's status (as it is being indexed; `ArchiveMember.state` once indexed)."""
    return member.get("status") or (READ if member.get("complete", True) else LOST)


def _missing(group: dict, record: object) -> list[str]:
    """What the patient's own index announces and the archive lacks: its Patient file, and the image sets
    (`ImageSetList`) and plans (`PlanList`) its Patient file names, with no member at all."""
    prefix = group["prefix"]
    names = [m.get("safe_name") or "" for m in group["members"]]
    missing = [] if f"{prefix}/Patient" in names else [f"{prefix}/Patient"]
    for image in getattr(record, "image_sets", []):
        if not image.name.startswith("(") and not any(n.startswith(f"{prefix}/{image.name}.") for n in names):
            missing.append(f"{prefix}/{image.name}.* (image set listed in the Patient file)")
    for plan in getattr(record, "plans", []):
        folder = f"{prefix}/Plan_{plan.id}"
        if plan.id is not None and not any(n == folder or n.startswith(folder + "/") for n in names):
            missing.append(f"{folder}/ (plan listed in the Patient file)")
    return missing


def _describe(group: dict, captured: dict[str, bytes], entries: dict[str, object]) -> dict:
    files = [m for m in group["members"] if m["kind"] == "file"]
    record = record_from_patient_file(captured.get(f"{group['prefix']}/Patient"), group["path"])
    identity = {k: getattr(record, k) for k in IDENTITY_KEYS}
    entry = entries.get(normalise_patient_path(group["path"]))
    if entry is not None:
        for key in ("last_name", "first_name", "middle_name", "mrn", "radiation_oncologist"):
            identity[key] = identity[key] or getattr(entry, key)
    lost = sorted(m["name"] for m in files if member_status(m) == LOST)
    unverified = sorted(m["name"] for m in files if member_status(m) == UNVERIFIED)
    missing = _missing(group, record)
    return {
        "path": group["path"], "prefix": group["prefix"], **identity,
        "plans": [p.name for p in record.plans],
        "image_sets": [{"name": i.name, "modality": i.modality} for i in record.image_sets],
        "files": len(files), "bytes": sum(m["size"] for m in files),
        "last_modified": iso_mtime(max((m["mtime"] for m in files), default=0)) if files else None,
        "complete": not lost and not unverified and not missing and f"{group['prefix']}/Patient" in captured,
        "lost": lost, "unverified": unverified, "missing": missing,
        "listed_in_header": entry is not None,
        "warnings": [str(w) for w in record.warnings],
    }


def _physics(members: list[dict], header: PObject | None) -> list[str]:
    """Machine names from the header's BackupMachineList, else the `Machine.N` folders under Physics/."""
    machines = header.child("BackupMachineList") if header is not None else None
    named = {str(m.get("Name")).strip().rstrip(",").strip() for m in (machines.items_list() if machines else [])
             if isinstance(m, PObject) and m.get("Name")}
    if named - {""}:
        return sorted(named - {""})
    folders = {part for member in members if "Physics" in (member.get("safe_name") or "").split("/")
               for part in (member.get("safe_name") or "").split("/") if part.startswith("Machine.")}
    return sorted(folders)


def _mark_damage(members: list[dict], patients: list[dict], damage_offsets: list[float]) -> None:
    """Patients next to a lost header or the cut of a truncated archive may miss files no index can name."""
    by_prefix = {p["prefix"]: p for p in patients}
    located = sorted((m["header_offset"], m) for m in members if m.get("header_offset") is not None)
    for offset in damage_offsets:
        before = [m for at, m in located if at < offset][-1:]
        after = [m for at, m in located if at > offset][:1]
        for member in before + after:
            found = _patient_of(member)
            if found and found[1] in by_prefix:
                patient = by_prefix[found[1]]
                patient["complete"] = False
                patient["warnings"].append("files may be missing: the archive is damaged next to its members")
    for patient in patients:
        prefix = patient["prefix"] + "/"
        lost = sorted(m["name"] for m in members if m["kind"] == "file" and not m["complete"]
                      and (m.get("safe_name") or "").startswith(prefix))
        if lost:
            patient["complete"], patient["lost"] = False, lost


def build_record(archive_id: str, members: list[dict], problems: list[str], captured: dict[str, bytes], *,
                 file: str, compression: str, origin: str, size: int, source: str = "", tree: str | None = None,
                 damage_offsets: list[float] = ()) -> ArchiveRecord:  # type: ignore[assignment]
    """The index of an archive, ready for `records.save`. Each member has its `status` (VERIFIED, READ,
    UNVERIFIED or LOST); `damage_offsets`: where headers were lost or the archive was cut (members around them
    are suspect); `tree`: the snapshot tree of the patient version an automatic archive holds."""
    header_name, header = _header(members, captured)
    entries = {e.path: e for e in parse_institution_entries(header)} if header is not None else {}
    patients = [_describe(g, captured, entries) for g in _patients(members, captured).values()]
    _mark_damage(members, patients, list(damage_offsets))
    for patient in patients if tree else ():  # an automatic archive of one snapshot version names its tree
        patient["tree"] = tree
    present = {normalise_patient_path(p["path"]) for p in patients}
    problems = list(problems)
    missing = sorted(set(entries) - present)
    for path in missing:
        problems.append(f"{path} is listed in the Institution header but absent from the archive")
    for patient in patients:
        problems.extend(f"{name}: announced but absent from the archive" for name in patient["missing"])
    for member in members:
        problems.extend(f"{member['name']}: {text}" for text in member.get("problems", []))
    machines = _physics(members, header)
    kind = "patients" if patients else "physics" if machines else "empty"
    files = [m for m in members if m["kind"] == "file"]
    damaged = any(member_status(m) in (LOST, UNVERIFIED) for m in members) or _is_damage(problems)
    proven = bool(files) and all(member_status(m) == VERIFIED for m in files)
    return ArchiveRecord.from_json({
        "id": archive_id, "file": file, "compression": compression, "origin": origin, "source": source,
        "size": size, "created": now_iso(), "kind": kind,
        "header": header_name, "machines": machines, "patients": patients, "missing": missing,
        "damaged": damaged, "status": "damaged" if damaged else VERIFIED if proven else READ,
        "problems": problems, "members": members,
    })


_DAMAGE_WORDS = ("unreadable", "corrupt", "cut short", "truncated", "checksum mismatch", "read error")


def _is_damage(problems: list[str]) -> bool:
    return any(word in problem for problem in problems for word in _DAMAGE_WORDS)
