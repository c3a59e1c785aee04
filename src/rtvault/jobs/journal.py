"""The run journal: every record written to every configured store, indexed in the catalog (docs/design.md,
"The run journal").

A `Journal` is one writer process's stream of segments (store/journal.py). A segment that a store cannot take
(unmounted, S3 down, full: the very failure the record may be about) is spooled in `[daemon] state_dir`/spool/
<store>/ and written by `flush()` once the store answers again; the catalog that cannot be reached catches up at
the next `catalog sync`, which reads the stores' segments.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rtvault import __version__
from rtvault.catalog import runs
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store
from rtvault.errors import CatalogUnavailable, RtvaultError
from rtvault.localfile import write_atomically
from rtvault.store import journal
from rtvault.store.backend import Backend
from rtvault.utc import iso


@dataclass
class Written:
    """Where one record went: the stores that hold it, and those it waits for (store: why)."""

    id: str
    stores: list[str] = field(default_factory=list)
    spooled: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the spool or the catalog failed too


class Journal:
    """One process's stream of journal records."""

    def __init__(self, config: Config, now: datetime | None = None) -> None:
        self.config = config
        self.writer = journal.new_writer(now or datetime.now(UTC))
        self.seq = 0
        self.prev: str | None = None  # the integrity hash of this stream's last segment: the next one names it
        self.spool = config.daemon.state_dir / "spool"
        self.lock = threading.Lock()  # a stream is one chain: its segments are numbered and chained one at a time

    def append(self, record: dict[str, object], *, spool_only: bool = False, index: bool = True) -> Written:
        """Write one record (`kind` "run", "alert" or "actions") to every store, spooling it for those that fail;
        `spool_only`: into the spool for every store (a process that never writes a store: the web server);
        `index`: into the catalog too (unless the caller indexed it already)."""
        with self.lock:
            self.seq += 1
            record_id = journal.segment_id(self.writer, self.seq)
            document = {"host": socket.gethostname(), "pid": os.getpid(), "rtvault_version": __version__, **record}
            after = self._head() if self.seq == 1 else None
            data = self._encode(record_id, document, after)
            if self.seq == 1 and after is None and not spool_only and (after := self._claim(data)) is not None:
                data = self._encode(record_id, document, after)  # another process began the journal first
            self.prev = json.loads(data)["integrity"]
            written = Written(record_id)
            for name in writable(self.config):
                try:
                    if spool_only:
                        raise RtvaultError("this process does not write the stores")
                    backend = open_store(self.config, name).backend
                    backend.put(journal.segment_key(record_id), data, durable=True)
                    written.stores.append(name)
                    _move_head(backend, record_id, self.prev)
                except (RtvaultError, OSError) as error:
                    written.spooled[name] = str(error)
                    self._spool(name, record_id, data, written)
            if index:
                self._index([journal.decode(data, journal.segment_key(record_id))], written.problems)
            return written

    def _encode(self, record_id: str, document: dict[str, object], after: tuple[str, str] | None) -> bytes:
        return journal.encode(record_id, document, after[1] if after else self.prev, after[0] if after else None)

    def _head(self) -> tuple[str, str] | None:
        """The newest segment of the first store that has one (those this host writes first, then those it only
        reads: a pulled copy's journal goes on from its primary's): where this stream's chain hangs on."""
        names = writable(self.config)
        for name in [*names, *(n for n in self.config.stores if n not in names)]:
            try:
                head = journal.read_head(open_store(self.config, name).backend)
            except (RtvaultError, OSError):
                continue
            if head is not None:
                return head
        return None

    def _claim(self, data: bytes) -> tuple[str, str] | None:
        """No store has a head: this stream begins the journal, unless another process began it at the same time.
        The head of the first store that answers is claimed before the segment is written (written only if there
        is none); the head found there instead when another process claimed it first (None: this one did)."""
        document = json.loads(data)
        claim = json.dumps({"id": document["id"], "integrity": document["integrity"]}).encode() + b"\n"
        for name in writable(self.config):
            try:
                backend = open_store(self.config, name).backend
                if backend.create_exclusive(journal.HEAD_KEY, claim):
                    return None
                return journal.read_head(backend)
            except (RtvaultError, OSError):
                continue
        return None

    def _spool(self, store: str, record_id: str, data: bytes, written: Written) -> None:
        path = self.spool / store / (record_id.replace("/", "_") + ".json")
        try:
            write_atomically(path, data, private=True)
        except OSError as error:
            written.problems.append(f"journal record {record_id} is on no store for {store} and could not be kept "
                                    f"in {path.parent} ({error.strerror or error}): give the service user write "
                                    "access to [daemon] state_dir")

    def _index(self, records: list[dict[str, object]], problems: list[str]) -> None:
        """The records into the catalog, when there is one: a record never makes a lost SQLite catalog anew
        (empty, it would pass for the truth); `catalog rebuild` reads the records back from the stores."""
        try:
            with open_catalog_for(self.config, create=False) as catalog:
                runs.add(catalog, records)
        except CatalogUnavailable:
            return
        except RtvaultError as error:
            problems.append(f"the catalog was not updated ({error}); `rtvault catalog sync` adds the record once it "
                            "answers")

    def flush(self) -> list[str]:
        """Write the spooled records to the stores that answer again; what is still waiting, as sentences."""
        return flush_spool(self.config)


