"""Legal destruction of a DICOM patient's received objects (docs/design.md, "The DICOM node", "Legal destruction
of received objects"): `rtvault dicom delete` removes every object the node received (or `dicom import` stored)
for one patient from every configured store that holds it, once the patient's retention has ended, and certifies
it, with the machinery of `rtvault archive delete` (jobs/destruction.py): the same catalog tables (the
destruction's id is `dicom-<hex>`), pending copies, journal records, certificate and `--pending`.

The order keeps the archive's promise, whatever kills the process: the catalog never says the objects are
destroyed while a store still holds them and is not listed as pending.
1. the decision and every store it must clean, all pending, in the catalog in one transaction; the catalog's
   rows of the instances dropped (never indexed again: catalog/dicom.py `add_rows`);
2. the store record `dicom/destroyed/<id>.json` (objects' hashes and receipt ids, no names) in every store that
   answers;
3. per store, under `locks/seal.json` (no seal writes meanwhile; a spool that holds one of the objects is sealed
   first, or, while the node holds it, left pending): each receipt the record lists rewritten without the
   objects (removed when empty), then the objects no receipt names any more deleted, their packs rewritten
   (`PackedBackend.purge`), and checked gone; the store's copy recorded removed;
4. the certificate in the journal (a `destruction` record), completed by a second one when the last store is done.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rtvault.archive import records
from rtvault.archive.keep import Override, keep_until, may_destroy
from rtvault.catalog import destructions, dicom_patients
from rtvault.catalog import fold as folding
from rtvault.catalog.db import Catalog
from rtvault.catalog.destructions import RECEIVED, STORE
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.errors import InputError, RtvaultError
from rtvault.jobs import printed
from rtvault.jobs.actions import os_user
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.destruction import (
    FORMAT,
    LANGUAGES,
    RULE,
    UNKNOWN_ID,
    VERSION,
    Destroyed,
    Here,
    certify,
    decision,
    here_of,
    open_stores,
)
from rtvault.jobs.dicom_certificate import document
from rtvault.jobs.dicom_purge import RECORD_FORMAT, carry_out
from rtvault.report import Line, err
from rtvault.store import Store, receipts
from rtvault.store.objects import data_key
from rtvault.store.spool import directory_of, spool_files
from rtvault.utc import now_iso

__all__ = ["LANGUAGES", "RECORD_FORMAT", "DicomDestroyed", "destroy", "document", "finish_quietly", "resume"]



@dataclass(frozen=True)
class DicomDestroyed(Destroyed):
    """`rtvault dicom delete`: as `archive delete`'s report, its lines naming the patient."""

    def lines(self) -> Iterable[Line]:
        for a in self.already:
            yield Line(f"{a['archive']}: already decided by {a['by']} at {a['decided']} (reason: {a['reason']}): "
                       "carried on")
        for c in self.certificates:
            p = c.get("patient", {})
            yield Line(f"{c['archive']} ({p.get('last_name', '')} {p.get('first_name', '')}, MRN "
                       f"{p.get('mrn', '')}: {c.get('instances', 0)} instances, {c.get('bytes', 0)} bytes): "
                       + ("destroyed on every store" if c["complete"] else "destruction pending on some stores"))
            for copy in c["copies"]:
                if copy["removed"] is None:
                    yield err(f"  PENDING  store {copy['place']}: {copy.get('note') or 'not removed yet'}")
                else:
                    yield Line(f"  removed  store {copy['place']} at {copy['removed']}"
                               + (f" ({copy['note']})" if copy.get("note") else ""))
        if self.out:
            yield Line(f"wrote the destruction certificate to {self.out}")
        if not self.certificates:
            yield Line("no destruction of received objects pending")

    @staticmethod
    def still_pending(count: int) -> str:
        return (f"{count} store{'' if count == 1 else 's'} still to clean of destroyed received objects (named "
                "above): bring each store back (or let the node seal its spool) and run `rtvault dicom delete "
                "--pending` on the host that configures it")


# --- the decision ---------------------------------------------------------------------------------------------

