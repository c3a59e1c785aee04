"""A store: its format file, content objects, patient trees and snapshot manifests (docs/design.md).

Write order, always: content objects, then the trees that name them, then the snapshot manifest that
names the trees. Each file is immutable and written atomically, so a run killed at any point leaves a
store whose every snapshot is complete; what the dead run wrote before its manifest is merely unreferenced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import zstandard

from rtvault import __version__, utc
from rtvault.errors import StoreError
from rtvault.store import integrity
from rtvault.store.backend import TMP_DIR, Backend, DirectoryBackend
from rtvault.store.formats import Manifest, Tree
from rtvault.store.packs import PackedBackend

FORMAT_FILE = "rtvault-store.json"
FORMAT_NAME = "rtvault-store"
FORMAT_VERSION = 2  # version 2: small objects and trees in packs (store/packs.py); version 1 is still read
READABLE = (1, 2)
MANIFEST_FORMAT = 1  # the manifest's own format: unchanged by packs
LEVEL_TREES = 9


def tree_key(digest: str) -> str:
    return f"trees/{digest[:2]}/{digest}"


def snapshot_key(snapshot_id: str) -> str:
    return f"snapshots/{snapshot_id}.json"


def new_snapshot_id(time: datetime) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def _json_bytes(data: object) -> bytes:
    # ASCII-only JSON: file names that are not UTF-8 survive as \udcXX escapes, and any reader decodes it.
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")


def decode_tree(raw: bytes, digest: str) -> bytes:
    """A stored tree's JSON bytes, checked against its name; StoreError when it is damaged."""
    try:
        data = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
    except zstandard.ZstdError as error:
        raise StoreError(f"{tree_key(digest)} is damaged: {error}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise StoreError(f"{tree_key(digest)} is damaged: its content does not match its name")
    return data


_REUSED: ContextVar[dict[bytes, Manifest] | None] = ContextVar("rtvault_reused_manifests", default=None)


@contextmanager
def manifests_reused() -> Iterator[None]:
    """Within the `with`, a manifest read again with the same bytes is not parsed again: a backup reads every
    manifest, then its catalog refresh reads them all once more (each a few tens of milliseconds for a
    database of thousands of patients, times the snapshots kept). Only for the job's duration: the bytes and
    manifests are not kept in a long-running process."""
    token = _REUSED.set({})
    try:
        yield
    finally:
        _REUSED.reset(token)


def _parse_reused(data: bytes) -> Manifest:
    """`parse_manifest`, through the job's memo when one is open (a manifest is immutable: same bytes, same
    manifest; a damaged one is never remembered and fails again)."""
    reused = _REUSED.get()
    if reused is None:
        return parse_manifest(data)
    if (manifest := reused.get(data)) is None:
        manifest = reused[data] = parse_manifest(data)
    return manifest


def parse_manifest(data: bytes) -> Manifest:
    """A snapshot manifest from its stored bytes; ValueError when it is not one, or when its content no
    longer matches its integrity hash (a manifest written before integrity hashes has none: accepted)."""
    manifest = integrity.parse(data)
    try:
        return Manifest.from_json(manifest)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a manifest: {error!r}") from None


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    time: str
    patients: int
    files: int
    bytes: int
    host: str

    @classmethod
    def of(cls, manifest: Manifest) -> SnapshotInfo:
        return cls(manifest.id, manifest.time, len(manifest.patients), manifest.files, manifest.bytes, manifest.host)


class Store:
    """One store, on any backend."""

    def __init__(self, backend: Backend, info: dict, base: Backend | None = None) -> None:
        self.backend = backend  # the store's keys (through packs in a version 2 store)
        self.base = base or backend  # the files as they lie (directory, S3, decrypted)
        self.info = info

    @classmethod
    def of(cls, base: Backend, info: dict) -> Store:
        """The store whose files `base` holds, described by its format file `info`."""
        return cls(PackedBackend(base) if info.get("version") == 2 else base, info, base)

    @property
    def version(self) -> int:
        return int(self.info.get("version", 1))

    def layout_problems(self) -> list:
        """Damaged index files and pack headers of a version 2 store (`check` lists them)."""
        return self.backend.index_problems() if isinstance(self.backend, PackedBackend) else []

    @property
    def location(self) -> str:
        return self.backend.location

    @classmethod
    def init(cls, path: Path) -> tuple[Store, bool]:
        """Create a store at `path`, or open the one already there; refuse a directory holding anything else."""
        if (path / FORMAT_FILE).exists():
            return cls.open(path), False
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StoreError(f"{path} is not empty and is not an rtvault store: refusing to use it")
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # owner-only: patient data (a NAS that keeps its own modes says no)
            path.chmod(0o700)
        for folder in ("data", "trees", "packs", "index", "snapshots", "locks", TMP_DIR):
            (path / folder).mkdir(exist_ok=True)
        return cls._create(DirectoryBackend(path)), True

    @classmethod
    def init_backend(cls, backend: Backend, *, empty: bool) -> tuple[Store, bool]:
        """Create a store on any backend, or open the one already there; `empty` says whether the backend
        holds nothing yet (a backend holding anything else is refused)."""
        if backend.exists(FORMAT_FILE):
            return cls.open_backend(backend), False
        if not empty:
            raise StoreError(f"{backend.location} is not empty and is not an rtvault store: refusing to use it")
        return cls._create(backend), True

    @classmethod
    def _create(cls, backend: Backend) -> Store:
        info = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "id": uuid.uuid4().hex,
                "created": utc.now_iso(), "hash": "sha256",
                "compression": "zstd", "created_by": f"rtvault {__version__}"}
        backend.put(FORMAT_FILE, json.dumps(info, indent=2).encode() + b"\n", durable=True)
        return cls.of(backend, info)

    @classmethod
    def open(cls, path: Path) -> Store:
        """The store in a directory."""
        if not path.exists():
            raise StoreError(f"store {path} does not exist (is the NAS mounted? run `rtvault init`)")
        return cls.open_backend(DirectoryBackend(path))

    @classmethod
    def open_backend(cls, backend: Backend) -> Store:
        """The store on any backend; StoreError when it is not an rtvault store of a format this one reads."""
        where = backend.location
        if not backend.exists(FORMAT_FILE):
            raise StoreError(f"{where} is not an rtvault store (no {FORMAT_FILE}; run `rtvault init`)")
        try:
            info = json.loads(backend.get(FORMAT_FILE))
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as error:
            raise StoreError(f"{where}/{FORMAT_FILE} is unreadable: {error}") from None
        if info.get("format") != FORMAT_NAME or info.get("version") not in READABLE:
            raise StoreError(f"{where} has store format {info.get('format')!r} version {info.get('version')!r}; "
                             f"this rtvault reads {FORMAT_NAME} versions 1 and 2 (a newer rtvault wrote it?)")
        return cls.of(backend, info)

    def put_tree(self, tree: Tree) -> str:
        data = _json_bytes(tree.to_json())
        digest = hashlib.sha256(data).hexdigest()
        if not self.backend.exists(tree_key(digest)):
            self.backend.put(tree_key(digest), zstandard.ZstdCompressor(level=LEVEL_TREES).compress(data))
        return digest

    def get_tree(self, digest: str) -> Tree:
        try:
            return Tree.from_json(json.loads(decode_tree(self.backend.get(tree_key(digest)), digest)))
        except (ValueError, KeyError, TypeError) as error:  # hashes to its name, yet not a tree: a bug's, kept
            raise StoreError(f"{tree_key(digest)} in {self.location} is not a valid tree: {error!r}") from None

    def save_snapshot(self, manifest: Manifest) -> Manifest:
        """Write a snapshot's manifest, sealed with its integrity hash; returns it as stored."""
        sealed = integrity.seal({**manifest.to_json(), "format": MANIFEST_FORMAT, "host": socket.gethostname(),
                                 "rtvault_version": __version__})  # the hash covers every field, written last
        self.backend.barrier()  # every object and tree it names is durable before the manifest exists
        self.backend.put(snapshot_key(manifest.id), json.dumps(sealed, indent=1).encode("ascii") + b"\n",
                         durable=True)
        return Manifest.from_json(sealed)

    def manifests(self, on_damaged: Callable[[str, str], None] | None = None) -> list[Manifest]:
        """Every snapshot manifest, oldest first. A damaged one (unreadable, or not matching its integrity
        hash) raises StoreError, or, with `on_damaged`, is reported to it (key, reason) and left out (what
        `check` needs to list every problem)."""
        self._refuse_missing_snapshots_folder()
        found = []
        for key in self.backend.list("snapshots/"):
            if not key.endswith(".json"):
                continue
            try:
                found.append(_parse_reused(self.backend.get(key)))
            except (ValueError, StoreError) as error:
                if on_damaged is None:
                    raise StoreError(f"{key} is damaged: {error}") from None
                on_damaged(key, str(error))
        return sorted(found, key=lambda m: (m.time, m.id))

    def _refuse_missing_snapshots_folder(self) -> None:
        """On a directory store (made with its snapshots/ folder), a missing one is damage, not "no snapshot
        yet": listing it as empty would let prune delete every backed-up file."""
        backend = self.backend
        while hasattr(backend, "inner"):  # an encrypted store's directory
            backend = backend.inner
        root = getattr(backend, "root", None)
        if isinstance(root, Path) and not (root / "snapshots").is_dir():
            raise StoreError(f"store {self.location}: its snapshots/ folder is missing or not a folder, so its "
                             "snapshots cannot be listed; put it back (from a copy of this store, or the NAS's own "
                             "backup) before anything else writes to this store")

    def snapshots(self) -> list[SnapshotInfo]:
        return [SnapshotInfo.of(m) for m in self.manifests()]

    def manifests_and_damage(self) -> tuple[list[Manifest], dict[str, str]]:
        """The intact manifests (oldest first) and the damaged ones (snapshot id → why): a reader goes on with
        the intact ones, as long as what it was asked for is not damaged or hidden behind damage."""
        damaged: dict[str, str] = {}
        manifests = self.manifests(on_damaged=lambda key, why: damaged.__setitem__(
            key.removeprefix("snapshots/").removesuffix(".json"), why))
        return manifests, damaged

    def refuse_newer_damage(self, chosen: str, damaged: dict[str, str]) -> None:
        """`chosen` was picked as the newest: refuse when a damaged manifest is newer (it may hold what was
        asked for), naming it and what to do."""
        newer = sorted(d for d in damaged if d > chosen)
        if newer:
            raise StoreError(f"snapshot {newer[-1]} in {self.location} is damaged ({damaged[newer[-1]]}): the "
                             f"newest version cannot be told; give `--snapshot {chosen}` (the newest intact one) "
                             "or heal the store first (`rtvault verify --all`, then `rtvault repair`)")

    def load_snapshot(self, wanted: str, source: str | None = None) -> Manifest:
        """A snapshot by id, unique id prefix, `latest`, or `latest~N` (N snapshots before the latest), of the
        source `source` when given (else of any). A damaged manifest elsewhere does not stop it; asking for a
        damaged one (or `latest` behind one) does."""
        return self.pick_snapshot(wanted, *self.manifests_and_damage(), source=source)

    def pick_snapshot(self, wanted: str, manifests: list[Manifest], damaged: dict[str, str],
                      source: str | None = None) -> Manifest:
        """`load_snapshot` from manifests already read (`manifests_and_damage`): a caller wanting several
        snapshots reads the store's manifests once."""
        if not manifests and not damaged:
            raise StoreError(f"store {self.location} holds no snapshot yet (run `rtvault backup`)")
        if source is not None:
            manifests = [m for m in manifests if m.source_name == source]
            if not manifests and not damaged:
                raise StoreError(f"store {self.location} holds no snapshot of the source {source} yet "
                                 f"(run `rtvault backup --source {source}`)")
        if match := re.fullmatch(r"latest(?:~(\d+))?", wanted):
            back = int(match.group(1) or 0)
            if back >= len(manifests):
                raise StoreError(f"{wanted!r}: the store holds only {len(manifests)} intact snapshot(s)"
                                 + (f" of the source {source}" if source is not None else ""))
            self.refuse_newer_damage(manifests[-1].id, damaged)
            return manifests[-1 - back]
        if bad := [d for d in damaged if d.startswith(wanted)]:
            raise StoreError(f"snapshot {bad[0]} in {self.location} is damaged ({damaged[bad[0]]}): heal the "
                             "store (`rtvault verify --all`, then `rtvault repair`) or choose another snapshot")
        matches = [m for m in manifests if m.id.startswith(wanted)]
        if len(matches) != 1:
            what = "no snapshot" if not matches else f"{len(matches)} snapshots"
            raise StoreError(f"{what} in {self.location} match {wanted!r} (see `rtvault snapshots`)")
        return matches[0]

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.backend.delete(snapshot_key(snapshot_id))

