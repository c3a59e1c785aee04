"""Legal destruction on every copy (docs/design.md, "Legal destruction"): `rtvault archive delete` removes an
archive whose retention has ended from every configured store that holds it and from every mounted removable
disk, records what it could not remove yet (a store that did not answer, a disk in a drawer) as pending, and
writes a destruction certificate (JSON in the run journal, and PDF or HTML on request).

The order keeps one promise whatever kills the process: the catalog never says an archive is destroyed while a
copy of it is not listed there as pending.
1. the decision, with every copy it must remove (all pending), in the catalog (catalog/destructions.py);
2. its record `archives/destroyed/<id>.json` in every store that answers (what replication and a store whose
   copy is pending read: the archive is never copied back, and the next run removes what is left);
3. each copy removed and checked gone, then recorded removed with its time;
4. the certificate in the journal (a `destruction` record); a second record completes it once the last pending
   copy is removed (a later `archive delete --pending`, a `volume sync`/`verify` of the disk, a `replicate`).
A run killed anywhere is finished by running `rtvault archive delete ID` (or `--pending`) again.

A store's copy is listed by the store's id, not by the name this configuration gives it (sites sharing one
catalog may both call a store `primary`): a host removes only the copies on the stores it configures, and leaves
another site's pending, with their note, for that site to finish.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord
from rtvault.archive.keep import may_destroy
from rtvault.catalog import destructions
from rtvault.catalog import stores as stores_of_catalog
from rtvault.catalog.db import Catalog
from rtvault.catalog.destructions import STORE, VOLUME, Copy, Destruction
from rtvault.catalog.indexer import forget_versions
from rtvault.config import Config
from rtvault.configured import destruction_elsewhere, open_catalog_for, open_store, store_ids, store_labels
from rtvault.copies.volumes import destroy_pending
from rtvault.errors import InputError, PartialResult, RtvaultError, StoreError
from rtvault.jobs import printed
from rtvault.jobs.actions import os_user
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.journal import Journal
from rtvault.report import OK, Line, Refreshed, Verdict, err
from rtvault.store import Store
from rtvault.utc import now_iso

FORMAT = "rtvault-destruction-certificate"
VERSION = 1
RULE = ("French retention rule for medical records: Code de la santé publique, article R1112-7 (20 years after "
        "the last visit, at least until the 28th birthday, 10 years after a death within 10 years of it, suspended "
        "by a claim), as rtvault applies it (archive/keep.py)")
LANGUAGES = ("fr", "en")
_RECORDS = "journal_records"  # in the catalog's copy of a certificate only: the journal records written of it


@dataclass(frozen=True)
class Destroyed(Refreshed):
    """The destructions this run decided or carried on: 9 while a copy is still pending (named, with what to do)."""

    certificates: tuple[dict, ...]
    out: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)
    already: tuple[dict, ...] = field(default_factory=tuple)  # decisions found made before this run: archive, by...

    def to_json(self) -> dict[str, object]:
        pending = [{"archive": c["archive"], **p} for c in self.certificates for p in c["copies"]
                   if p["removed"] is None]
        return {"destroyed": list(self.certificates), "pending": pending, "certificate": self.out,
                "problems": list(self.problems), "already_decided": list(self.already)}

    def warnings(self) -> Iterable[str]:
        return [*self.problems, *super().warnings()]

    def lines(self) -> Iterable[Line]:
        for a in self.already:
            yield Line(f"archive {a['archive'][:12]}: already decided by {a['by']} at {a['decided']} (reason: "
                       f"{a['reason']}): carried on")
        for c in self.certificates:
            yield Line(f"archive {c['archive'][:12]} ({c['file']}): "
                       + ("destroyed on every copy" if c["complete"] else "destruction pending on some copies"))
            for p in c["copies"]:
                where = f"{p['kind']} {p['place']}"
                if p["removed"] is None:
                    yield err(f"  PENDING  {where}: {p.get('note') or 'not removed yet'}")
                else:
                    yield Line(f"  removed  {where} at {p['removed']}" + (f" ({p['note']})" if p.get("note") else ""))
        if self.out:
            yield Line(f"wrote the destruction certificate to {self.out}")
        if not self.certificates:
            yield Line("no destruction pending")

    def verdict(self) -> Verdict:
        waiting = [p for c in self.certificates for p in c["copies"] if p["removed"] is None]
        return Verdict.failed(PartialResult(self.still_pending(len(waiting)))) if waiting else OK

    @staticmethod
    def still_pending(count: int) -> str:
        """The sentence of exit 9: how many copies are left and what to do."""
        return (f"{count} cop{'y' if count == 1 else 'ies'} of destroyed archives still to remove (named above): "
                "plug each disk in and run `rtvault volume verify LABEL`, bring each store back and run `rtvault "
                "archive delete --pending` on the host that configures it")


def destroy(config: Config, archive_id: str, reason: str | None, today: date, *, out: Path | None = None,
            lang: str = "fr") -> Destroyed:
    """`rtvault archive delete ID --reason TEXT`: refused unless every patient of the archive is past its keep-until
    date (exit 4); an archive whose destruction was already decided is carried on (the reason is the first one)."""
    if out is not None:
        printed.check_out(out)
    stores = open_stores(config)
    problems: list[str] = []
    with open_catalog_for(config) as catalog:
        here = here_of(config, catalog, stores)
        _recover(catalog, stores)
        decided = _find_decided(catalog, archive_id)
        if decided is not None and destructions.is_received(decided):
            raise InputError(f"{decided} is a destruction of received DICOM objects: carry it on with `rtvault dicom "
                             "delete --pending`")
        if decided is None:
            if not (reason or "").strip():
                raise InputError("give --reason: why this archive is destroyed (it is written in the certificate "
                                 "with your user name)")
            try:
                decided, ours = _decide(catalog, here, archive_id, str(reason).strip(), today)
            except InputError:  # not found: another run at the same time may have decided and removed it already
                decided, ours = _find_decided(catalog, archive_id), False
                if decided is None:
                    raise
        else:
            ours = False
        already = () if ours else (decision(catalog, decided),)
        _carry_out(catalog, here, decided, problems)
    catalog_problem = refresh_quietly(config)
    with open_catalog_for(config) as catalog:
        certificate = certify(config, catalog, decided, problems)
    if out is not None:
        printed.write(out, document(certificate, lang, config.site.name))
    return Destroyed((certificate,), str(out) if out else None, tuple(problems), already, catalog=catalog_problem)


def decision(catalog: Catalog, archive_id: str) -> dict[str, str]:
    """A destruction decided before this run (by an earlier run, or another process at the same time)."""
    found = destructions.find(catalog, archive_id)
    assert found is not None
    by = found.certificate.get("by", {})
    return {"archive": archive_id, "by": f"{by.get('user', found.by)} on {by.get('host', '?')}",
            "decided": found.decided, "reason": found.reason}


def resume(config: Config) -> Destroyed:
    """`rtvault archive delete --pending`: every destruction with a copy still to remove, carried on where the
    store answers or the disk is mounted; the certificates that become complete get their second record."""
    stores = open_stores(config)
    problems: list[str] = []
    with open_catalog_for(config) as catalog:
        here = here_of(config, catalog, stores)
        _recover(catalog, stores)
        open_ones = [d for d in destructions.all_destructions(catalog) if not destructions.is_received(d.archive)
                     and (d.completed is None or d.pending or _held_anywhere(stores, d.archive))]
        for decided in open_ones:
            _carry_out(catalog, here, decided.archive, problems)
    catalog_problem = refresh_quietly(config) if open_ones else None
    with open_catalog_for(config) as catalog:
        certificates = tuple(certify(config, catalog, d.archive, problems) for d in open_ones)
    return Destroyed(certificates, None, tuple(problems), catalog=catalog_problem)


def finish_quietly(config: Config, *, found: bool = False) -> str | None:
    """After a replication or a verify: the destructions with a copy still on a store carried on (a store that
    was offline answers again), as `--pending` does; `found`: a store was seen holding one (its record says so,
    whatever the catalog knows). Never raises: returns a problem as a sentence."""
    try:
        with open_catalog_for(config) as catalog:
            waiting = found or any(c.kind == STORE and not destructions.is_received(c.archive)
                                   for c in destructions.pending(catalog))
        if not waiting:
            return None
        done = resume(config)
    except RtvaultError as error:
        return f"the pending destructions were not carried on ({error}); run `rtvault archive delete --pending`"
    return "; ".join(done.problems) or None


def complete_quietly(config: Config) -> str | None:
    """After a volume sync or verify, or a replication, removed a pending copy: the certificates that became
    complete get their second journal record. Never raises: returns a problem as a sentence."""
    try:
        with open_catalog_for(config) as catalog:
            for d in destructions.all_destructions(catalog):  # received objects' too (jobs/dicom_destruction.py)
                if d.completed is None and not d.pending:
                    certify(config, catalog, d.archive, [])
    except RtvaultError as error:
        return f"the destruction certificates were not completed ({error}); run `rtvault archive delete --pending`"
    return None


class Elsewhere(str):
    """Why a store's copy is destroyed by another host (configured.destruction_elsewhere), not here."""