def destroy(config: Config, reason: str | None, today: date, *, mrn: str | None = None, issuer: str | None = None,
            patient: str | None = None, out: Path | None = None, lang: str = "fr") -> DicomDestroyed:
    """`rtvault dicom delete (--mrn ID [--issuer I] | --patient KEY) --reason TEXT`: refused (exit 4, nothing
    written) unless the patient is strictly past its keep-until date; a destruction already decided for the
    patient and not finished is carried on."""
    if out is not None:
        printed.check_out(out)
    stores = open_stores(config)
    problems: list[str] = []
    with open_catalog_for(config) as catalog:
        here = here_of(config, catalog, stores)
        _recover(catalog, stores)
        pid, rows = _patient(catalog, mrn, issuer, patient)
        if not rows:
            open_ones = _open_for(catalog, mrn, issuer, patient)
            if not open_ones:
                raise InputError(f"no received DICOM object for {_who(mrn, issuer, patient)} in the catalog (run "
                                 "`rtvault catalog sync` if the node received some lately); nothing was deleted")
            ident, ours = open_ones[-1], False
        else:
            if not (reason or "").strip():
                raise InputError("give --reason: why these received objects are destroyed (it is written in the "
                                 "certificate with your user name)")
            ident, ours = _decide(catalog, here, pid, rows, str(reason).strip(), today)
        already = () if ours else (decision(catalog, ident),)
        carry_out(config, catalog, here, ident, problems)
    catalog_problem = refresh_quietly(config)
    with open_catalog_for(config) as catalog:
        certificate = certify(config, catalog, ident, problems)
    if out is not None:
        printed.write(out, document(certificate, lang, config.site.name))
    return DicomDestroyed((certificate,), str(out) if out else None, tuple(problems), already,
                          catalog=catalog_problem)


def resume(config: Config) -> DicomDestroyed:
    """`rtvault dicom delete --pending`: every destruction of received objects with a store still to clean."""
    stores = open_stores(config)
    problems: list[str] = []
    with open_catalog_for(config) as catalog:
        here = here_of(config, catalog, stores)
        _recover(catalog, stores)
        open_ones = [d for d in destructions.all_destructions(catalog) if destructions.is_received(d.archive)
                     and (d.completed is None or d.pending)]
        for decided in open_ones:
            carry_out(config, catalog, here, decided.archive, problems)
    catalog_problem = refresh_quietly(config) if open_ones else None
    with open_catalog_for(config) as catalog:
        certificates = tuple(certify(config, catalog, d.archive, problems) for d in open_ones)
    return DicomDestroyed(certificates, None, tuple(problems), catalog=catalog_problem)


def finish_quietly(config: Config) -> str | None:
    """After a replication or a verify: the destructions of received objects still pending carried on (a store
    back online, or one a replication or a verify found holding a destroyed receipt). Never raises."""
    try:
        with open_catalog_for(config) as catalog:
            waiting = any(destructions.is_received(c.archive) for c in destructions.pending(catalog))
        stores_say = _any_store_holds(config) if not waiting else False
        if not waiting and not stores_say:
            return None
        done = resume(config)
    except RtvaultError as error:
        return f"the pending destructions of received objects were not carried on ({error}); run `rtvault dicom " \
               "delete --pending`"
    return "; ".join(done.problems) or None


def _any_store_holds(config: Config) -> bool:
    """Whether a configured store holds a destruction record the catalog does not know (a catalog lost)."""
    try:
        with open_catalog_for(config) as catalog:
            known = {d for d in destructions.destroyed_ids(catalog) if destructions.is_received(d)}
        for store in (s for s in open_stores(config).values() if isinstance(s, Store)):
            if any(str(r.get("id")) not in known for r in receipts.destroyed(store.backend)):
                return True
    except (RtvaultError, OSError):
        return False
    return False


def _who(mrn: str | None, issuer: str | None, patient: str | None) -> str:
    if patient:
        return f"patient {patient}"
    return f"MRN {mrn}" + (f" (issuer {issuer})" if issuer else "")


_ROW = ("id", "store", "receipt", "hash", "size", "patient_id", "patient_name", "issuer", "birth_date",
        "study_uid", "study_date", "study_description", "series_uid", "series_number", "series_description",
        "modality", "sop_instance", "received", "site")


