"""Carrying out a legal destruction of received objects once decided (jobs/dicom_destruction.py decides; docs/
design.md, "Legal destruction of received objects"): the catalog's rows dropped, the store record
`dicom/destroyed/<id>.json` written in every store that answers, then per store, under its writer lock and
`locks/seal.json`, the listed receipts rewritten without the objects and the objects no receipt, snapshot or
archive names any more deleted, their packs rewritten (`PackedBackend.purge`) and checked gone.
"""

from __future__ import annotations

from rtvault.catalog import destructions, dicom_patients
from rtvault.catalog.db import Catalog
from rtvault.catalog.destructions import STORE, Copy
from rtvault.config import Config
from rtvault.errors import RtvaultError, StoreError
from rtvault.jobs.destruction import (
    Here,
    reachable,
)
from rtvault.jobs.dicom_receive import RECEIVER_LOCK, SEAL_WAIT_S, Receiver
from rtvault.jobs.maintenance import kept_by_backups
from rtvault.store import Store, receipts
from rtvault.store.locks import WriterLock, read_lease
from rtvault.store.objects import data_key
from rtvault.store.packs import PackedBackend
from rtvault.store.spool import Spool, directory_of, spool_files
from rtvault.utc import now_iso

RECORD_FORMAT = "rtvault-dicom-destruction"
LEASE_S = 300.0
IN_SPOOL = "in the node's spool: run again in a minute (`rtvault dicom delete --pending`)"


def record(certificate: dict, ident: str, decided: str) -> dict:
    """The record every store keeps (docs/design.md): hashes and receipt ids, the decision; no names."""
    return {"format": RECORD_FORMAT, "version": 1, "id": ident, "destroyed": decided,
            "objects": list(certificate.get("objects", [])), "receipts": list(certificate.get("receipts", [])),
            **{k: certificate[k] for k in ("files", "bytes", "rule", "reason", "by", "copies_at_decision")
               if k in certificate}}