def open_stores(config: Config) -> dict[str, Store | str]:
    """Every configured store, opened for writing, or why it could not be (a sentence)."""
    found: dict[str, Store | str] = {}
    for name in config.stores:
        if (elsewhere := destruction_elsewhere(config, name)) is not None:
            found[name] = Elsewhere(elsewhere)  # a protected copy: its own host destroys it (pending until then)
            continue
        try:
            found[name] = open_store(config, name, write=True)
        except (RtvaultError, OSError) as error:
            found[name] = str(error)
    return found


@dataclass(frozen=True)
class Here:
    """This host's stores for a destruction: each configured one opened (or why not, a sentence), its id where it
    can be known, and who lists the copies (`[site] name`, host)."""

    stores: dict[str, Store | str]
    ids: dict[str, str]  # configured name → store id
    site: str
    host: str

    def copy(self, archive_id: str, name: str, note: str = "") -> Copy:
        """A pending copy on configured store `name`: by its id, else by its name."""
        return Copy(archive_id, STORE, self.ids.get(name, name), None, note, self.site, self.host)

    def name_of(self, copy: Copy) -> str | None:
        """The configured name of the store a copy is on when this host configures it (by its id, or by its name
        for a copy this configuration listed by name); None for a store of another site or host."""
        found = next((name for name, store_id in self.ids.items() if store_id == copy.place), None)
        if found is None and copy.place in self.stores and copy.place not in self.ids \
                and (copy.site, copy.host) == (self.site, self.host):
            return copy.place
        return found


