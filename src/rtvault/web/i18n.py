"""Every string of the web interface, one dictionary per language: French by default, English available.

The language is `?lang=` (then remembered in a cookie), else the cookie, else the browser's Accept-Language,
else French. The search form's labels come from `Criteria.labels()`, which carries both languages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from rtvault.web import i18n_dashboard, i18n_dicom, i18n_reconcile, i18n_restore_list, i18n_viewer

LANGUAGES = ("fr", "en")
DEFAULT = "fr"

FR: dict[str, str] = {
    "skip": "Aller au contenu",
    "nav_search": "Recherche",
    "nav_archives": "Archives",
    "nav_audit": "Journal d'audit",
    "signed_in_as": "Connecté : {name} ({role})",
    "logout": "Se déconnecter",
    "role_viewer": "consultation",
    "role_operator": "opérateur",
    "role_admin": "administrateur",
    "login_title": "Connexion",
    "login_intro": "Recherche des patients sauvegardés et archivés. Accès réservé au personnel autorisé ; "
                   "chaque consultation est tracée.",
    "username": "Identifiant",
    "password": "Mot de passe",
    "login_button": "Se connecter",
    "login_failed": "Identifiant ou mot de passe incorrect.",
    "login_expired": "Le formulaire a expiré : veuillez vous reconnecter.",
    "too_many": "Trop de tentatives de connexion depuis ce poste. Réessayez dans un quart d'heure.",
    "search_title": "Recherche de patients",
    "search_button": "Rechercher",
    "more_criteria": "Plus de critères",
    "clear": "Effacer",
    "any": "(tous)",
    "results": "{total} patient(s) trouvé(s)",
    "results_more": "plus de {total} patients trouvés : précisez la recherche",
    "no_result": "Aucun patient ne correspond à ces critères.",
    "enter_criteria": "Saisissez au moins un critère (le nom suffit, sans accents si vous voulez).",
    "page_of": "Page {page}",
    "previous": "Page précédente",
    "next": "Page suivante",
    "col_name": "Patient",
    "col_mrn": "IPP",
    "col_birth": "Naissance",
    "col_status": "Statut",
    "col_site": "Site / source",
    "col_locations": "Où le trouver",
    "col_physician": "Médecin",
    "status_active": "actif",
    "status_archived": "archivé",
    "status_deleted": "supprimé",
    "snapshots_in": "{count} sauvegarde(s) sur {store} (dernière le {last})",
    "archive_in": "archive {file} sur {store}",
    "damaged": "endommagée",
    "gender_male": "homme",
    "gender_female": "femme",
    "gender_other": "autre",
    "patient_title": "Dossier patient",
    "identity": "Identité",
    "path": "Chemin Pinnacle",
    "patient_site": "Site",
    "patient_source": "Source",
    "no_site": "aucun site",
    "patient_id": "PatientID",
    "gender": "Sexe",
    "diagnosis": "Diagnostic",
    "comment": "Commentaire",
    "last_modified": "Dernière modification",
    "archived_at": "Archivé le",
    "keep_until": "À conserver jusqu'au",
    "copies": "Copies de la version la plus récente",
    "copies_value": "{count} support(s) de stockage",
    "plans": "Plans",
    "image_sets": "Séries d'images",
    "machines": "Appareils de traitement",
    "none": "aucun",
    "versions": "Versions",
    "version": "Version",
    "files": "Fichiers",
    "size": "Taille",
    "locations": "Emplacements",
    "complete": "complète",
    "incomplete": "incomplète",
    "kind_snapshot": "sauvegarde",
    "kind_archive": "archive",
    "store": "Stockage",
    "date": "Date",
    "actions": "Actions",
    "download": "Télécharger (tar Pinnacle)",
    "restore": "Restaurer dans Pinnacle",
    "restore_help": "La restauration écrit la version dans un nouveau dossier du répertoire d'import Pinnacle.",
    "read_from": "Lire depuis",
    "location_best": "le meilleur emplacement (sauvegarde avant archive)",
    "restored_title": "Restauration terminée",
    "restored_into": "Version {version} restaurée dans {directory} depuis {source} : {files} fichier(s), {size}.",
    "back_to_patient": "Retour au dossier du patient",
    "archives_title": "Archives",
    "damaged_only": "Seulement les archives endommagées",
    "filter": "Filtrer",
    "archive_file": "Fichier",
    "volume": "Volume",
    "patients_count": "Patients",
    "state": "État",
    "intact": "intacte",
    "no_archive": "Aucune archive.",
    "audit_title": "Journal d'audit",
    "audit_user": "Utilisateur",
    "audit_action": "Action",
    "audit_patient": "Patient (clé)",
    "audit_since": "Depuis le",
    "audit_until": "Jusqu'au",
    "audit_time": "Date",
    "audit_address": "Adresse",
    "audit_detail": "Détail",
    "audit_result": "Résultat",
    "audit_csv": "Exporter en CSV",
    "audit_count": "{total} entrée(s)",
    "error_detail": "Détail technique :",
    "invalid_field": "{label} : valeur non comprise. Attendu : {expected}.",
    "back_home": "Retour à la recherche",
}

EN: dict[str, str] = {
    "skip": "Skip to content",
    "nav_search": "Search",
    "nav_archives": "Archives",
    "nav_audit": "Audit trail",
    "signed_in_as": "Signed in: {name} ({role})",
    "logout": "Sign out",
    "role_viewer": "viewer",
    "role_operator": "operator",
    "role_admin": "administrator",
    "login_title": "Sign in",
    "login_intro": "Search of backed-up and archived patients. Authorised staff only; every access is recorded.",
    "username": "User name",
    "password": "Password",
    "login_button": "Sign in",
    "login_failed": "Wrong user name or password.",
    "login_expired": "The form expired: please sign in again.",
    "too_many": "Too many sign-in attempts from this workstation. Try again in a quarter of an hour.",
    "search_title": "Patient search",
    "search_button": "Search",
    "more_criteria": "More criteria",
    "clear": "Clear",
    "any": "(any)",
    "results": "{total} patient(s) found",
    "results_more": "more than {total} patients found: narrow the search",
    "no_result": "No patient matches these criteria.",
    "enter_criteria": "Enter at least one criterion (the name is enough, accents optional).",
    "page_of": "Page {page}",
    "previous": "Previous page",
    "next": "Next page",
    "col_name": "Patient",
    "col_mrn": "MRN",
    "col_birth": "Born",
    "col_status": "Status",
    "col_site": "Site / source",
    "col_locations": "Where it is",
    "col_physician": "Physician",
    "status_active": "active",
    "status_archived": "archived",
    "status_deleted": "deleted",
    "snapshots_in": "{count} backup(s) on {store} (last {last})",
    "archive_in": "archive {file} on {store}",
    "damaged": "damaged",
    "gender_male": "male",
    "gender_female": "female",
    "gender_other": "other",
    "patient_title": "Patient record",
    "identity": "Identity",
    "path": "Pinnacle path",
    "patient_site": "Site",
    "patient_source": "Source",
    "no_site": "no site",
    "patient_id": "PatientID",
    "gender": "Gender",
    "diagnosis": "Diagnosis",
    "comment": "Comment",
    "last_modified": "Last modified",
    "archived_at": "Archived on",
    "keep_until": "Keep until",
    "copies": "Copies of the newest version",
    "copies_value": "{count} store(s)",
    "plans": "Plans",
    "image_sets": "Image sets",
    "machines": "Machines",
    "none": "none",
    "versions": "Versions",
    "version": "Version",
    "files": "Files",
    "size": "Size",
    "locations": "Locations",
    "complete": "complete",
    "incomplete": "incomplete",
    "kind_snapshot": "backup",
    "kind_archive": "archive",
    "store": "Store",
    "date": "Date",
    "actions": "Actions",
    "download": "Download (Pinnacle tar)",
    "restore": "Restore into Pinnacle",
    "restore_help": "Restoring writes the version into a new folder of the Pinnacle import directory.",
    "read_from": "Read from",
    "location_best": "the best place (backup before archive)",
    "restored_title": "Restore done",
    "restored_into": "Version {version} restored into {directory} from {source}: {files} file(s), {size}.",
    "back_to_patient": "Back to the patient record",
    "archives_title": "Archives",
    "damaged_only": "Damaged archives only",
    "filter": "Filter",
    "archive_file": "File",
    "volume": "Volume",
    "patients_count": "Patients",
    "state": "State",
    "intact": "intact",
    "no_archive": "No archive.",
    "audit_title": "Audit trail",
    "audit_user": "User",
    "audit_action": "Action",
    "audit_patient": "Patient (key)",
    "audit_since": "Since",
    "audit_until": "Until",
    "audit_time": "Time",
    "audit_address": "Address",
    "audit_detail": "Detail",
    "audit_result": "Result",
    "audit_csv": "Export as CSV",
    "audit_count": "{total} entry(ies)",
    "error_detail": "Technical detail:",
    "invalid_field": "{label}: value not understood. Expected: {expected}.",
    "back_home": "Back to the search",
}

# The search form's hints in French; in English they are `Criteria.labels()`'s own.
FR.update({f"help_{name}": text for name, text in {
    "last_name": "début du nom ; accents, majuscules et ponctuation ignorés ; une faute tolérée",
    "first_name": "début du prénom ; accents, majuscules et ponctuation ignorés ; une faute tolérée",
    "mrn": "numéro de dossier, exact",
    "patient_id": "exact",
    "birth_date": "exacte : 14/03/1957 ou 1957-03-14",
    "born": "une année (1957) ou une période (1950-1960)",
    "gender": "homme, femme ou autre",
    "physician": "radiothérapeute, début d'un mot du nom",
    "plan": "début d'un mot du nom du plan",
    "text": "mots du diagnostic ou du commentaire (début)",
    "modality": "CT, MR, PT ... d'une série d'images",
    "status": "actif, archivé ou supprimé",
    "modified_after": "date, incluse",
    "modified_before": "date, incluse",
    "archived_after": "date, incluse",
    "archived_before": "date, incluse",
    "archive": "début du nom du fichier d'archive ou du volume",
    "site": "le site dont relève la source du patient, exact",
    "source": "la source configurée ([sources.NOM]), exacte",
}.items()})

# Each error kind of `rtvault.errors.HTTP_STATUSES`: a heading, then one sentence saying what to do.
_ERRORS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "unauthorized": (("Connexion requise", "Connectez-vous pour continuer."),
                     ("Sign-in required", "Sign in to continue.")),
    "forbidden": (("Rôle insuffisant", "Cette action demande le rôle {needed} ; vous avez le rôle {actual}. "
                   "Demandez-le à un administrateur si votre travail l'exige."),
                  ("Role too small", "This needs the {needed} role; you have the {actual} role. Ask an "
                   "administrator for it if your work requires it.")),
    "csrf": (("Formulaire expiré", "Le jeton de sécurité du formulaire manque ou a expiré : rechargez la page "
              "et recommencez."),
             ("Form expired", "The form's security token is missing or expired: reload the page and try again.")),
    "too_many": (("Trop de tentatives", "Trop de tentatives depuis ce poste : réessayez dans un quart d'heure."),
                 ("Too many attempts", "Too many attempts from this workstation: try again in a quarter of an "
                  "hour.")),
    "too_large": (("Requête trop volumineuse", "La requête dépasse la taille d'un formulaire de rtvault."),
                  ("Request too large", "The request is larger than any rtvault form sends.")),
    "not_found_patient": (("Patient inconnu", "Aucun patient du catalogue ne correspond à cette adresse : "
                           "retrouvez-le par la recherche."),
                          ("Unknown patient", "No patient in the catalog matches this address: find them "
                           "through the search.")),
    "not_found_version": (("Version inconnue", "Ce patient n'a pas cette version dans le catalogue : choisissez-en "
                           "une dans son dossier."),
                          ("Unknown version", "This patient has no such version in the catalog: choose one on "
                           "their record.")),
    "not_found_location": (("Emplacement inconnu", "Cette version n'est pas à cet emplacement sur un stockage "
                            "configuré : choisissez-en un dans le dossier du patient."),
                           ("Unknown location", "This version is not at that location on a configured store: "
                            "choose one on the patient's record.")),
    "not_found_report": (("Rapport introuvable", "Ce rapport de restauration n'existe pas (ou plus) : relancez la "
                          "restauration de la liste, ou demandez-le à l'administrateur."),
                         ("Unknown report", "This restore report does not exist (any more): restore the list again, "
                          "or ask the administrator for it.")),
    "invalid": (("Critère ou valeur invalide", "Une valeur de la demande n'est pas comprise : corrigez-la et "
                 "recommencez."),
                ("Invalid criterion or value", "A value in the request is not understood: correct it and try "
                 "again.")),
    "busy": (("Stockage occupé", "Le stockage est utilisé par une autre opération (sauvegarde, purge) : "
              "réessayez dans quelques minutes."),
             ("Store busy", "The store is in use by another operation (backup, prune): try again in a few "
              "minutes.")),
    "directory": (("Annuaire indisponible", "L'annuaire de l'établissement (LDAP) ne répond pas : les comptes de "
                   "l'annuaire ne peuvent pas se connecter pour l'instant ; prévenez l'informatique."),
                  ("Directory unavailable", "The site's directory (LDAP) does not answer: directory accounts "
                   "cannot sign in for now; tell the IT department.")),
    "unavailable": (("Service indisponible", "Un serveur dont rtvault a besoin ne répond pas : réessayez plus "
                     "tard ou prévenez l'administrateur."),
                    ("Service unavailable", "A server rtvault needs does not answer: try again later or tell the "
                     "administrator.")),
    "source": (("Base Pinnacle inaccessible", "Le dossier de la base Pinnacle est absent, vide ou non monté : "
                "prévenez l'administrateur de rtvault."),
               ("Pinnacle database unreachable", "The Pinnacle database folder is missing, empty or not mounted: tell "
                "the rtvault administrator.")),
    "catalog": (("Catalogue indisponible", "La base du catalogue ne répond pas ou a refusé la demande : "
                 "prévenez l'administrateur de rtvault."),
                ("Catalog unavailable", "The catalog database does not answer or refused the request: tell the "
                 "rtvault administrator.")),
    "config": (("Configuration incomplète", "La configuration du serveur rtvault est incomplète ou invalide : "
                "prévenez l'administrateur de rtvault."),
               ("Incomplete configuration", "The rtvault server's configuration is incomplete or invalid: tell "
                "the rtvault administrator.")),
    "store": (("Erreur de stockage", "Le stockage ne contient pas ce qui est demandé ou est endommagé : prévenez "
               "l'administrateur de rtvault."),
              ("Store error", "The store lacks what was asked or is damaged: tell the rtvault administrator.")),
    "partial": (("Résultat partiel", "L'opération s'est terminée, mais certains patients ou fichiers n'ont pas pu "
                 "être lus ou écrits (ils sont nommés) : prévenez l'administrateur de rtvault."),
                ("Partial result", "The operation finished, but some patients or files could not be read or "
                 "written (they are named): tell the rtvault administrator.")),
    "no_page": (("Page introuvable", "Cette adresse ne correspond à aucune page de rtvault."),
                ("Page not found", "This address matches no rtvault page.")),
    "method": (("Méthode non permise", "Cette page ne s'utilise pas ainsi : repartez de la recherche."),
               ("Method not allowed", "This page is not used that way: start again from the search.")),
    "internal": (("Erreur inattendue", "Une erreur inattendue s'est produite ; elle est consignée dans le journal "
                  "du serveur. Prévenez l'administrateur si elle se reproduit."),
                 ("Unexpected error", "An unexpected error happened; it is recorded in the server's log. Tell the "
                  "administrator if it happens again.")),
}
for _kind, ((_fr_title, _fr_text), (_en_title, _en_text)) in _ERRORS.items():
    FR.update({f"error_title_{_kind}": _fr_title, f"error_text_{_kind}": _fr_text})
    EN.update({f"error_title_{_kind}": _en_title, f"error_text_{_kind}": _en_text})

FR.update(i18n_dashboard.FR)
EN.update(i18n_dashboard.EN)
FR.update(i18n_restore_list.FR)
EN.update(i18n_restore_list.EN)
FR.update(i18n_reconcile.FR)
EN.update(i18n_reconcile.EN)
FR.update(i18n_viewer.FR)
EN.update(i18n_viewer.EN)
FR.update(i18n_dicom.FR)
EN.update(i18n_dicom.EN)
MESSAGES = {"fr": FR, "en": EN}


def translator(lang: str) -> Callable[..., str]:
    """`t(key, **values)` in `lang`; an unknown key shows itself, so a missing string is seen, not hidden."""
    table = MESSAGES.get(lang, MESSAGES[DEFAULT])

    def t(key: str, **values: object) -> str:
        text = table.get(key, key)
        return text.format(**values) if values else text

    return t


def from_accept_language(header: str) -> str:
    """The first of our languages the browser prefers (by q value), else the default."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()[:2]))
    return next((tag for _, _, tag in sorted(ranked) if tag in LANGUAGES), DEFAULT)


def local_time(value: str | None, zone: tzinfo | None = None) -> str:
    """A catalog time (UTC ISO, `2026-11-24T07:44:18Z`) in `zone` (default: the server's local zone), to the
    minute and with the zone named: `2026-11-24 08:44 CET`. A bare date, or text that is no time, is shown as
    it is."""
    if not value or len(value) <= 10:
        return value or ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