def _patient(catalog: Catalog, mrn: str | None, issuer: str | None, key: str | None) -> tuple[int | None, list]:
    """The catalog patient named and the rows of its received instances (every store's)."""
    if key:
        found = catalog.one("SELECT id FROM patients WHERE key = ?", (key,))
        if found is None:
            raise InputError(f"no patient with key {key} in the catalog (`rtvault search --mrn ID --json` gives a "
                             "patient's key); nothing was deleted")
        pid = int(found[0])
    else:
        where, params = "patient_fold = ?", [folding.compact(str(mrn))]
        if issuer is not None:
            where, params = where + " AND issuer = ?", [*params, issuer]
        pids = sorted({int(r[0]) for r in catalog.execute(
            f"SELECT DISTINCT patient FROM dicom_instances WHERE {where} AND patient IS NOT NULL", params)})
        if len(pids) > 1:
            issuers = sorted({str(r[0]) for r in catalog.execute(
                f"SELECT DISTINCT issuer FROM dicom_instances WHERE {where}", params)})
            raise InputError(f"MRN {mrn} is {len(pids)} patients (issuers: {', '.join(i or '(none)' for i in issuers)}"
                             "): give --issuer, or --patient KEY; nothing was deleted")
        if not pids:
            return None, []
        pid = pids[0]
    rows = [dict(zip(_ROW, r, strict=True)) for r in catalog.execute(
        f"SELECT {', '.join(_ROW)} FROM dicom_instances WHERE patient = ? ORDER BY study_uid, series_uid, id",
        (pid,))]
    return pid, rows


def _open_for(catalog: Catalog, mrn: str | None, issuer: str | None, key: str | None) -> list[str]:
    """The destructions of received objects of this patient (oldest first; one finished too: its certificate is
    printed again)."""
    found = []
    for d in destructions.all_destructions(catalog):
        if not destructions.is_received(d.archive):
            continue
        p = d.certificate.get("patient", {})
        if (key and p.get("key") == key) or (mrn and folding.compact(str(p.get("mrn", ""))) == folding.compact(mrn)
                                              and (issuer is None or p.get("issuer", "") == issuer)):
            found.append(d.archive)
    return found


def _day(value: object) -> date | None:
    text = dicom_patients.iso_date(str(value or "")) if value and "-" not in str(value)[:5] else str(value or "")
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        return None


def _keep(catalog: Catalog, stores: dict[str, Store | str], pid: int, rows: list[dict]):
    """The patient's keep-until (archive/keep.py): last visit = the latest study date and reception of its
    objects, and the linked Pinnacle patient's latest version; birth date from the objects (or that patient);
    the overrides recorded on the archives holding that patient."""
    visits = [d for r in rows for d in (_day(r["study_date"]), _day(r["received"])) if d is not None]
    births = [d for r in rows if (d := _day(r["birth_date"])) is not None]
    patient = catalog.one("SELECT path, birth_date, status FROM patients WHERE id = ?", (pid,))
    overrides: list[Override] = []
    if patient is not None and patient[0]:  # a Pinnacle patient (a DICOM patient's path is '')
        path = str(patient[0])
        births = births or ([d] if (d := _day(patient[1])) else [])
        visits += [d for (m,) in catalog.execute("SELECT last_modified FROM versions WHERE patient = ?", (pid,))
                   if (d := _day(m)) is not None]
        archives = {str(r[0]) for r in catalog.execute(
            "SELECT DISTINCT ref FROM locations WHERE patient = ? AND kind = 'archive'", (pid,))}
        for archive_id in sorted(archives):
            for store in (s for s in stores.values() if isinstance(s, Store)):
                try:
                    if not records.exists(store, archive_id):
                        continue
                    overrides += [o for who, o in records.overrides(store, archive_id) if who in (None, path)]
                except (RtvaultError, OSError, ValueError, KeyError):
                    continue
                break
    return keep_until(max(visits, default=None), min(births, default=None), overrides)


