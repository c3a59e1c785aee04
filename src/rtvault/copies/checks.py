"""The checks of verification, per kind of store key: what rtvault wrote there must read back as written.

A `Checker` checks keys of one store and collects findings (`VerifyProblem`), which may concern other keys: a
manifest finds the objects it needs missing. It is safe to call from several threads at once.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import BinaryIO

from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord
from rtvault.errors import StoreError
from rtvault.store import Store, catalog_backups, integrity, journal, receipts
from rtvault.store.backend import Backend
from rtvault.store.objects import data_key, verify_object
from rtvault.store.repository import parse_manifest

_H = "[0-9a-f]{64}"
_KINDS = (
    ("object", re.compile(rf"data/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("tree", re.compile(rf"trees/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("manifest", re.compile(r"snapshots/(?P<id>[^/]+)\.json")),
    ("tar", re.compile(rf"archives/tars/(?P<p>[0-9a-f]{{2}})/(?P<h>{_H})")),
    ("record", re.compile(rf"archives/(?P<h>{_H})\.json")),
    ("checksums", re.compile(rf"archives/(?P<h>{_H})\.sha256")),
    ("summary", re.compile(rf"archives/summaries/(?P<h>{_H})\.json")),
    ("override", re.compile(rf"archives/overrides/(?P<h>{_H})/[^/]+\.json")),
    ("destroyed", re.compile(rf"archives/destroyed/(?P<h>{_H})\.json")),
    ("receipt", re.compile(r"dicom/receipts/(?P<id>[^/]+)\.json")),
    ("received_destroyed", re.compile(r"dicom/destroyed/(?P<id>dicom-[0-9a-f]{24})\.json")),
    ("journal", journal.KEY),
    ("catalog", catalog_backups.KEY),
    ("format", re.compile(r"rtvault-store\.json")),
)


@dataclass
class VerifyProblem:
    key: str
    kind: str  # missing | corrupt | unexpected
    found: str  # when first found (ISO)
    detail: str
    needed_by: str | None = None  # for a missing key: the manifest or archive index that names it

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def classify(key: str) -> tuple[str, str]:
    """(kind, digest or id) of a store key; kind "unexpected" for anything rtvault never writes."""
    for kind, pattern in _KINDS:
        if match := pattern.fullmatch(key):
            groups = match.groupdict()
            if "p" in groups and not groups["h"].startswith(groups["p"]):
                break
            return kind, groups.get("h") or groups.get("id") or ""
    return "unexpected", ""


class _CountedFile:
    """A stored file being read, noting how far into it the reading went."""

    def __init__(self, raw: BinaryIO, counter: CountingBackend, key: str) -> None:
        self.raw, self.counter, self.key = raw, counter, key
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        self.counter.note(self.key, self.position)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.raw.seek(offset, whence)
        return self.position

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _CountedFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.raw.close()


class CountingBackend:
    """A backend seen through a note of how many stored bytes of each key were read: the bytes a verify
    covered, whatever the backend, at no extra request."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.read_up_to: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def note(self, key: str, position: int) -> None:
        self.read_up_to[key] = max(self.read_up_to.get(key, 0), position)

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        self.note(key, len(data))
        return data

    def open(self, key: str) -> BinaryIO:
        return _CountedFile(self.inner.open(key), self, key)  # type: ignore[return-value]


def _detail(key: str, error: Exception) -> str:
    """The error's sentence without the key it starts with (the problem names the key already)."""
    text = str(error)
    for prefix in (f"{key} is ", f"{key}: ", f"{key} "):
        text = text.removeprefix(prefix)
    return text


