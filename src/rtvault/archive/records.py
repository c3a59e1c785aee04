"""Archives in a store: the archive file kept byte for byte, its index, its checksum manifest and the
retention overrides an administrator recorded (docs/design.md, "Archives").

    archives/tars/<id[0:2]>/<id>        the archive file as it was given or written (tar or tar.gz)
    archives/<id>.sha256                `sha256sum -c` manifest of its regular members
    archives/<id>.json                  the index: members, patients, damage; written last
    archives/overrides/<id>/<t>.json    retention overrides, one immutable file each
    archives/destroyed/<id>.json        what a destroyed archive held: (path, tree) of each patient version

The id is the SHA-256 of the archive file: ingesting the same file twice adds nothing.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime

from rtvault.archive.formats import ArchivedPatient, ArchiveRecord
from rtvault.archive.keep import KeepUntil, Override, keep_until
from rtvault.errors import StoreError
from rtvault.store import Store, integrity
from rtvault.utc import iso, parse

RECORD_VERSION = 1


def tar_key(archive_id: str) -> str:
    return f"archives/tars/{archive_id[:2]}/{archive_id}"


def record_key(archive_id: str) -> str:
    return f"archives/{archive_id}.json"


def checksum_key(archive_id: str) -> str:
    return f"archives/{archive_id}.sha256"


def summary_key(archive_id: str) -> str:
    return f"archives/summaries/{archive_id}.json"


def destroyed_key(archive_id: str) -> str:
    return f"archives/destroyed/{archive_id}.json"


def remember_destroyed(store: Store, record: ArchiveRecord, when: datetime, decision: dict | None = None) -> None:
    """Before an archive is destroyed: the patient versions it held, so that they are neither archived again
    nor kept in a snapshot as awaiting their archive (their destruction was decided), and the decision (`archive
    delete`: who, why, which copies; docs/design.md, "Legal destruction"), so that a store, a replication or a
    later run that finds the archive still on a store knows it must go. Written once, never rewritten."""
    key = destroyed_key(record.id)
    if not store.backend.exists(key):
        versions = [{"path": p.path, "tree": p.tree} for p in record.patients if p.tree]
        store.backend.put(key, json.dumps({"id": record.id, "file": record.file, "destroyed": iso(when),
                                           "patients": versions, **(decision or {})}).encode(), durable=True)


def write_destroyed(store: Store, document: dict) -> None:
    """The record of a destroyed archive (`id`, `file`, `destroyed`, `patients` and the decision), written once."""
    key = destroyed_key(document["id"])
    if not store.backend.exists(key):
        store.backend.put(key, json.dumps(document, indent=1, ensure_ascii=True).encode() + b"\n", durable=True)


def destruction(store: Store, archive_id: str) -> dict | None:
    """The record of a destroyed archive in this store (None when there is none)."""
    key = destroyed_key(archive_id)
    if not store.backend.exists(key):
        return None
    return document(store, key)


def destroyed_ids(store: Store) -> list[str]:
    """Every archive this store records as destroyed."""
    return sorted(key.removeprefix("archives/destroyed/").removesuffix(".json")
                  for key in store.backend.list("archives/destroyed/") if key.endswith(".json"))


def archive_keys(archive_id: str) -> list[str]:
    """The files of one archive, in the order a destruction removes them: the index first (the archive is no
    longer listed), the archive file last."""
    return [record_key(archive_id), summary_key(archive_id), checksum_key(archive_id), tar_key(archive_id)]


def holds(store: Store, archive_id: str) -> bool:
    """Whether any file of the archive is still in the store (an index or an archive file left by a crash)."""
    return any(store.backend.exists(key) for key in archive_keys(archive_id))


def remove(store: Store, archive_id: str) -> bool:
    """Delete the archive's files from the store, then check that none is left (StoreError when one is); whether
    the store held any of them."""
    held = holds(store, archive_id)
    for key in archive_keys(archive_id):
        store.backend.delete(key)
    store.backend.barrier()  # a packed index or summary is gone from the pack index too
    left = [key for key in archive_keys(archive_id) if store.backend.exists(key)]
    if left:
        raise StoreError(f"{left[0]} is still in {store.location} after it was deleted: check the store's "
                         "permissions and run `rtvault archive delete --pending` again")
    return held


def destroyed_versions(store: Store) -> set[tuple[str, str]]:
    """(path, tree) of every patient version whose archive was destroyed."""
    return {(p["path"], p["tree"]) for key in store.backend.list("archives/destroyed/")
            for p in json.loads(store.backend.get(key))["patients"]}


def verify_tar(store: Store, archive_id: str) -> bool:
    """Re-read the stored archive file and check it still hashes to its id."""
    with store.backend.open(tar_key(archive_id)) as stored:
        return integrity.sha256_copy(stored)[0] == archive_id


def exists(store: Store, archive_id: str) -> bool:
    return store.backend.exists(record_key(archive_id))


def save(store: Store, record: ArchiveRecord) -> None:
    """Write the checksum manifest, then the index (the archive file itself is already in place)."""
    lines = [f"{m.hash}  {m.name}\n" for m in record.members if m.hash and m.complete]
    store.backend.put(checksum_key(record.id), "".join(lines).encode("utf-8", "surrogateescape"))
    store.backend.put(summary_key(record.id), json.dumps(integrity.seal(record.summary_json()),
                                                          ensure_ascii=True).encode())
    store.backend.barrier()  # the archive file and its objects are durable before the index names them
    store.backend.put(record_key(record.id), json.dumps(integrity.seal({**record.to_json(), "format": RECORD_VERSION}),
                                                        indent=1, ensure_ascii=True).encode("ascii") + b"\n",
                      durable=True)


def document(store: Store, key: str) -> dict:
    """One JSON file of the archive folder (index, summary, override): StoreError when it is not JSON."""
    try:
        return json.loads(store.backend.get(key))
    except ValueError as error:  # not JSON, or not UTF-8: the store's damage, not a bug
        raise StoreError(f"{key} in {store.location} is damaged: {error}") from None


def _record(store: Store, key: str) -> ArchiveRecord:
    """An archive index or summary: StoreError when it is not one."""
    try:
        return ArchiveRecord.from_json(document(store, key))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StoreError(f"{key} in {store.location} is damaged: not an archive index ({error!r})") from None


def load(store: Store, wanted: str) -> ArchiveRecord:
    """An archive's full index, by id or unique id prefix."""
    keys = [k for k in all_ids(store) if k.startswith(wanted)]
    if len(keys) != 1:
        what = "no archive" if not keys else f"{len(keys)} archives"
        raise StoreError(f"{what} in {store.location} match {wanted!r} (see `rtvault archive list`)")
    return _record(store, record_key(keys[0]))


