"""The DICOM node's write path (docs/design.md, "The DICOM node"): received instances made durable in the store
without the backup's writer lock, so a peer never waits for a backup or a prune.

- `put` (a C-STORE handler or `rtvault dicom import`) hands one Part 10 file to the writer thread and waits. The
  writer appends everything queued to the spool (`store/spool.py`, in the store's directory) and makes it durable
  with one fdatasync for the lot (group commit: two associations share their fsyncs), then indexes it in the
  catalog and wakes the waiters: success is answered only once the object is on the store's disk. A full disk or
  a read-only store fails the waiters of that group (the peer gets "out of resources" and sends again); the
  spool is cut back, nothing half written remains.
- The same object (same bytes) already held by the store, in a receipt or in the spool, is not written again.
- Every `seal_after_s` seconds or `seal_bytes` bytes, at the end of an association and when the node stops, the
  spool is rotated and *sealed* by a thread of its own while new objects go to the next spool: its objects
  written as content objects (packed like any other, under `locks/seal.json`, which prune also takes), then its
  receipt (`store/receipts.py`), then the spool file removed. A seal that fails is tried again every
  SEAL_RETRY_S. Killed anywhere, the next receiver seals what a spool holds (a receipt already written means only
  the file is left to remove).
- One receiver per store: it holds `locks/receiver.json` (a lease, renewed) while it runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from rtvault.catalog import dicom as catalog_dicom
from rtvault.catalog import stores
from rtvault.catalog.db import Catalog
from rtvault.catalog.indexer import store_id
from rtvault.config import Config
from rtvault.configured import open_catalog_for, open_store
from rtvault.configured import store_name as store_name_of
from rtvault.dicom.received import Streamed
from rtvault.errors import Problem, RtvaultError, StoreError
from rtvault.jobs.actions import entry
from rtvault.jobs.journal import Journal
from rtvault.store import Store, receipts
from rtvault.store.locks import WriterLock
from rtvault.store.objects import data_key, read_object, store_small, store_stream
from rtvault.store.receipts import Receipt, ReceivedInstance
from rtvault.store.spool import SPOOL_DIR, Spool, clean_incoming, directory_of, spool_files
from rtvault.utc import now_iso

RECEIVER_LOCK = "locks/receiver.json"
LEASE_S = 120.0
SEAL_WAIT_S = 600.0  # a seal waits this long for a prune holding locks/seal.json
EARLY_SEAL_S = 5.0  # after an association ends, its spool is sealed once this old
SEAL_RETRY_S = 60.0  # a spool that could not be sealed is tried again this often while the node runs
SMALL = 16 << 20  # objects up to this size are stored from memory, larger ones streamed


@dataclass(frozen=True)
class Stored:
    """What `put` did: the object's hash and size, and whether the store already held it."""

    hash: str
    size: int
    duplicate: bool


@dataclass
class _Item:
    data: bytes | Streamed
    instance: ReceivedInstance
    done: Future
    again: bool = False  # bytes already held, sent again after another version: received anew


