"""The reconciliation page's words (`/reconcile`), French and English; web/i18n.py adds them to its tables."""

from __future__ import annotations

# key: (French, English)
TEXTS: dict[str, tuple[str, str]] = {
    "nav_reconcile": ("Réconciliation", "Reconciliation"),
    "reconcile_title": ("Réconciliation avec Pinnacle", "Reconciliation with Pinnacle"),
    "reconcile_intro": ("Base Pinnacle {source}, comparée aux sauvegardes et aux archives le {time}. rtvault ne "
                        "supprime jamais rien dans Pinnacle : ces listes sont à relire par un physicien.",
                        "Pinnacle database {source}, compared with the backups and archives at {time}. rtvault never "
                        "deletes anything in Pinnacle: these lists are for a physicist to read."),
    "reconcile_idle": ("Inactif : aucune modification depuis le {day} ({months} mois, réglage [reconcile] "
                       "idle_months).",
                       "Idle: unchanged since {day} ({months} months, setting [reconcile] idle_months)."),
    "reconcile_csv": ("Télécharger les trois listes (CSV)", "Download the three lists (CSV)"),
    "reconcile_problems": ("Ce qui n'a pas pu être lu ou vérifié (une liste peut manquer un patient) :",
                           "What could not be read or checked (a list may miss a patient):"),
    "never_captured_title": ("Dans Pinnacle, jamais sauvegardés", "In Pinnacle, never backed up"),
    "never_captured_help": ("Ces patients ne figurent dans aucune sauvegarde : la prochaine sauvegarde les prendra. "
                            "S'ils restent ici, vérifiez que les sauvegardes fonctionnent.",
                            "No snapshot holds these patients: the next backup will take them. If they stay here, "
                            "check that backups run."),
    "under_copied_title": ("Archivés sans deux copies vérifiées", "Archived without two verified copies"),
    "under_copied_help": ("Une archive de ces patients n'a pas deux copies vérifiées (stockages ou disques "
                          "amovibles) : prévenez l'administrateur (réplication, vérification).",
                          "An archive of these patients lacks two verified copies (stores or removable disks): "
                          "tell the administrator (replication, verification)."),
    "safe_to_delete_title": ("Supprimables de Pinnacle", "Safe to delete from Pinnacle"),
    "safe_to_delete_help": ("Inactifs, identiques à leur dernière sauvegarde, archivés au format Pinnacle et sur "
                            "deux copies vérifiées dont une hors site ou sur disque amovible.",
                            "Idle, identical to their latest backup, archived in Pinnacle's format and on two "
                            "verified copies, one of them offsite or on a removable disk."),
    "not_yet_title": ("Inactifs, pas encore supprimables", "Idle, not safe to delete yet"),
    "col_reason": ("Pourquoi (détail technique, en anglais)", "Why"),
    "col_path": ("Chemin Pinnacle", "Pinnacle path"),
    "col_changed": ("Dernière modification", "Last changed"),
    "col_files": ("Fichiers", "Files"),
    "col_archive": ("Archive", "Archive"),
    "col_copies": ("Copies", "Copies"),
    "col_verified": ("Copies vérifiées", "Verified copies"),
    "col_offsite": ("Hors site ou hors ligne", "Offsite or offline"),
    "list_empty": ("Aucun patient.", "No patient."),
    "list_more": ("… et {count} de plus : téléchargez le CSV pour la liste complète.",
                  "… and {count} more: download the CSV for the whole list."),
    "none_verified": ("aucune", "none"),
}
FR = {key: fr for key, (fr, _en) in TEXTS.items()}
EN = {key: en for key, (_fr, en) in TEXTS.items()}