def all_ids(store: Store) -> list[str]:
    return sorted(key.removeprefix("archives/").removesuffix(".json") for key in store.backend.list("archives/")
                  if key.endswith(".json") and key.count("/") == 1)


def all_records(store: Store) -> list[ArchiveRecord]:
    """Every archive index, oldest first."""
    records = [_record(store, record_key(i)) for i in all_ids(store)]
    return sorted(records, key=lambda r: (r.created, r.id))


def summaries(store: Store) -> list[ArchiveRecord]:
    """What lists and lookups need of every archive (identity, patients), without the member lists: a
    lookup costs little however many archives the store holds. Oldest first."""
    return sorted((load_summary(store, i) for i in all_ids(store)), key=lambda r: (r.created, r.id))


def load_summary(store: Store, archive_id: str) -> ArchiveRecord:
    try:
        return _record(store, summary_key(archive_id))
    except StoreError:  # written before summaries existed (or damaged): derive it from the full index
        return _record(store, record_key(archive_id)).without_members()


def overrides(store: Store, archive_id: str) -> list[tuple[str | None, Override]]:
    """(patient path or None for the whole archive, override), oldest first."""
    found = []
    for key in sorted(store.backend.list(f"archives/overrides/{archive_id}/")):
        data = document(store, key)
        found.append((data.get("patient"), Override(
            kind=data["kind"], date=date.fromisoformat(data["date"]) if data["date"] else None,
            reason=data["reason"], by=data["by"], at=parse(data["at"]))))
    return found


def add_override(store: Store, archive_id: str, patient: str | None, override: Override) -> None:
    stamp = override.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = {"kind": override.kind, "date": override.date.isoformat() if override.date else None,
            "reason": override.reason, "by": override.by, "at": iso(override.at, "microseconds"),
            "patient": patient}  # microseconds: a hold and its release in the same second stay ordered
    store.backend.put(f"archives/overrides/{archive_id}/{stamp}-{secrets.token_hex(3)}.json",
                      json.dumps(data, indent=1).encode(), durable=True)


def patient_keep(store: Store, record: ArchiveRecord, patient: ArchivedPatient) -> KeepUntil:
    """The keep-until date of one archived patient, from its data and the overrides recorded for it."""
    mine = [o for who, o in overrides(store, record.id) if who in (None, patient.path)]
    last, birth = patient.last_modified, patient.birth_date
    return keep_until(date.fromisoformat(last[:10]) if last else None,
                      date.fromisoformat(birth) if birth else None, mine)


def archive_keep(store: Store, record: ArchiveRecord) -> date | str | None:
    """The latest keep-until date of an archive's patients: None = kept indefinitely, "" = no patient."""
    dates = [patient_keep(store, record, p).date for p in record.patients]
    if not dates:
        return ""
    return None if any(d is None for d in dates) else max(d for d in dates if d is not None)