UNKNOWN_ID = ("; its store id is not known (never indexed in this catalog, its rtvault-store.json unreadable): "
               "listed by its name, only this site's `rtvault archive delete --pending` finishes it")


def here_of(config: Config, catalog: Catalog, stores: dict[str, Store | str]) -> Here:
    """The ids of the configured stores: an open store's own; for one that does not open, its rtvault-store.json
    if that can be read, else the id the catalog registered for this site and name. The copies this
    configuration listed by name whose id is now known are renamed to it."""
    ids: dict[str, str] = {}
    for name, store in stores.items():
        if isinstance(store, Store):
            ids[name] = str(store.info["id"])
            continue
        try:
            found = store_ids(config, [name]).get(name)
        except (RtvaultError, OSError):
            found = None
        if (found := found or stores_of_catalog.registered(catalog, name, config.site.name)) is not None:
            ids[name] = found
    here = Here(stores, ids, config.site.name, socket.gethostname())
    for name, store_id in ids.items():
        destructions.rename(catalog, name, store_id, site=here.site, host=here.host)
    return here


def _held_anywhere(stores: dict[str, Store | str], archive_id: str) -> bool:
    return any(isinstance(s, Store) and _holds(s, archive_id) for s in stores.values())


def _holds(store: Store, archive_id: str) -> bool:
    try:
        return records.holds(store, archive_id)
    except (RtvaultError, OSError):
        return False


def _find_decided(catalog: Catalog, wanted: str) -> str | None:
    found = [a for a in destructions.destroyed_ids(catalog) if a.startswith(wanted)]
    if len(found) > 1:
        raise InputError(f"{len(found)} destroyed archives match {wanted!r}: give more of the id")
    return found[0] if found else None


def _recover(catalog: Catalog, stores: dict[str, Store | str]) -> None:
    """A destruction a store records (`archives/destroyed/`) and the catalog does not (a catalog lost or rebuilt
    since, or a decision written by another host): taken back into the catalog, so that its copies are removed."""
    known = destructions.destroyed_ids(catalog)
    for store in (s for s in stores.values() if isinstance(s, Store)):
        try:
            ids = records.destroyed_ids(store)
        except (RtvaultError, OSError):
            continue
        for archive_id in ids:
            if archive_id in known:
                continue
            try:
                remembered = records.destruction(store, archive_id) or {}
            except StoreError:
                continue
            if remembered.get("format") != FORMAT:
                continue  # destroyed before certificates existed: nothing more to do than its record says
            certificate = {**{k: v for k, v in remembered.items() if k not in ("id", "destroyed")},
                           "archive": archive_id, "decided": str(remembered.get("destroyed"))}
            by = certificate.get("by", {})
            destructions.begin(catalog, archive_id, str(remembered.get("destroyed")), str(by.get("user", "")),
                               str(certificate.get("reason", "")), certificate, [])
            known.add(archive_id)