def _decide(catalog: Catalog, here: Here, pid: int | None, rows: list[dict], reason: str,
            today: date) -> tuple[str, bool]:
    assert pid is not None
    keep = _keep(catalog, here.stores, pid, rows)
    allowed, why = may_destroy(keep, today)
    first = rows[0]
    who = f"{first['patient_name'] or '?'} (MRN {first['patient_id']})"
    if not allowed:
        raise InputError(f"refusing to delete the received objects of {who}: {why}; nothing was deleted")
    hashes = sorted({r["hash"] for r in rows})
    receipt_ids = sorted({r["receipt"].removeprefix("spool:") for r in rows})
    ident = RECEIVED + hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:24]
    copies, at_decision = [], []
    for name, store in here.stores.items():
        if isinstance(store, str):
            copies.append(here.copy(ident, name, f"did not answer at deletion: {store}"
                                    + ("" if name in here.ids else UNKNOWN_ID)))
        elif _holds(store, hashes, receipt_ids):
            copies.append(here.copy(ident, name))
        else:
            continue
        at_decision.append({"kind": STORE, "place": name, "store_id": here.ids.get(name)})
    patient = catalog.one("SELECT key, last_name, first_name, mrn, birth_date FROM patients WHERE id = ?", (pid,))
    last, first_name, _middle = dicom_patients.person_name(str(first["patient_name"] or ""))
    studies: dict[str, dict] = {}
    sizes = {r["hash"]: int(r["size"] or 0) for r in rows}
    for r in rows:
        study = studies.setdefault(r["study_uid"], {"study_uid": r["study_uid"], "study_date": r["study_date"],
                                                    "description": r["study_description"], "series": {}})
        series = study["series"].setdefault(r["series_uid"], {"series_uid": r["series_uid"],
                                                              "modality": r["modality"],
                                                              "description": r["series_description"],
                                                              "sop": set(), "hashes": set()})
        series["sop"].add(r["sop_instance"])
        series["hashes"].add(r["hash"])
    study_list = [{**{k: v for k, v in s.items() if k != "series"},
                   "series": [{"series_uid": x["series_uid"], "modality": x["modality"],
                               "description": x["description"], "instances": len(x["sop"]),
                               "objects": len(x["hashes"]), "bytes": sum(sizes[h] for h in x["hashes"])}
                              for x in s["series"].values()]} for s in studies.values()]
    when = now_iso()
    user = {"user": os_user(), "host": socket.gethostname()}
    certificate = {
        "format": FORMAT, "version": VERSION, "kind": "dicom", "archive": ident,
        "file": f"received DICOM objects of MRN {first['patient_id']}",
        "patient": {"key": patient[0] if patient else "", "last_name": (patient[1] if patient else "") or last,
                    "first_name": (patient[2] if patient else "") or first_name, "mrn": first["patient_id"],
                    "issuer": first["issuer"] or "", "birth_date": patient[4] if patient else None,
                    "keep_until": keep.date.isoformat() if keep.date else None, "rule": keep.rule},
        "studies": study_list, "instances": len({r["sop_instance"] for r in rows}), "files": len(hashes),
        "bytes": sum(sizes.values()), "objects": hashes, "receipts": receipt_ids,
        "rule": RULE, "reason": reason, "by": user, "decided": when, "copies_at_decision": at_decision}
    return ident, destructions.begin(catalog, ident, when, user["user"], reason, certificate, copies)


def _holds(store: Store, hashes: list[str], receipt_ids: list[str]) -> bool:
    """Whether a store holds a receipt, an object or a spool of the destruction (a spool: any, looked at later)."""
    try:
        backend = store.backend
        if any(backend.exists(receipts.receipt_key(r)) for r in receipt_ids):
            return True
        if any(backend.exists(data_key(h)) for h in hashes):
            return True
        root, _encrypted = directory_of(store.base)
        return bool(spool_files(root))
    except (RtvaultError, OSError):
        return True  # cannot tell: listed pending, so that it is looked at again, never left out


def _recover(catalog: Catalog, stores: dict[str, Store | str]) -> None:
    """A destruction a store records and the catalog does not (a catalog lost or rebuilt): taken back."""
    known = destructions.destroyed_ids(catalog)
    for store in (s for s in stores.values() if isinstance(s, Store)):
        try:
            found = receipts.destroyed(store.backend)
        except (RtvaultError, OSError):
            continue
        for record in found:
            ident = str(record.get("id", ""))
            if record.get("format") != RECORD_FORMAT or not destructions.is_received(ident) or ident in known:
                continue
            certificate = {"format": FORMAT, "version": VERSION, "kind": "dicom", "archive": ident,
                           "file": "received DICOM objects", "patient": {},
                           **{k: v for k, v in record.items() if k not in ("id", "destroyed", "format", "version")},
                           "decided": str(record.get("destroyed"))}
            by = certificate.get("by", {})
            destructions.begin(catalog, ident, str(record.get("destroyed")), str(by.get("user", "")),
                               str(certificate.get("reason", "")), certificate, [])
            known.add(ident)