class Receiver:
    """The write path of `rtvault dicom serve` and `rtvault dicom import` (see the module's docstring)."""

    def __init__(self, config: Config, *, store_name: str | None = None, seal_after_s: float = 30.0,
                 seal_bytes: int = 256 << 20, warn: Callable[[Problem], None] = lambda _p: None) -> None:
        self.config = config
        self.store_name = store_name_of(config, store_name or config.dicom.store or None)
        self.store: Store = open_store(config, self.store_name, write=True)
        self.store_id = store_id(self.store)
        self.root, self.encrypted = directory_of(self.store.base)
        self.site = config.site.name
        self.seal_after_s, self.seal_bytes = seal_after_s, seal_bytes
        self.warn = warn
        self.problems: list[Problem] = []
        self._lock = WriterLock(self.store.base, "dicom receive", LEASE_S, warn, key=RECEIVER_LOCK)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._state = threading.Lock()
        self._held: dict[str, tuple[str, Path, int] | None] = {}  # hash → (spool id, file, offset); None: sealed
        self._spool: Spool | None = None
        self._spool_started = 0.0
        self._seals: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._sealer: threading.Thread | None = None
        self._catalog: Catalog | None = None
        self._reader: Catalog | None = None  # the duplicate checks' (put): never behind the indexer's writes
        self._newest: dict[str, str] = {}  # SOP instance → hash of its version last written by this receiver
        self._sequence = 0
        self._early = False  # an association ended: seal once the spool is EARLY_SEAL_S old
        self._indexing: queue.Queue[tuple[str, list[ReceivedInstance]] | None] = queue.Queue()
        self._indexer: threading.Thread | None = None
        self._catalog_turn = threading.Lock()  # the indexer's rows of a spool, and its seal, one at a time
        self._sealed_spools: set[str] = set()
        self._journal_writer = Journal(config)
        self._closing = False
        self.cleaned: list[Path] = []
        self.incoming = self.root / SPOOL_DIR  # where the node's C-STOREs arrive (spool.INCOMING files)

    # --- life ---------------------------------------------------------------------------------------------

    def start(self) -> Receiver:
        self._lock.acquire()
        try:
            self.cleaned = clean_incoming(self.root)  # data sets a node killed mid-C-STORE left arriving
            self._catalog = self._open_catalog()
            self._reader = self._open_catalog() if self._catalog is not None else None
            for path in spool_files(self.root):  # left by a receiver that was killed: sealed first
                self._seal(path.stem, path)
            self._catch_up()
        except BaseException:
            self._lock.release()
            raise
        self._writer = threading.Thread(target=self._write_loop, name="rtvault-dicom-writer", daemon=True)
        self._sealer = threading.Thread(target=self._seal_loop, name="rtvault-dicom-sealer", daemon=True)
        self._indexer = threading.Thread(target=self._index_loop, name="rtvault-dicom-indexer", daemon=True)
        self._writer.start()
        self._sealer.start()
        self._indexer.start()
        return self

    def close(self) -> None:
        """Seal what the spool holds and release the store (what could not be sealed is left for the next
        receiver, durable in its spool)."""
        if self._writer is None:
            return
        with self._state:  # no put queues anything after the writer's last item
            self._closing = True
            self._queue.put(None)
        self._writer.join()
        self._indexing.put(None)
        if self._indexer is not None:
            self._indexer.join()
        self._seals.put(None)
        if self._sealer is not None:
            self._sealer.join()
        self._writer = None
        with contextlib.suppress(RtvaultError):  # what an association aborted at the stop left arriving
            clean_incoming(self.root)
        if self._catalog is not None:
            self._catalog.close()
        if self._reader is not None:
            self._reader.close()
        self._lock.release()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _catch_up(self) -> None:
        """The store's receipts the catalog lacks (a catalog new, rebuilt or restored from an older copy): indexed
        now, so that C-FIND, C-MOVE and C-GET answer what the store holds, not only what came since."""
        if self._catalog is None:
            return
        try:
            with self._catalog.transaction():
                stores.register(self._catalog, self.store_id, self.store_name, self.site)
                _added, problems = catalog_dicom.sync_store(self._catalog, self.store_id, self.store, self.site)
        except RtvaultError as error:
            problems = [f"the store's receipts cannot be indexed ({error}): `rtvault catalog sync` will"]
        for problem in problems:
            self._problem("catalog", problem)

    def _open_catalog(self) -> Catalog | None:
        try:
            return open_catalog_for(self.config)
        except RtvaultError as error:  # the node still stores; a later `catalog sync` indexes the receipts
            self._problem("catalog", f"the catalog cannot be opened ({error}): received objects are stored but "
                                     "found by C-FIND only after `rtvault catalog sync`")
            return None

    def _problem(self, where: str, message: str) -> None:
        problem = Problem(where, message)
        self.problems.append(problem)
        self.warn(problem)

    # --- receiving ----------------------------------------------------------------------------------------

    def put(self, data: bytes | Streamed, tags: dict, *, calling_ae: str = "", called_ae: str = "",
            origin: str = "network", source: str = "") -> Stored:
        """Store one Part 10 file, in memory or `Streamed` from a file (copied to the spool in blocks, whatever its
        size); returns once it is durable (StoreError when it cannot be)."""
        if isinstance(data, Streamed):
            digest, size = data.hash, data.size
        else:
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
        instance = ReceivedInstance(digest, size, now_iso(), calling_ae, called_ae, origin, source, tags)
        item = _Item(data, instance, Future())
        with self._state:
            if self._writer is None or self._closing:
                raise StoreError("the DICOM receiver is stopping: send the object again")
            # in a spool of this receiver, or sealed and still held (the catalog and the store say so: a sealed
            # object may have been legally destroyed since, and is then stored anew)
            held = self._held.get(digest) is not None or self._known(digest)
            # held bytes are a duplicate, unless another version of the instance came since (A, B, then A
            # again: A is received anew, so that what C-FIND, C-MOVE and C-GET answer is the version sent last)
            item.again = held and self._newest_version(str(tags.get("SOPInstanceUID", ""))) not in (digest, None)
            if held and not item.again:
                return Stored(digest, size, True)
            self._queue.put(item)
        return item.done.result()

    def _known(self, digest: str) -> bool:
        """Whether the store holds this object already: the catalog says so and the store has it (the store is
        the truth: a store restored from an older copy, or an object legally destroyed since the last sync, is
        in the catalog but not held, and the peer sending it again must get it stored). Asked on a connection of
        its own: the indexer's may wait for a catalog another writer locks, and no peer waits for that."""
        if self._reader is None:
            return False
        try:
            return catalog_dicom.known(self._reader, self.store_id, digest) and \
                self.store.backend.exists(data_key(digest))
        except (RtvaultError, OSError):
            return False

    def _newest_version(self, sop_instance: str) -> str | None:
        """The hash of the version of a SOP instance received last (this receiver's writes first), or None."""
        if sop_instance in self._newest:
            return self._newest[sop_instance]
        if self._reader is None or not sop_instance:
            return None
        try:
            return catalog_dicom.newest(self._reader, self.store_id, sop_instance)
        except RtvaultError:
            return None

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._maybe_rotate()
                continue
            if first is None:
                self._rotate()
                return
            group = [first]
            while len(group) < 256:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # seen after this group
                    break
                group.append(more)
            try:
                self._write(group)
                self._maybe_rotate()
            except Exception as error:  # a bug or a MemoryError: fail the group, never leave its senders waiting
                self._problem("dicom receive", f"internal error while writing received objects ({error!r})")
                failure = StoreError(f"the DICOM receiver could not write the object ({type(error).__name__}): "
                                     "send it again")
                for item in group:
                    if not item.done.done():
                        item.done.set_exception(failure)

    def _write(self, group: list[_Item]) -> None:
        fresh: dict[str, _Item] = {}
        twins: list[_Item] = []  # the same object sent twice in this group: answered as its first is, once it is
        with self._state:
            for item in group:
                if item.instance.hash in self._held and not item.again:
                    item.done.set_result(Stored(item.instance.hash, item.instance.size, True))
                elif item.instance.hash in fresh:
                    twins.append(item)
                else:
                    fresh[item.instance.hash] = item
        try:
            self._append([*fresh.values()])
        except BaseException as error:
            for item in twins:
                item.done.set_exception(error if isinstance(error, StoreError) else StoreError(
                    f"the DICOM receiver could not write the object ({type(error).__name__}): send it again"))
            raise
        finally:
            for item in twins:
                first = fresh[item.instance.hash].done
                if not item.done.done() and first.done() and first.exception() is None:
                    item.done.set_result(Stored(item.instance.hash, item.instance.size, True))
                elif not item.done.done() and first.done():
                    item.done.set_exception(first.exception())  # type: ignore[arg-type]

    def _append(self, fresh: list[_Item]) -> None:
        if not fresh:
            return
        try:
            spool = self._current()
            start = spool.size
            offsets = []
            try:
                for item in fresh:
                    if isinstance(item.data, Streamed):
                        offsets.append(spool.append_stream(item.instance.to_json(), item.data.blocks(),
                                                           item.instance.size))
                    else:
                        offsets.append(spool.append(item.instance.to_json(), item.data))
                spool.sync()
                if not self._lock.held():  # another receiver took the store over: it seals (and removes) our spools
                    raise StoreError(f"store {self.store.location}: this DICOM receiver lost {RECEIVER_LOCK} (its "
                                     "lease was not renewed in time and another receiver took it over): nothing "
                                     "more is stored here; restart the DICOM node")
            except BaseException:
                spool._cut(start)  # no record of a failed group stays, to be sealed though its sender was refused
                raise
        except StoreError as error:
            for item in fresh:
                item.done.set_exception(error)
            return
        ident = spool.path.stem
        with self._state:
            for item, offset in zip(fresh, offsets, strict=True):
                self._held[item.instance.hash] = (ident, spool.path, offset)
                self._newest[str(item.instance.tags.get("SOPInstanceUID", ""))] = item.instance.hash
        self._index(catalog_dicom.SPOOL_PREFIX + ident, [item.instance for item in fresh])
        for item in fresh:
            item.done.set_result(Stored(item.instance.hash, item.instance.size, False))

    def _index(self, receipt: str, instances: list[ReceivedInstance]) -> None:
        """Queued for the indexer thread: a catalog busy with a long sync never holds up the writer, hence the
        peers (a seal puts in whatever rows are missing anyway)."""
        if self._catalog is not None:
            self._indexing.put((receipt, instances))

    def _index_loop(self) -> None:
        while (job := self._indexing.get()) is not None:
            try:
                assert self._catalog is not None
                with self._catalog_turn:
                    if job[0].removeprefix(catalog_dicom.SPOOL_PREFIX) not in self._sealed_spools:
                        catalog_dicom.add(self._catalog, self.store_id, job[0], self.site, job[1])
            except RtvaultError as error:
                self._problem("catalog", f"received objects not indexed yet ({error}): the seal will index them")
            finally:
                self._indexing.task_done()
        self._indexing.task_done()

    def indexed(self, wait_s: float = 2.0) -> bool:
        """Wait (at most `wait_s`) until every object answered stored is in the catalog: a C-FIND after a
        C-STORE finds what was stored. False when the catalog is still behind."""
        deadline = time.monotonic() + wait_s
        while self._indexing.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _current(self) -> Spool:
        if self._spool is None:
            self._sequence += 1
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            ident = f"{stamp}-{socket.gethostname()[:12]}-{threading.get_native_id()}-{self._sequence}"
            ident = "".join(c if c.isalnum() or c in "-_" else "_" for c in ident)
            self._spool = Spool.create(self.root, ident, self.encrypted)
            self._spool_started = time.monotonic()
        return self._spool

    def _maybe_rotate(self) -> None:
        spool = self._spool
        due = min(self.seal_after_s, EARLY_SEAL_S) if self._early else self.seal_after_s
        if spool is not None and (spool.size >= self.seal_bytes or time.monotonic() - self._spool_started >= due):
            self._early = False
            self._rotate()

    def seal_soon(self) -> None:
        """An association ended: what the spool holds is sealed once the spool is EARLY_SEAL_S old (a modality
        sending one object per association thus makes a receipt every few seconds, not one per object)."""
        self._early = True

    def _rotate(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()
            self._seals.put((spool.path.stem, spool.path))

    # --- sealing ------------------------------------------------------------------------------------------

    def _seal_loop(self) -> None:
        failed: dict[tuple[str, Path], Problem] = {}  # spools whose seal failed, tried again every SEAL_RETRY_S
        while True:
            try:
                job = self._seals.get(timeout=SEAL_RETRY_S) if failed else self._seals.get()
            except queue.Empty:
                job = ()
            for one in [*failed, *([job] if job else [])]:
                try:
                    self._seal(*one)
                except (RtvaultError, OSError) as error:  # left durable in its spool: tried again, and at next start
                    if one not in failed:
                        failed[one] = Problem(str(one[1]), f"could not be sealed into the store ({error}); it stays "
                                                           "in its spool, tried again every minute and when the "
                                                           "DICOM node next starts")
                        self.problems.append(failed[one])
                        self.warn(failed[one])
                    continue
                if one in failed:  # sealed after all: nothing left to report
                    with contextlib.suppress(ValueError):
                        self.problems.remove(failed.pop(one))
            if job is None:
                return

    def _seal(self, ident: str, path: Path) -> None:
        backend = self.store.backend
        key = path.relative_to(self.root).as_posix()
        skipped: list[tuple[int, int]] = []
        if not backend.exists(receipts.receipt_key(ident)):
            instances = []
            seal_lock = WriterLock(self.store.base, "dicom seal", LEASE_S, self.warn, key=receipts.SEAL_LOCK)
            seal_lock.acquire(wait_s=SEAL_WAIT_S)  # a prune deleting objects holds it: wait for it to finish
            try:
                for record in Spool.records(path, key, self.encrypted, skipped):
                    try:
                        instance = ReceivedInstance.from_json(record.meta)
                    except (ValueError, KeyError, TypeError):
                        skipped.append((record.offset, record.offset))
                        continue
                    if record.size <= SMALL:
                        data = record.data
                        if hashlib.sha256(data).hexdigest() != instance.hash:
                            continue  # cannot happen with a record whose checksum matched; never trusted blindly
                        store_small(backend, data, False)
                    else:  # streamed (a multi-GB image is sealed in bounded memory); its digest checked after
                        with record.open() as stream:
                            digest, _size, _new = store_stream(backend, stream, False)
                        if digest != instance.hash:
                            continue
                    instances.append(instance)
                backend.barrier()
                receipt = Receipt(ident, now_iso(), socket.gethostname(), self.site, tuple(instances))
                if instances:
                    receipts.save(backend, receipt)
            finally:
                seal_lock.release()
            if self._catalog is not None:
                self.indexed(wait_s=30.0)  # the spool's rows first, so that the seal renames rather than adds
                with self._catalog_turn:  # the indexer adds no row of this spool once it is sealed
                    self._sealed_spools.add(ident)
                    try:
                        catalog_dicom.sealed(self._catalog, self.store_id, receipt, self.site)
                    except RtvaultError as error:
                        self._problem("catalog", f"receipt {ident} not indexed yet ({error})")
            if instances:
                self._journal(receipt)
        try:
            if skipped:  # kept for whoever investigates, out of the spools sealed at start
                path.rename(path.with_suffix(".damaged"))
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StoreError(f"{path}: sealed but cannot be removed ({error.strerror})") from None
        if skipped:
            where = ", ".join(f"bytes {a}-{b}" for a, b in skipped[:5])
            self._problem(str(path), f"damaged records ({where}) could not be read: the objects they held are lost "
                                     f"unless their senders send them again; every whole record was sealed into "
                                     f"receipt {ident}, and the file is kept as {path.with_suffix('.damaged').name}")
        with self._state:
            for digest, where in list(self._held.items()):
                if where is not None and where[0] == ident:
                    self._held[digest] = None

    def _journal(self, receipt: Receipt) -> None:
        """One entry of the journal of actions per receipt: what was received, from whom, for which patients."""
        senders = sorted({i.calling_ae or i.source for i in receipt.instances})
        patients = sorted({str(i.tags.get("PatientID", "")) for i in receipt.instances})
        detail = {"receipt": receipt.id, "instances": len(receipt.instances),
                  "bytes": sum(i.size for i in receipt.instances),
                  "senders": senders, "patients": patients, "store": self.store_id,
                  "origin": sorted({i.origin for i in receipt.instances})}
        item = entry(user=",".join(senders)[:200] or "dicom", via="dicom", action="dicom_receive", target=receipt.id,
                     detail=detail)
        try:
            written = self._journal_writer.append({"kind": "actions", "entries": [item]})
        except (RtvaultError, OSError) as error:
            self._problem("journal", f"receipt {receipt.id} not in the journal of actions ({error})")
            return
        for problem in written.problems:
            self._problem("journal", problem)

    # --- reading ------------------------------------------------------------------------------------------

    def read(self, digest: str) -> bytes:
        """A received object's bytes, from the spool while it is not sealed yet, else from the store."""
        with self._state:
            where = self._held.get(digest)
        if where is not None:
            _spool, path, offset = where
            key = path.relative_to(self.root).as_posix()
            try:
                return Spool.record_at(path, key, self.encrypted, offset).data
            except StoreError:
                pass  # sealed meanwhile: read from the store
        return b"".join(read_object(self.store.backend, digest))