def _forget(catalog: Catalog, hashes: set[str], receipt_ids: set[str]) -> None:
    """The catalog's rows of the destroyed instances dropped (C-FIND, search and the patient page no longer show
    them); a DICOM patient left without any goes."""
    names = receipt_ids | {"spool:" + r for r in receipt_ids}
    with catalog.transaction():
        former: set[int] = set()
        gone: list[int] = []
        wanted = sorted(hashes)
        for at in range(0, len(wanted), 500):  # by the hash index, not a scan of every received instance
            chunk = wanted[at:at + 500]
            for row_id, receipt, patient in catalog.execute(
                    f"SELECT id, receipt, patient FROM dicom_instances WHERE hash IN ({', '.join('?' * len(chunk))})",
                    chunk):
                if receipt in names:
                    gone.append(int(row_id))
                    if patient is not None:
                        former.add(int(patient))
        for at in range(0, len(gone), 500):
            chunk = gone[at:at + 500]
            catalog.execute(f"DELETE FROM dicom_instances WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        dicom_patients.link(catalog, former=former)


def carry_out(config: Config, catalog: Catalog, here: Here, ident: str, problems: list[str]) -> None:
    decided = destructions.find(catalog, ident)
    assert decided is not None
    written = record(decided.certificate, ident, decided.decided)
    hashes, receipt_ids = set(written["objects"]), set(written["receipts"])
    _forget(catalog, hashes, receipt_ids)
    for name, store in here.stores.items():
        if isinstance(store, str):
            continue
        try:
            receipts.write_destroyed(store.backend, written)
            if _holds_any(store, hashes, receipt_ids):  # also a store not listed at the decision
                destructions.add_copy(catalog, here.copy(ident, name))
        except (RtvaultError, OSError) as error:  # cannot tell: pending, never taken for done
            problems.append(f"store {name}: the destruction {ident} could not be recorded or checked there: {error}")
            destructions.add_copy(catalog, here.copy(ident, name, f"could not be checked: {error}"))
    for copy in destructions.pending(catalog, STORE):
        if copy.archive == ident:
            _remove_from_store(config, catalog, here, copy, hashes, receipt_ids, problems)


def _holds_any(store: Store, hashes: set[str], receipt_ids: set[str]) -> bool:
    """Whether a store still holds a listed receipt naming a destroyed object, or a destroyed object no other
    receipt names (an object received anew since is not the destruction's any more)."""
    backend = store.backend
    for r in receipt_ids:
        if backend.exists(receipts.receipt_key(r)):
            try:
                if any(i.hash in hashes for i in receipts.load(backend, r).instances):
                    return True
            except StoreError:
                return True
    present = [h for h in hashes if backend.exists(data_key(h))]
    if not present:
        return False
    named, _damaged = receipts.referenced(backend)
    if not (left := {h for h in present if h not in named}):
        return False
    return bool(left - kept_by_backups(store))  # the same bytes in a backup are the backup's, kept


def _in_spool(store: Store, hashes: set[str]) -> list[str]:
    """The spools of the store holding one of the objects and not sealed yet (no receipt of their id)."""
    try:
        root, encrypted = directory_of(store.base)
    except StoreError:
        return []
    found = []
    for path in spool_files(root):
        if store.backend.exists(receipts.receipt_key(path.stem)):
            continue  # sealed; the file is being removed
        key = path.relative_to(root).as_posix()
        if any(str(r.meta.get("hash")) in hashes for r in Spool.records(path, key, encrypted)):
            found.append(path.stem)
    return found


def _seal_spools(config: Config, name: str, store: Store) -> str | None:
    """A spool left on the store while no node receives into it: sealed now (as the next receiver would);
    a spool a running node holds: why it is left (None when there is none)."""
    try:
        root, _encrypted = directory_of(store.base)
    except StoreError:
        return None
    if not spool_files(root):
        return None
    lease = read_lease(store.base, RECEIVER_LOCK)
    if lease is not None and lease[1] is None:
        return "held"  # the node runs: its spools are its own until it seals them
    receiver = Receiver(config, store_name=name)
    receiver.start()
    receiver.close()
    return None


def _remove_from_store(config: Config, catalog: Catalog, here: Here, copy: Copy, hashes: set[str],
                       receipt_ids: set[str], problems: list[str]) -> None:
    if (found := reachable(catalog, here, copy, "rtvault dicom delete --pending")) is None:
        return
    name, store = found
    try:
        _seal_spools(config, name, store)
        # the writer lock as prune takes it: no backup deduplicates against an object while it is deleted
        with WriterLock(store.base, "dicom delete", LEASE_S), \
                WriterLock(store.base, "dicom delete", LEASE_S, key=receipts.SEAL_LOCK, wait_s=SEAL_WAIT_S):
            if _in_spool(store, hashes):
                destructions.note(catalog, copy.archive, STORE, copy.place, IN_SPOOL)
                return
            removed, held, shared = purge(store, hashes, receipt_ids)
    except (RtvaultError, OSError) as error:
        destructions.note(catalog, copy.archive, STORE, copy.place, f"not removed: {error}")
        problems.append(f"store {name}: the received objects of {copy.archive} not removed: {error}")
        return
    if held:
        destructions.note(catalog, copy.archive, STORE, copy.place, f"not removed: {len(held)} objects still "
                          f"there after their deletion (first: {held[0]})")
        problems.append(f"store {name}: {len(held)} objects of {copy.archive} still there after their deletion")
        return
    note = "" if removed else "it did not hold the objects"
    if shared:
        note = (f"{len(shared)} object(s) kept: the same bytes are part of snapshots or archives, which their own "
                f"retention removes (first: {shared[0]})")
    destructions.removed(catalog, copy.archive, STORE, copy.place, now_iso(), note)


def purge(store: Store, hashes: set[str], receipt_ids: set[str]) -> tuple[int, list[str], list[str]]:
    """Under the store's writer lock and `locks/seal.json`: the listed receipts rewritten without the objects, then
    the objects no receipt, snapshot or archive names any more deleted and their bytes gone (packs rewritten);
    (receipt entries and objects removed, the objects still found after, the objects kept as a backup's). StoreError
    for a damaged receipt or manifest (nothing deleted then)."""
    backend = store.backend
    kept = kept_by_backups(store)
    removed = sum(receipts.strip(backend, r, hashes) for r in sorted(receipt_ids))
    backend.barrier()
    named, damaged = receipts.referenced(backend)
    if damaged:
        raise StoreError(f"{damaged[0]}: no object deleted (run `rtvault check` and repair first)")
    shared = sorted(h for h in (hashes - named) & kept if backend.exists(data_key(h)))
    doomed = [data_key(h) for h in sorted(hashes - named - kept) if backend.exists(data_key(h))]
    if isinstance(backend, PackedBackend):
        backend.purge(doomed)
    else:
        for key in doomed:
            backend.delete(key)
        backend.barrier()
    return removed + len(doomed), [k for k in doomed if backend.exists(k)], shared