def writable(config: Config) -> list[str]:
    """The stores this host writes its records to: all but those it only reads (`read_only = true`)."""
    return [name for name, store in config.stores.items() if not store.read_only]


def _move_head(backend: Backend, record_id: str, digest: str) -> None:
    """The store's head moved to the segment just written; a head that cannot be written only costs the next
    stream its link to this one (said by `journal verify` as a stream that hangs on nothing)."""
    with contextlib.suppress(RtvaultError, OSError):
        journal.write_head(backend, record_id, digest)


def spooled(config: Config) -> dict[str, list[Path]]:
    """The records waiting in the spool, per store."""
    spool = config.daemon.state_dir / "spool"
    try:
        folders = sorted(p for p in spool.iterdir() if p.is_dir())
    except OSError:
        return {}
    return {folder.name: sorted(folder.glob("*.json")) for folder in folders if any(folder.glob("*.json"))}


def flush_spool(config: Config) -> list[str]:
    """Write every spooled record to its store; a store still failing keeps its records (said once per store)."""
    waiting = []
    for name, paths in spooled(config).items():
        if name not in config.stores:
            waiting.append(f"{len(paths)} journal record(s) spooled for store {name}, no longer configured, are "
                           f"kept in {paths[0].parent}")
            continue
        try:
            backend = open_store(config, name).backend
            for path in paths:
                data = path.read_bytes()
                key = journal.segment_key(path.stem.replace("_", "/"))
                try:
                    journal.decode(data, key)
                except ValueError as error:  # damaged on the local disk: not sent, and not in the others' way
                    waiting.append(_set_aside(path, name, error))
                    continue
                backend.put(key, data, durable=True)
                record_id = key.removeprefix(journal.FOLDER).removesuffix(".json")
                following = journal.segment_key(journal.segment_id(record_id.split("/")[0],
                                                                   journal.seq_of(record_id) + 1))
                if not backend.exists(following):  # written already, past this one: the head never goes back
                    _move_head(backend, record_id, json.loads(data)["integrity"])
                path.unlink()
        except (RtvaultError, OSError) as error:
            left = sum(1 for path in paths if path.exists())
            waiting.append(f"{left} journal record(s) wait in {paths[0].parent} for store {name}: {error}")
    return waiting


def _set_aside(path: Path, store: str, error: ValueError) -> str:
    """A damaged spooled record renamed `<name>.damaged` (no longer sent nor retried); what was done, as a sentence."""
    aside = path.with_name(path.name + ".damaged")
    try:
        os.replace(path, aside)
    except OSError as failure:
        return (f"spooled journal record {path} for store {store} is damaged ({error}) and could not be set aside "
                f"({failure.strerror or failure}): delete it")
    return (f"spooled journal record {path.name} for store {store} is damaged ({error}): not sent, set aside as "
            f"{aside} (the stores that were up when it was written hold it); delete it once looked at")


def run_record(job: str, trigger: str, start: datetime, end: datetime, result: str, error: str,
               summary: object, **extra: object) -> dict[str, object]:
    """A run's journal record (docs/design.md lists its fields)."""
    return {"kind": "run", "job": job, "trigger": trigger, "start": iso(start), "end": iso(end), "result": result,
            "error": error, "duration_s": round((end - start).total_seconds(), 3), "summary": summary, **extra}
