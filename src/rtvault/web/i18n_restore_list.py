"""The list restore page's words, French and English; web/i18n.py adds them to its tables."""

from __future__ import annotations

# key: (French, English)
TEXTS: dict[str, tuple[str, str]] = {
    "nav_restore_list": ("Restaurer une liste", "Restore a list"),
    "list_title": ("Restaurer une liste de patients", "Restore a list of patients"),
    "list_intro": ("Envoyez un fichier CSV (enregistré depuis le tableur) avec une ligne d'en-tête et un patient "
                   "par ligne, {most} au plus : soit une colonne IPP (ou MRN, n° de dossier), soit une colonne Nom "
                   "et une colonne Date de naissance (14/03/1957 ou 1957-03-14), avec si vous voulez une colonne "
                   "Prénom. Séparateur point-virgule ou virgule, UTF-8 ou Latin-1. Chaque patient trouvé est "
                   "restauré dans un nouveau dossier du répertoire d'import Pinnacle ; le compte rendu se "
                   "télécharge en CSV.",
                   "Send a CSV file (saved from the spreadsheet) with a header line and one patient a line, {most} "
                   "at most: either an MRN column (or IPP, medical record number), or a Last name column and a "
                   "Birth date column (14/03/1957 or 1957-03-14), with a First name column if you like. Semicolon "
                   "or comma separated, UTF-8 or Latin-1. Each patient found is restored into a new folder of the "
                   "Pinnacle import directory; the report can be downloaded as CSV."),
    "list_file": ("Fichier CSV de la liste", "CSV file of the list"),
    "list_help": ("Fichier .csv ; les colonnes inconnues sont ignorées, les lignes vides aussi.",
                  ".csv file; unknown columns are ignored, and so are empty lines."),
    "list_button": ("Restaurer les patients de la liste", "Restore the patients of the list"),
    "list_unreadable": ("Ce fichier ne peut pas être lu comme une liste de patients ; rien n'a été restauré.",
                        "This file cannot be read as a list of patients; nothing was restored."),
    "list_report_title": ("Compte rendu", "Report"),
    "list_summary": ("{restored} patient(s) restauré(s) sur {rows}, chacun dans un nouveau dossier de {directory}.",
                     "{restored} of {rows} patient(s) restored, each into a new folder of {directory}."),
    "list_incomplete": ("Certains patients de la liste n'ont pas été restaurés : voir chaque ligne ci-dessous.",
                        "Some patients of the list were not restored: see each line below."),
    "list_encoding": ("Le fichier n'est pas en UTF-8 : il a été lu en {encoding}. Vérifiez que les noms accentués "
                      "se lisent bien.",
                      "The file is not UTF-8: it was read as {encoding}. Check that accented names read right."),
    "list_report_csv": ("Télécharger le compte rendu (CSV)", "Download the report (CSV)"),
    "list_line": ("Ligne", "Line"),
    "list_outcome": ("Résultat", "Outcome"),
    "list_asked": ("Demandé", "Asked"),
    "list_patient": ("Patient", "Patient"),
    "list_detail": ("Détail", "Detail"),
    "list_born": ("né(e) le {date}", "born {date}"),
    "list_same_as": ("même patient que la ligne {line} : restauré une seule fois",
                     "same patient as line {line}: restored once"),
    "list_candidates": ("Plusieurs patients correspondent (aucun n'a été restauré ; donnez l'IPP) :",
                        "Several patients match (none was restored; give the MRN):"),
    "outcome_restored": ("restauré", "restored"),
    "outcome_not_found": ("introuvable", "not found"),
    "outcome_ambiguous": ("ambigu", "ambiguous"),
    "outcome_failed": ("non restauré", "not restored"),
    "outcome_invalid": ("ligne illisible", "unusable line"),
    "outcome_duplicates": ("doublon", "duplicate"),
}
FR = {key: french for key, (french, _english) in TEXTS.items()}
EN = {key: english for key, (_french, english) in TEXTS.items()}