class Checker:
    """Checks keys of one store; its findings may concern other keys (a manifest finds missing objects)."""

    def __init__(self, store: Store, now: str, listed: set[str] | None = None) -> None:
        self.backend = CountingBackend(store.backend)
        self.store = copy.copy(store)  # the same store with its reads counted (Store() would add packs twice)
        self.store.backend = self.backend
        self.now = now
        self.listed = listed
        self.findings: dict[str, VerifyProblem] = {}
        self._expanded: set[str] = set()  # trees whose objects were already looked for in this run

    def bytes_of(self, keys: Iterable[str]) -> int:
        """Stored bytes of these keys read back (each counted once, however often it was read)."""
        return sum(self.backend.read_up_to.get(key, 0) for key in keys)

    def _exists(self, key: str) -> bool:
        # the listing is a cheap first answer; a key written after it was taken is confirmed by asking
        return (self.listed is not None and key in self.listed) or self.backend.exists(key)

    def _problem(self, key: str, kind: str, detail: str, needed_by: str | None = None) -> None:
        self.findings.setdefault(key, VerifyProblem(key, kind, self.now, detail, needed_by))

    def _need(self, key: str, by: str) -> bool:
        if self._exists(key):
            return True
        self._problem(key, "missing", f"{by} names it", by)
        return False

    def check(self, key: str) -> None:
        """Check one key that was listed; a key that vanished since (pruned) is no finding."""
        kind, name = classify(key)
        try:
            getattr(self, f"_check_{kind}")(key, name)
        except (StoreError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            if kind != "unexpected" and not self.backend.exists(key):
                return
            self._problem(key, "corrupt", _detail(key, error))

    def _check_unexpected(self, key: str, _name: str) -> None:
        if self.backend.exists(key):
            self._problem(key, "unexpected", "rtvault never writes such a file here")

    def _check_catalog(self, key: str, _name: str) -> None:
        catalog_backups.decode(self.backend.get(key), key)

    def _check_object(self, _key: str, digest: str) -> None:
        verify_object(self.backend, digest)

    def _check_tree(self, _key: str, digest: str) -> None:
        self.store.get_tree(digest)

    def _expand_tree(self, digest: str, by: str) -> None:
        tree_key = f"trees/{digest[:2]}/{digest}"
        if digest in self._expanded or not self._need(tree_key, by):
            return
        self._expanded.add(digest)
        try:
            tree = self.store.get_tree(digest)
        except (StoreError, ValueError) as error:
            self._problem(tree_key, "corrupt", _detail(tree_key, error))
            return
        for entry in tree.files:
            self._need(data_key(entry.hash), by)

    def _check_manifest(self, key: str, snapshot_id: str) -> None:
        manifest = parse_manifest(self.backend.get(key))  # its integrity hash first: a changed manifest's
        if manifest.id != snapshot_id:  # trees are not looked for (what it names is not to be trusted)
            raise ValueError(f"not the snapshot manifest of this name (it holds snapshot {manifest.id})")
        for digest in manifest.trees().values():
            self._expand_tree(digest, key)

    def _check_tar(self, key: str, archive_id: str) -> None:
        if not records.verify_tar(self.store, archive_id):
            raise StoreError("damaged: the archive file does not hash to its id")

    def _record(self, archive_id: str) -> ArchiveRecord:
        stored = json.loads(self.backend.get(f"archives/{archive_id}.json"))
        if stored.get("id") != archive_id or not isinstance(stored.get("members"), list):
            raise ValueError("not the index of this archive (another id, or no member list)")
        integrity.sealed(stored)  # on the fields as stored, before they are read
        try:
            return ArchiveRecord.from_json(stored)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not an archive index: {error!r}") from None

    def _check_record(self, key: str, archive_id: str) -> None:
        record = self._record(archive_id)
        self._need(f"archives/tars/{archive_id[:2]}/{archive_id}", key)
        self._need(f"archives/{archive_id}.sha256", key)
        if record.compression != "none":
            for member in record.members:
                if member.hash:
                    self._need(data_key(member.hash), key)

    def _check_checksums(self, key: str, archive_id: str) -> None:
        lines = self.backend.get(key).decode("utf-8", "surrogateescape").splitlines()
        found = {tuple(line.split("  ", 1)) for line in lines}
        try:
            record = self._record(archive_id)
        except (StoreError, ValueError):
            return  # judged against the index only; a broken index is the index's own problem
        wanted = {(m.hash, m.name) for m in record.members if m.hash and m.complete}
        if found != wanted:
            raise ValueError("damaged: it does not list the members of the archive's index")

    def _check_summary(self, key: str, archive_id: str) -> None:
        summary = json.loads(self.backend.get(key))
        if summary.get("id") != archive_id:
            raise ValueError("not the summary of this archive")
        integrity.sealed(summary)

    def _check_override(self, key: str, _name: str) -> None:
        if not {"kind", "date", "reason"} <= json.loads(self.backend.get(key)).keys():
            raise ValueError("not a retention override")

    def _check_destroyed(self, key: str, archive_id: str) -> None:
        remembered = json.loads(self.backend.get(key))
        if remembered.get("id") != archive_id or not isinstance(remembered.get("patients"), list):
            raise ValueError("not the record of this destroyed archive")

    def _check_receipt(self, key: str, ident: str) -> None:
        receipt = receipts.load(self.backend, ident)  # its integrity hash first: what a changed one names is not
        if receipt.id != ident:  # looked for
            raise ValueError(f"not the receipt of this name (it holds receipt {receipt.id})")
        for instance in receipt.instances:
            self._need(data_key(instance.hash), key)

    def _check_received_destroyed(self, key: str, ident: str) -> None:
        remembered = json.loads(self.backend.get(key))
        if remembered.get("id") != ident or not isinstance(remembered.get("objects"), list) \
                or not isinstance(remembered.get("receipts"), list):
            raise ValueError("not the record of this destruction of received objects")

    def _check_journal(self, key: str, _name: str) -> None:
        journal.decode(self.backend.get(key), key)

    def _check_format(self, key: str, _name: str) -> None:
        if json.loads(self.backend.get(key)).get("format") != "rtvault-store":
            raise ValueError("not an rtvault store format file")
