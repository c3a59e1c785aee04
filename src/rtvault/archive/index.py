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
        "files": len(files), "bytes": sum(m["size"] for m in files),
        "last_modified": iso_mtime(max((m["mtime"] for m in files), default=0)) if files else None,
        "complete": not lost and f"{group['prefix']}/Patient" in captured, "lost": lost,
        "listed_in_header": entry is not None,
        "warnings": [str(w) for w in record.warnings],
    }


def _physics(members: list[dict], header: PObject | None) -> list[str]:
    machines = header.child("BackupMachineList") if header is not None else None
    names = {str(m.get("Name")) for m in (machines.items_list() if machines else []) if isinstance(m, PObject)}
    for member in members:
        parts = (member.get("safe_name") or "").split("/")
        if "Physics" in parts:
            names.update(p for p in parts if p.startswith("Machine."))
    return sorted(n for n in names if n and n != "None")


def build_record(archive_id: str, members: list[dict], problems: list[str], captured: dict[str, bytes], *,
                 file: str, compression: str, origin: str, size: int, source: str = "") -> dict:
    """The index of an archive, ready for `records.save`."""
    header_name, header = _header(members, captured)
    entries = {e.path: e for e in parse_institution_entries(header)} if header is not None else {}
    patients = [_describe(g, captured, entries) for g in _patients(members, captured).values()]
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
        "patients": [{k: p[k] for k in ("path", *IDENTITY_KEYS, "files", "bytes", "complete", "lost")}
                     for p in record["patients"]],
        "machines": record["machines"], "damaged": record["damaged"], "problems": record["problems"],
    }