def _decide(catalog: Catalog, here: Here, wanted: str, reason: str, today: date) -> tuple[str, bool]:
    """Check the retention of every patient, list every copy, and record the decision (catalog, then stores): the
    archive's id, and whether this run decided it (False: another process did first, and its decision stands)."""
    record, source = _load_record(here.stores, wanted)
    keeps = []
    for patient in record.patients:
        keep = records.patient_keep(source, record, patient)
        allowed, why = may_destroy(keep, today)
        if not allowed:
            raise InputError(f"refusing to delete archive {record.id[:12]}: {patient.path} {why}")
        keeps.append(keep)
    copies, at_decision = [], []
    for name, store in here.stores.items():
        if isinstance(store, str):
            copies.append(here.copy(record.id, name, f"did not answer at deletion: {store}"
                                    + ("" if name in here.ids else UNKNOWN_ID)))
        elif _holds(store, record.id):
            copies.append(here.copy(record.id, name))
        else:
            continue
        at_decision.append({"kind": STORE, "place": name, "store_id": here.ids.get(name)})
    for (label,) in catalog.execute("SELECT volume FROM volume_archives WHERE archive = ? ORDER BY volume",
                                    (record.id,)):
        copies.append(Copy(record.id, VOLUME, label, None, "", here.site, here.host))
        at_decision.append({"kind": VOLUME, "place": label})
    when = now_iso()
    user = {"user": os_user(), "host": socket.gethostname()}
    certificate = {
        "format": FORMAT, "version": VERSION, "archive": record.id, "file": record.file,
        "files": sum(1 for m in record.members if m.kind == "file") or sum(p.files for p in record.patients),
        "bytes": record.size,
        "patients": [{"path": p.path, "tree": p.tree, "last_name": p.last_name, "first_name": p.first_name,
                      "mrn": p.mrn, "patient_id": p.patient_id, "birth_date": p.birth_date, "files": p.files,
                      "bytes": p.bytes, "keep_until": k.date.isoformat() if k.date else None, "rule": k.rule}
                     for p, k in zip(record.patients, keeps, strict=True)],
        "rule": RULE, "reason": reason, "by": user, "decided": when,
        "copies_at_decision": at_decision}
    return record.id, destructions.begin(catalog, record.id, when, user["user"], reason, certificate, copies)


def _load_record(stores: dict[str, Store | str], wanted: str) -> tuple[ArchiveRecord, Store]:
    """The archive's index from the first store that answers and holds it."""
    errors = []
    for store in (s for s in stores.values() if isinstance(s, Store)):
        try:
            return records.load(store, wanted), store
        except StoreError as error:
            errors.append(str(error))
    if not errors:
        raise StoreError("no configured store answers: the archive cannot be read, nothing was deleted")
    raise InputError(f"{errors[0]}; nothing was deleted")


def _tombstone(certificate: dict, archive_id: str, decided: str) -> dict:
    """The record every store keeps of the destruction (docs/design.md): what the versions were, and the decision."""
    return {"id": archive_id, "file": certificate.get("file", ""), "destroyed": decided,
            "patients": [{"path": p["path"], "tree": p["tree"]} for p in certificate.get("patients", [])
                         if p.get("tree")],
            **{k: certificate[k] for k in ("format", "version", "files", "bytes", "rule", "reason", "by",
                                            "copies_at_decision") if k in certificate},
            "patient_paths": [p["path"] for p in certificate.get("patients", [])]}


def _carry_out(catalog: Catalog, here: Here, archive_id: str, problems: list[str]) -> None:
    """Steps 2 and 3 for one archive: its record in every store that answers, then every pending copy on this
    host's stores removed (another site's are left pending, with their note)."""
    decided = destructions.find(catalog, archive_id)
    assert decided is not None
    tombstone = _tombstone(decided.certificate, archive_id, decided.decided)
    forget_versions(catalog, {(p["path"], p["tree"]) for p in tombstone["patients"]})  # never shown available
    for name, store in here.stores.items():
        if isinstance(store, str):
            continue
        try:
            records.write_destroyed(store, tombstone)
            if records.holds(store, archive_id):  # also a store not listed at decision time: never left silently
                destructions.add_copy(catalog, here.copy(archive_id, name))
        except (RtvaultError, OSError) as error:
            problems.append(f"store {name}: the record of the destruction of {archive_id[:12]} was not written: "
                            f"{error}")
    for copy in destructions.pending(catalog):
        if copy.archive != archive_id:
            continue
        if copy.kind == STORE:
            _remove_from_store(catalog, here, copy, problems)
        else:
            try:
                destroy_pending(catalog, copy.place)
            except (RtvaultError, OSError) as error:
                destructions.note(catalog, archive_id, VOLUME, copy.place, f"{error}; then run `rtvault volume "
                                  f"verify {copy.place}`, which removes it")


