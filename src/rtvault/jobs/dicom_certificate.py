"""The printed certificate of a legal destruction of received objects (`rtvault dicom delete --certificate`,
docs/design.md "Legal destruction of received objects"), French or English, through templates/printed.html; it
ends as an archive's does (jobs/destruction.py `closing`)."""

from __future__ import annotations

from rtvault.jobs import printed
from rtvault.jobs.destruction import (
    closing,
)

_WORDS = {
    "fr": {"title": "Certificat de destruction d'objets DICOM reçus", "page": "page", "what": "Ce qui a été détruit",
           "where": "Où : chaque dépôt", "why": "Règle et décision", "visa": "Visa",
           "audience": "Patient {name}, n° dossier (MRN) {mrn}{issuer}, né(e) le {birth} : {instances} instances, "
                       "{files} objets, {bytes} octets.",
           "printed": "Émis le {issued} ; décision du {decided} par {user} sur {host}.",
           "keep": "À conserver : ce certificat prouve la destruction légale des objets reçus sur chacune de leurs "
                   "copies.",
           "complete": "Destruction achevée sur tous les dépôts le {completed}.",
           "incomplete": "DESTRUCTION INACHEVÉE : des dépôts restent à nettoyer (marqués EN ATTENTE).",
           "studies_head": ["Étude", "Date", "Série", "Modalité", "Instances", "Octets"],
           "copies_head": ["Dépôt", "État", "Supprimé le", "Note"], "removed": "supprimé", "pending": "EN ATTENTE",
           "keep_until": "Conserver jusqu'au : {keep} ({rule}).",
           "rule": "Règle : {rule}.", "reason": "Motif donné : {reason}.", "by": "Par : {user} ({host}).",
           "visa_head": ["Nom", "Fonction", "Date", "Signature"], "todo": "nom du site à compléter"},
    "en": {"title": "Destruction certificate of received DICOM objects", "page": "page", "what": "What was destroyed",
           "where": "Where: each store", "why": "Rule and decision", "visa": "Sign-off",
           "audience": "Patient {name}, MRN {mrn}{issuer}, born {birth}: {instances} instances, {files} objects, "
                       "{bytes} bytes.",
           "printed": "Issued {issued}; decided {decided} by {user} on {host}.",
           "keep": "Keep this: it proves the legal destruction of the received objects on each of their copies.",
           "complete": "Destroyed on every store by {completed}.",
           "incomplete": "DESTRUCTION NOT FINISHED: some stores are still to clean (marked PENDING).",
           "studies_head": ["Study", "Date", "Series", "Modality", "Instances", "Bytes"],
           "copies_head": ["Store", "State", "Removed at", "Note"], "removed": "removed", "pending": "PENDING",
           "keep_until": "Keep until: {keep} ({rule}).",
           "rule": "Rule: {rule}.", "reason": "Reason given: {reason}.", "by": "By: {user} ({host}).",
           "visa_head": ["Name", "Role", "Date", "Signature"], "todo": "site name to complete"},
}


def document(certificate: dict, lang: str, site: str) -> str:
    """The certificate as a printed page (templates/printed.html), in French or English."""
    w = _WORDS[lang]
    by = certificate.get("by", {})
    p = certificate.get("patient", {})
    cell = printed.Cell
    rows = [[cell(s.get("description") or s["study_uid"]), cell(s.get("study_date") or "-"),
             cell(x.get("description") or x["series_uid"]), cell(x.get("modality") or "-"),
             cell(str(x.get("instances", 0))), cell(str(x.get("bytes", 0)))]
            for s in certificate.get("studies", []) for x in s.get("series", [])]
    what = printed.Section(w["what"], head=w["studies_head"], rows=rows)
    what.paragraphs.append(cell(w["keep_until"].format(keep=p.get("keep_until") or "-", rule=p.get("rule", ""))))
    copies = printed.Section(w["where"], head=w["copies_head"], rows=[
        [cell(c["place"]), cell(w["pending"] if c["removed"] is None else w["removed"], mark=c["removed"] is None),
         cell(c["removed"] or "-"), cell(c.get("note", ""))] for c in certificate["copies"]])
    name = f"{p.get('last_name', '')} {p.get('first_name', '')}".strip() or "-"
    return printed.render(
        lang=lang, title=w["title"], site=site, todo=w["todo"], page=w["page"],
        audience=w["audience"].format(name=name, mrn=p.get("mrn") or "-",
                                      issuer=f" ({p['issuer']})" if p.get("issuer") else "",
                                      birth=p.get("birth_date") or "-", instances=certificate.get("instances", 0),
                                      files=certificate.get("files", 0), bytes=certificate.get("bytes", 0)),
        printed=w["printed"].format(issued=certificate["issued"], decided=certificate.get("decided", ""),
                                    user=by.get("user", ""), host=by.get("host", "")),
        reprint=f"rtvault dicom delete --mrn {p.get('mrn') or 'ID'} --certificate certificat.pdf",
        keep=w["keep"], sections=[what, *closing(certificate, w, copies)])
