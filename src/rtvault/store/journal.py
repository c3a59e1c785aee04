"""The run journal's files in a store (docs/design.md, "The run journal").

Store files are immutable, so the journal is a series of small segment files, one stream per writer process:
`journal/<writer>/<seq>.json`, where `writer` is `YYYYMMDDTHHMMSSZ-<8 hex>` (when the process started, and a
random tag) and `seq` counts from 1 in 8 digits. A segment holds one record (a run, an alert, or a batch of
actions), sealed with an integrity hash as manifests are (store/integrity.py). The same segment is written to
every store, byte for byte.

Version 2 segments are hash-chained: each names in `prev` the integrity hash of the segment before it in its
stream; the first segment of a stream names the store's newest segment when the stream began (`after`, its id,
and `prev`, its hash: the head, `heads/journal.json`, rewritten after each segment), or nothing in a new store.
So the streams hang together: a segment changed, removed or put in another's place breaks the chain, which
`rtvault journal verify` (jobs/journal_check.py) follows. Version 1 segments (before the chain) are read as
they are.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from datetime import datetime

from rtvault.errors import StoreError
from rtvault.store import integrity
from rtvault.store.backend import Backend
from rtvault.utc import parse

FOLDER = "journal/"
HEAD_KEY = "heads/journal.json"  # mutable: the newest segment written to this store (never verified, replicated)
FORMAT = "rtvault-journal"
VERSION = 2
CHAINED = 2  # the first version whose segments name the previous one (`prev`)
WRITER = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
KEY = re.compile(rf"journal/(?P<writer>{WRITER.pattern})/(?P<seq>\d{{8}})\.json")
RESULTS = ("ok", "partial", "failed", "unavailable")
STATUSES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")  # a health check's, in an alert record


def new_writer(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def segment_id(writer: str, seq: int) -> str:
    return f"{writer}/{seq:08d}"


def segment_key(record_id: str) -> str:
    return f"{FOLDER}{record_id}.json"


def id_of(key: str) -> str | None:
    """The record id a journal key holds (`writer/seq`), None for a key that is no segment's."""
    match = KEY.fullmatch(key)
    return None if match is None else f"{match['writer']}/{match['seq']}"


def encode(record_id: str, record: dict[str, object], prev: str | None = None, after: str | None = None) -> bytes:
    """A segment's bytes: the record with its format, id, the integrity hash of the segment before it (`prev`:
    the stream's previous one, or for a stream's first the head it began after, `after`; None for a store's very
    first) and its own integrity hash (ASCII JSON, keys sorted)."""
    fields = {"format": FORMAT, "version": VERSION, "id": record_id, "prev": prev,
              **({"after": after} if after else {})}
    document = integrity.seal({**record, **fields})
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=True).encode("ascii") + b"\n"


def read_head(backend: Backend) -> tuple[str, str] | None:
    """The newest segment written to a store, (id, integrity hash); None when there is none or it is unreadable."""
    try:
        document = json.loads(backend.get(HEAD_KEY))
        head = (str(document["id"]), str(document["integrity"]))
    except (StoreError, OSError, ValueError, KeyError, TypeError):
        return None
    return head if id_of(segment_key(head[0])) and head[1].startswith(integrity.ALGORITHM) else None


def write_head(backend: Backend, record_id: str, digest: str) -> None:
    data = json.dumps({"id": record_id, "integrity": digest}).encode() + b"\n"
    if not backend.create_exclusive(HEAD_KEY, data):
        backend.replace(HEAD_KEY, data)


def seq_of(record_id: str) -> int:
    return int(record_id.rsplit("/", 1)[1])


def decode(data: bytes, key: str) -> dict[str, object]:
    """A stored segment's record, checked: ValueError when it is not a journal segment of this name, or was
    changed after it was written."""
    document = integrity.parse(data)
    if document.get("format") != FORMAT or not integrity.sealed(document):
        raise ValueError("not a journal segment (no format or integrity hash)")
    if segment_key(str(document.get("id"))) != key:
        raise ValueError(f"not the journal segment of this name (it holds record {document.get('id')})")
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise ValueError(f"journal segment version {document.get('version')} is newer than this rtvault reads")
    if document["version"] >= CHAINED:
        prev = document.get("prev", "")
        if not (prev is None or (isinstance(prev, str) and prev.startswith(integrity.ALGORITHM))):
            raise ValueError(f"journal segment field 'prev' is not a segment's hash: {prev!r:.80}")
        first = seq_of(str(document["id"])) == 1
        after = document.get("after")
        if (prev is None and not first) or (after is not None and (not first or prev is None or not isinstance(
                after, str) or id_of(segment_key(after)) is None)):
            raise ValueError("journal segment fields 'prev' and 'after' do not chain it: only a stream's first "
                             "segment may name no segment before it, or one of another stream")
    kind = document.get("kind")
    if kind == "run":
        _check_run(document)
    elif kind == "alert":
        _check_alert(document)
    elif kind == "actions":
        _check_actions(document)
    elif kind == "destruction":
        _check_destruction(document)
    return document