def reachable(catalog: Catalog, here: Here, copy: Copy, pending: str) -> tuple[str, Store] | None:
    """The configured name and the store of a store's copy this host can remove now; else None, the copy's note
    saying why and what to run (`pending`: the command that carries it on, e.g. `rtvault archive delete
    --pending`)."""
    name = here.name_of(copy)
    if name is None:  # another site's store (or one no longer configured here): never judged from this host
        if not copy.note:
            destructions.note(catalog, copy.archive, STORE, copy.place, f"a store this host does not configure: run "
                              f"`{pending}` on the host that does (or configure it here again)")
        return None
    store = here.stores[name]
    if isinstance(store, Elsewhere):
        destructions.note(catalog, copy.archive, STORE, copy.place, str(store))
        return None
    if isinstance(store, str):
        destructions.note(catalog, copy.archive, STORE, copy.place, f"does not answer ({store}): run `{pending}` "
                          "once it is back" + ("" if name in here.ids else UNKNOWN_ID))
        return None
    return name, store


def _remove_from_store(catalog: Catalog, here: Here, copy: Copy, problems: list[str]) -> None:
    if (found := reachable(catalog, here, copy, "rtvault archive delete --pending")) is None:
        return
    name, store = found
    try:
        held = records.remove(store, copy.archive)
    except (RtvaultError, OSError) as error:
        destructions.note(catalog, copy.archive, STORE, copy.place, f"not removed: {error}")
        problems.append(f"store {name}: archive {copy.archive[:12]} not removed: {error}")
        return
    destructions.removed(catalog, copy.archive, STORE, copy.place, now_iso(),
                         "" if held else "it did not hold the archive")


def certify(config: Config, catalog: Catalog, archive_id: str, problems: list[str]) -> dict:
    """The certificate as it stands; its journal record written when none was yet, and again (the second record)
    when it has just become complete. Under the destruction's lock in the catalog, so that two runs at once
    write each record once (a run killed between the journal and the catalog leaves it to be written again)."""
    with catalog.transaction():
        catalog.lock(f"destruction {archive_id}")
        decided = destructions.find(catalog, archive_id)
        assert decided is not None
        certificate = certificate_of(decided, store_labels(config, catalog), config.site.name)
        written = list(decided.certificate.get(_RECORDS, []))
        if not written or (certificate["complete"] and decided.completed is None):
            result = Journal(config).append({"kind": "destruction", "time": certificate["issued"],
                                             "stage": "complete" if written else "decided",
                                             "certificate": certificate}, index=False)  # not in the runs' index
            problems += result.problems
            written.append(result.id)
            stored = {**decided.certificate, _RECORDS: written}
            if certificate["complete"]:
                destructions.completed(catalog, archive_id, certificate["issued"], stored)
            else:
                destructions.update_certificate(catalog, archive_id, stored)
    certificate["journal_records"] = written
    return certificate


def certificate_of(decided: Destruction, labels: dict[str, str], site: str) -> dict:
    """The certificate of one destruction: what, where (each copy, removed when or pending; a store shown as
    `labels` names it, with its id), when, by whom, why."""
    base = {k: v for k, v in decided.certificate.items() if k != _RECORDS}
    copies = [c.to_json(labels, site) for c in decided.copies]
    complete = not decided.pending
    times = [c.removed for c in decided.copies if c.removed]
    return {**base, "copies": copies, "complete": complete,
            "completed": (decided.completed or max(times, default=decided.decided)) if complete else None,
            "issued": now_iso()}


