"""The words of received DICOM data in the search results and on the patient page, French and English;
web/i18n.py adds them to its tables."""

from __future__ import annotations

# key: (French, English)
TEXTS: dict[str, tuple[str, str]] = {
    "status_received": ("reçu en DICOM", "received (DICOM)"),
    "dicom_in": ("DICOM, {studies} étude(s), {series} série(s), {instances} objet(s) (dernier reçu le {last})",
                 "DICOM, {studies} study(ies), {series} series, {instances} object(s) (last received {last})"),
    "dicom_title": ("Données DICOM reçues", "Received DICOM data"),
    "dicom_none": ("Aucun objet DICOM reçu pour ce patient.", "No DICOM object received for this patient."),
    "dicom_study": ("Étude du {date} : {description}", "Study of {date}: {description}"),
    "dicom_study_undated": ("Étude sans date : {description}", "Undated study: {description}"),
    "dicom_col_series": ("Série", "Series"),
    "dicom_col_modality": ("Modalité", "Modality"),
    "dicom_col_description": ("Description", "Description"),
    "dicom_col_plan": ("Plan", "Plan"),
    "dicom_col_instances": ("Objets", "Objects"),
    "dicom_col_sender": ("Envoyé par", "Sent by"),
    "dicom_col_received": ("Reçu", "Received"),
    "dicom_col_store": ("Stockage", "Store"),
    "dicom_origin_import": ("import", "import"),
    "dicom_kept_apart": ("Non rapproché : le patient {name} ({patient}) a le même IPP {mrn} mais est né le {birth}. "
                         "Corrigez la date de naissance chez l'émetteur ou dans Pinnacle.",
                         "Not linked: patient {name} ({patient}) has the same MRN {mrn} but was born {birth}. "
                         "Correct the birth date at the sender or in Pinnacle."),
    "dicom_patient_note": ("Patient connu seulement par les objets DICOM reçus (aucune version Pinnacle).",
                           "Patient known only from received DICOM objects (no Pinnacle version)."),
    "dicom_download_all": ("Télécharger tous les objets DICOM reçus ({instances}, zip avec DICOMDIR)",
                           "Download all received DICOM objects ({instances}, zip with DICOMDIR)"),
    "dicom_download_study": ("Télécharger cette étude (zip)", "Download this study (zip)"),
    "dicom_download_series": ("zip", "zip"),
    "dicom_download_series_label": ("Télécharger la série {number} ({modality}) en zip",
                                    "Download series {number} ({modality}) as a zip"),
    "dicom_col_download": ("Télécharger", "Download"),
    "error_title_unreadable": ("Objets illisibles", "Objects unreadable"),
    "error_text_unreadable": ("Aucun des objets demandés ne peut être lu sur un stockage configuré (pas encore "
                              "scellés par le nœud DICOM, endommagés ou stockage hors ligne) : réessayez dans une "
                              "minute, puis prévenez l'administrateur de rtvault.",
                              "None of the objects asked for can be read from a configured store (not sealed by the "
                              "DICOM node yet, damaged, or a store offline): try again in a minute, then tell the "
                              "rtvault administrator."),
    "error_title_not_found_dicom": ("Aucun objet DICOM reçu", "No received DICOM object"),
    "error_text_not_found_dicom": ("Ce patient n'a aucun objet DICOM reçu de cette étude ou série dans le catalogue : "
                                   "repartez de son dossier.",
                                   "This patient has no received DICOM object of that study or series in the catalog: "
                                   "start again from their record."),
}

FR = {key: texts[0] for key, texts in TEXTS.items()}
EN = {key: texts[1] for key, texts in TEXTS.items()}
