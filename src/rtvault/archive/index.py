"""From the members of an archive to its index record: which patients it holds (from the Institution
header and from the Patient files themselves), who they are, what is damaged or hostile, and whether it is an
archive of Pinnacle physics data instead."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rtvault.pinnacle.discover import normalise_patient_path, parse_institution_entries
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.patient import iso_mtime, record_from_patient_file

PATIENT_IN_NAME = re.compile(r"(?:^|/)((?:Institution_\d+/Mount_\d+/)?Patient_\d+)(?:/|$)")
CAPTURED = ("Patient", "Institution")
IDENTITY_KEYS = ("patient_id", "last_name", "first_name", "middle_name", "mrn", "birth_date", "gender",
                 "radiation_oncologist", "diagnosis", "comment")


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


def _describe(group: dict, captured: dict[str, bytes], entries: dict[str, object]) -> dict:
    files = [m for m in group["members"] if m["kind"] == "file"]
    record = record_from_patient_file(captured.get(f"{group['prefix']}/Patient"), group["path"])
    identity = {k: getattr(record, k) for k in IDENTITY_KEYS}
    entry = entries.get(normalise_patient_path(group["path"]))
    if entry is not None:
        for key in ("last_name", "first_name", "middle_name", "mrn", "radiation_oncologist"):
            identity[key] = identity[key] or getattr(entry, key)
    lost = sorted(m["name"] for m in files if not m["complete"])
    return {
        "path": group["path"], "prefix": group["prefix"], **identity,
        "plans": [p.name for p in record.plans],
        "image_sets": [{"name": i.name, "modality": i.modality} for i in record.image_sets],
        "files": len(files), "bytes": sum(m["size"] for m in files),
        "last_modified": iso_mtime(max((m["mtime"] for m in files), default=0)) if files else None,
        "complete": not lost and f"{group['prefix']}/Patient" in captured, "lost": lost,
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


def _mark_damage(members: list[dict], patients: list[dict], damage_offsets: list[float],
                 checksum_failed: bool) -> None:
    """Patients next to a lost header or the cut of a truncated archive may miss files no index can name."""
    if checksum_failed:
        for member in members:
            member["complete"] = False
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
                 file: str, compression: str, origin: str, size: int, source: str = "",
                 damage_offsets: list[float] = (), checksum_failed: bool = False) -> dict:  # type: ignore[assignment]
    """The index of an archive, ready for `records.save`. `damage_offsets`: where headers were lost or the
    archive was cut (members around them are suspect); `checksum_failed`: no member can be trusted."""
    header_name, header = _header(members, captured)
    entries = {e.path: e for e in parse_institution_entries(header)} if header is not None else {}
    patients = [_describe(g, captured, entries) for g in _patients(members, captured).values()]
    _mark_damage(members, patients, list(damage_offsets), checksum_failed)
    present = {normalise_patient_path(p["path"]) for p in patients}
    problems = list(problems)
    for path in sorted(set(entries) - present):
        problems.append(f"{path} is listed in the Institution header but absent from the archive")
    for member in members:
        problems.extend(f"{member['name']}: {text}" for text in member.get("problems", []))
    machines = _physics(members, header)
    kind = "patients" if patients else "physics" if machines else "empty"
    return {
        "id": archive_id, "file": file, "compression": compression, "origin": origin, "source": source,
        "size": size, "created": datetime.now(UTC).isoformat(timespec="seconds"), "kind": kind,
        "header": header_name, "machines": machines, "patients": patients,
        "damaged": any(not m["complete"] for m in members) or bool(problems and _is_damage(problems)),
        "problems": problems, "members": members,
    }


def _is_damage(problems: list[str]) -> bool:
    return any(("unreadable" in p or "corrupt" in p or "cut short" in p or "ends without" in p) for p in problems)


def summary(record: dict) -> dict:
    """What `archive ingest/list --json` shows of an archive."""
    return {
        "id": record["id"], "file": record["file"], "kind": record["kind"], "origin": record["origin"],
        "created": record["created"], "size": record["size"], "compression": record["compression"],
        "patients": [{k: p[k] for k in ("path", "prefix", *IDENTITY_KEYS, "files", "bytes", "last_modified",
                                        "complete", "lost", "tree", "plans", "image_sets", "warnings") if k in p}
                     for p in record["patients"]],
        "machines": record["machines"], "damaged": record["damaged"], "problems": record["problems"],
    }