_WORDS = {
    "fr": {"title": "Certificat de destruction", "page": "page", "what": "Ce qui a été détruit",
           "where": "Où : chaque copie", "why": "Règle et décision", "visa": "Visa",
           "audience": "Archive {archive} ({file}) : {files} fichiers, {bytes} octets.",
           "printed": "Émis le {issued} ; décision du {decided} par {user} sur {host}.",
           "keep": "À conserver : ce certificat prouve la destruction légale du dossier sur chacune de ses copies.",
           "complete": "Destruction achevée sur toutes les copies le {completed}.",
           "incomplete": "DESTRUCTION INACHEVÉE : des copies restent à détruire (marquées EN ATTENTE).",
           "patients_head": ["Patient", "N° dossier (MRN)", "Naissance", "Chemin", "Conserver jusqu'au", "Règle"],
           "copies_head": ["Copie", "Nom", "État", "Supprimée le", "Note"],
           "store": "dépôt", "volume": "disque amovible", "removed": "supprimée", "pending": "EN ATTENTE",
           "rule": "Règle : {rule}.", "reason": "Motif donné : {reason}.", "by": "Par : {user} ({host}).",
           "visa_head": ["Nom", "Fonction", "Date", "Signature"], "todo": "nom du site à compléter"},
    "en": {"title": "Destruction certificate", "page": "page", "what": "What was destroyed",
           "where": "Where: each copy", "why": "Rule and decision", "visa": "Sign-off",
           "audience": "Archive {archive} ({file}): {files} files, {bytes} bytes.",
           "printed": "Issued {issued}; decided {decided} by {user} on {host}.",
           "keep": "Keep this: it proves the legal destruction of the record on each of its copies.",
           "complete": "Destroyed on every copy by {completed}.",
           "incomplete": "DESTRUCTION NOT FINISHED: some copies are still to destroy (marked PENDING).",
           "patients_head": ["Patient", "MRN", "Born", "Path", "Keep until", "Rule"],
           "copies_head": ["Copy", "Name", "State", "Removed at", "Note"],
           "store": "store", "volume": "removable disk", "removed": "removed", "pending": "PENDING",
           "rule": "Rule: {rule}.", "reason": "Reason given: {reason}.", "by": "By: {user} ({host}).",
           "visa_head": ["Name", "Role", "Date", "Signature"], "todo": "site name to complete"},
}


def document(certificate: dict, lang: str, site: str) -> str:
    """The certificate as a printed page (templates/printed.html), in French or English."""
    w = _WORDS[lang]
    by = certificate.get("by", {})
    patients = printed.Section(w["what"], head=w["patients_head"], rows=[
        [printed.Cell(f"{p['last_name']} {p['first_name']}".strip() or "-"), printed.Cell(p.get("mrn") or "-"),
         printed.Cell(p.get("birth_date") or "-"), printed.Cell(p["path"]), printed.Cell(p.get("keep_until") or "-"),
         printed.Cell(p.get("rule", ""))] for p in certificate.get("patients", [])])
    copies = printed.Section(w["where"], head=w["copies_head"], rows=[
        [printed.Cell(w[c["kind"]]), printed.Cell(c["place"]),
         printed.Cell(w["pending"] if c["removed"] is None else w["removed"], mark=c["removed"] is None),
         printed.Cell(c["removed"] or "-"), printed.Cell(c.get("note", ""))] for c in certificate["copies"]])
    return printed.render(
        lang=lang, title=w["title"], site=site, todo=w["todo"], page=w["page"],
        audience=w["audience"].format(archive=certificate["archive"], file=certificate.get("file", ""),
                                      files=certificate.get("files", 0), bytes=certificate.get("bytes", 0)),
        printed=w["printed"].format(issued=certificate["issued"], decided=certificate.get("decided", ""),
                                    user=by.get("user", ""), host=by.get("host", "")),
        reprint=f"rtvault archive delete {certificate['archive'][:12]} --certificate certificat.pdf",
        keep=w["keep"], sections=[patients, *closing(certificate, w, copies)])


def closing(certificate: dict, w: dict[str, Any], copies: printed.Section) -> list[printed.Section]:
    """What every destruction certificate ends with: where (`copies`, given the sentence saying whether the
    destruction is complete), the rule and the decision, and the sign-off table; `w` the document's words."""
    by = certificate.get("by", {})
    copies.paragraphs.append(printed.Cell(w["complete"].format(completed=certificate["completed"])
                                          if certificate["complete"] else w["incomplete"],
                                          mark=not certificate["complete"]))
    why = printed.Section(w["why"], [printed.Cell(w["rule"].format(rule=certificate.get("rule", ""))),
                                     printed.Cell(w["reason"].format(reason=certificate.get("reason", ""))),
                                     printed.Cell(w["by"].format(user=by.get("user", ""), host=by.get("host", "")))])
    visa = printed.Section(w["visa"], head=w["visa_head"], rows=[[printed.Cell("", todo=True)] * 4])
    return [copies, why, visa]