def _check_run(record: dict[str, object]) -> None:
    """ValueError naming the first field of a run record that its readers (`rtvault runs`, the daemon's
    catch-up, health) could not use: a record sealed by hand or by a faulty writer is refused as damaged."""
    for name in ("job", "trigger", "error"):
        if not isinstance(record.get(name), str):
            raise ValueError(f"run record field {name!r} is not a text: {record.get(name)!r:.80}")
    for name in ("start", "end"):
        value = record.get(name)
        if not _utc(value):
            raise ValueError(f"run record field {name!r} is not a UTC time (YYYY-MM-DDTHH:MM:SSZ): {value!r:.80}")
    if record.get("result") not in RESULTS:
        raise ValueError(f"run record field 'result' is none of {', '.join(RESULTS)}: {record.get('result')!r:.80}")
    duration = record.get("duration_s")
    if not isinstance(duration, int | float) or isinstance(duration, bool) or not 0 <= duration < math.inf:
        raise ValueError(f"run record field 'duration_s' is not a number of seconds: {duration!r:.80}")


def _check_alert(record: dict[str, object]) -> None:
    """ValueError naming the first field of an alert record (health checks that changed status) that the monthly
    report could not use."""
    if not _utc(record.get("time")):
        raise ValueError(f"alert record field 'time' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ): "
                         f"{record.get('time')!r:.80}")
    changes = record.get("changes")
    if not isinstance(changes, list) or not changes:
        raise ValueError(f"alert record field 'changes' is not a list of changes: {changes!r:.80}")
    for change in changes:
        if not isinstance(change, dict) or not isinstance(change.get("check"), str) \
                or not isinstance(change.get("message"), str) or change.get("status") not in STATUSES \
                or change.get("previous") not in (*STATUSES, None):
            raise ValueError(f"alert record change is not a check, a status, a previous status and a message: "
                             f"{change!r:.80}")


ACTOR_KEYS = ("user", "host", "via")  # via: "cli", "web" or "daemon"


def _check_actions(record: dict[str, object]) -> None:
    """ValueError naming the first action entry the audit trail could not show."""
    entries = record.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"actions record field 'entries' is not a list of actions: {entries!r:.80}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not _utc(entry.get("time")) or not isinstance(entry.get("action"), str) \
                or not isinstance(entry.get("result"), str) or not isinstance(entry.get("target"), str) \
                or not isinstance(entry.get("actor"), dict) \
                or not all(isinstance(entry["actor"].get(key), str) for key in ACTOR_KEYS):
            raise ValueError(f"action entry {index} is not a time, an actor (user, host, via), an action, a target "
                             f"and a result: {entry!r:.120}")


STAGES = ("decided", "complete")  # a destruction's first record, and the one that completes its certificate
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECEIVED = re.compile(r"dicom-[0-9a-f]{24}")  # a destruction of received DICOM objects (jobs/dicom_destruction.py)


def _check_destruction(record: dict[str, object]) -> None:
    """ValueError naming the first field of a destruction record (its certificate) that could not prove what was
    destroyed, where, when, by whom and why."""
    if not _utc(record.get("time")):
        raise ValueError(f"destruction record field 'time' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ): "
                         f"{record.get('time')!r:.80}")
    if record.get("stage") not in STAGES:
        raise ValueError(f"destruction record field 'stage' is none of {', '.join(STAGES)}: "
                         f"{record.get('stage')!r:.80}")
    certificate = record.get("certificate")
    if not isinstance(certificate, dict):
        raise ValueError(f"destruction record field 'certificate' is not an object: {certificate!r:.80}")
    archive = certificate.get("archive")
    received = isinstance(archive, str) and _RECEIVED.fullmatch(archive) is not None
    if not received and (not isinstance(archive, str) or not _HEX64.fullmatch(archive)):
        raise ValueError(f"destruction certificate field 'archive' is not an archive id: "
                         f"{certificate.get('archive')!r:.80}")
    for name in ("reason", "rule"):
        if not isinstance(certificate.get(name), str) or not certificate[name].strip():
            raise ValueError(f"destruction certificate field {name!r} is not a text: {certificate.get(name)!r:.80}")
    by = certificate.get("by")
    if not isinstance(by, dict) or not all(isinstance(by.get(key), str) for key in ("user", "host")):
        raise ValueError(f"destruction certificate field 'by' is not a user and a host: {by!r:.80}")
    if not _utc(certificate.get("decided")) or not isinstance(certificate.get("complete"), bool):
        raise ValueError("destruction certificate fields 'decided' (a UTC time) and 'complete' (true or false) are "
                         "required")
    patients, copies = certificate.get("patients", [] if received else None), certificate.get("copies")
    if received and not isinstance(certificate.get("patient"), dict):
        raise ValueError(f"destruction certificate field 'patient' is not a patient: "
                         f"{certificate.get('patient')!r:.80}")
    if not isinstance(patients, list) or not all(isinstance(p, dict) and isinstance(p.get("path"), str)
                                                 for p in patients):
        raise ValueError(f"destruction certificate field 'patients' is not a list of patients: {patients!r:.80}")
    if not isinstance(copies, list) or not all(
            isinstance(c, dict) and c.get("kind") in ("store", "volume") and isinstance(c.get("place"), str)
            and (c.get("removed") is None or _utc(c.get("removed"))) for c in copies):
        raise ValueError(f"destruction certificate field 'copies' is not a list of copies (kind store or volume, "
                         f"place, removed: a UTC time or null): {copies!r:.120}")


def _utc(value: object) -> bool:
    """Whether `value` is a time as rtvault writes it: UTC, ending in `Z` (times are compared as text)."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    try:
        return parse(value).tzinfo is not None
    except ValueError:
        return False
