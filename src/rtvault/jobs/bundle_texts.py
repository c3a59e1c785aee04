"""The words of the patient access bundle (`rtvault export bundle`, jobs/bundle.py), in French and in English: its
summary's headings and its README. `{name}` fields are filled with `str.format`; the summary's values are escaped
by the template, the README is plain text."""

from __future__ import annotations

FR: dict[str, str] = {
    "title": "Dossier de radiothérapie : résumé du traitement",
    "page": "Page",
    "site_todo": "Centre :",
    "audience": "Pour le droit d'accès du patient à son dossier, ou le transfert du traitement à un autre centre.",
    "printed": "Produit par rtvault {rtvault} à partir de {source}, version du {date}.",
    "reprint": "Pour produire à nouveau les mêmes fichiers :",
    "keep": "Les fichiers DICOM du dossier DICOM/ font foi ; ce résumé aide à les lire.",
    "no_date": "date inconnue",
    "source_snapshot": "l'instantané {id}",
    "source_archive": "l'archive {id}",
    "identity": "Identité",
    "identity_head": "Champ|Valeur",
    "name": "Nom",
    "mrn": "Numéro de dossier",
    "birth": "Date de naissance",
    "gender": "Sexe",
    "oncologist": "Radiothérapeute",
    "referring": "Médecin adressant",
    "plans": "Plans",
    "plans_head": "Plan|Nom|Version de Pinnacle|Position|Essais (trials)",
    "prescriptions": "Plan {plan}, essai {trial} : prescriptions",
    "prescriptions_head": "Prescription|Dose par fraction (Gy)|Fractions|Isodose (%)|Point|Dose totale au point (Gy)",
    "no_prescription": "Aucune prescription.",
    "beams": "Plan {plan}, essai {trial} : faisceaux",
    "beams_head": "N°|Faisceau|Machine|Énergie|Type|Bras (°)|Collimateur (°)|Table (°, CEI 61217)|UM par fraction"
                  "|Fractions",
    "no_beam": "Aucun faisceau.",
    "dvh": "Plan {plan}, essai {trial} : histogrammes dose-volume",
    "dvh_head": "Volume d'intérêt|Type|Volume (cm³)|Dose min. (Gy)|Dose moyenne (Gy)|Dose max. (Gy)|D95 (Gy)",
    "no_dvh": "Pas d'histogramme dose-volume : {why}",
    "no_dvh_why": "pas de dose ou pas de contour sur le scanner",
    "slices": "Plan {plan}, essai {trial} : coupes",
    "axial": "Coupe axiale {n}/{of}{through}",
    "coronal": "Coupe coronale {n}/{of}",
    "sagittal": "Coupe sagittale {n}/{of}",
    "through": ", par le point de prescription",
    "isodose": "{percent} % ({gy} Gy)",
    "no_slices": "Pas de coupe : {why}",
    "missing": "Non exporté",
    "missing_intro": "Ce qui n'a pas pu être exporté ou dessiné :",
    "readme": """\
DOSSIER DE RADIOTHÉRAPIE DE {name} (dossier {mrn})

Ce dossier contient le traitement de radiothérapie de ce patient tel que le système de planification Philips
Pinnacle l'a enregistré, converti aux formats ouverts DICOM et PDF, pour le droit d'accès du patient à son dossier
ou le transfert du traitement à un autre centre.

Contenu
  DICOM/        les images et le traitement au format DICOM-RT ({counts}), avec leur index DICOMDIR
  summary.pdf   un résumé lisible : identité, plans, prescriptions, faisceaux et unités moniteur,
                histogrammes dose-volume et quelques coupes annotées
  README.txt    ce fichier

Ouvrir les fichiers DICOM
  Tout logiciel DICOM lit le dossier DICOM/ à partir de son fichier DICOMDIR (« importer un média » ou
  « ouvrir un dossier ») : un PACS, un système de planification de radiothérapie, ou une visionneuse libre
  comme 3D Slicer avec l'extension SlicerRT, ou Weasis. CT : les coupes du scanner en unités Hounsfield ;
  RTSTRUCT : les contours des volumes d'intérêt ; RTPLAN : les faisceaux, leurs positions et unités moniteur ;
  RTDOSE : la dose calculée en Gy, par faisceau et pour l'ensemble.

Identifiants DICOM (UID)
  Les UID sont dérivés de la racine {uid_root}, du patient et de la version exportée : exporter à nouveau la
  même version redonne les mêmes fichiers et les mêmes UID (un système qui les reçoit deux fois les reconnaît),
  et deux versions différentes ne partagent jamais un UID.

Origine
  Produit par rtvault {rtvault}{site} à partir de {source} (patient {path}).
  Version du {date} (date du fichier le plus récent de cette version, pas celle de l'export : le même
  dossier produit plus tard est identique).
""",
    "readme_site": ", au centre {site},",
    "readme_missing": "\nNon exporté\n",
    "received": "Objets DICOM reçus",
    "received_head": "Fichier|Modalité|UID d'instance",
    "received_intro": "Reçus par le nœud DICOM de rtvault (d'un scanner, d'un PACS, d'un autre système) et écrits "
                      "octet pour octet tels que reçus, dans le dossier DICOM/ et son index DICOMDIR.",
    "readme_received": "\nObjets DICOM reçus (reçus par le nœud DICOM de rtvault et écrits octet pour octet tels que "
                       "reçus, dans le même index DICOMDIR)\n",
}

EN: dict[str, str] = {
    "title": "Radiotherapy record: treatment summary",
    "page": "Page",
    "site_todo": "Centre:",
    "audience": "For the patient's right of access to their record, or the transfer of the treatment to another "
                "centre.",
    "printed": "Produced by rtvault {rtvault} from {source}, version of {date}.",
    "reprint": "To produce the same files again:",
    "keep": "The DICOM files of the DICOM/ folder are the record; this summary helps to read them.",
    "no_date": "unknown date",
    "source_snapshot": "snapshot {id}",
    "source_archive": "archive {id}",
    "identity": "Identity",
    "identity_head": "Field|Value",
    "name": "Name",
    "mrn": "Medical record number",
    "birth": "Date of birth",
    "gender": "Sex",
    "oncologist": "Radiation oncologist",
    "referring": "Referring physician",
    "plans": "Plans",
    "plans_head": "Plan|Name|Pinnacle version|Position|Trials",
    "prescriptions": "Plan {plan}, trial {trial}: prescriptions",
    "prescriptions_head": "Prescription|Dose per fraction (Gy)|Fractions|Isodose (%)|Point|Total dose at the point "
                          "(Gy)",
    "no_prescription": "No prescription.",
    "beams": "Plan {plan}, trial {trial}: beams",
    "beams_head": "No.|Beam|Machine|Energy|Type|Gantry (°)|Collimator (°)|Couch (°, IEC 61217)|MU per fraction"
                  "|Fractions",
    "no_beam": "No beam.",
    "dvh": "Plan {plan}, trial {trial}: dose-volume histograms",
    "dvh_head": "Region of interest|Type|Volume (cm³)|Min dose (Gy)|Mean dose (Gy)|Max dose (Gy)|D95 (Gy)",
    "no_dvh": "No dose-volume histogram: {why}",
    "no_dvh_why": "no dose, or no contour on the CT",
    "slices": "Plan {plan}, trial {trial}: slices",
    "axial": "Axial slice {n}/{of}{through}",
    "coronal": "Coronal slice {n}/{of}",
    "sagittal": "Sagittal slice {n}/{of}",
    "through": ", through the prescription point",
    "isodose": "{percent} % ({gy} Gy)",
    "no_slices": "No slices: {why}",
    "missing": "Not exported",
    "missing_intro": "What could not be exported or drawn:",
    "readme": """\
RADIOTHERAPY RECORD OF {name} (record {mrn})

This folder holds the patient's radiotherapy treatment as the Philips Pinnacle treatment planning system recorded
it, converted to the open DICOM and PDF formats, for the patient's right of access to their record or the
transfer of the treatment to another centre.

Contents
  DICOM/        the images and the treatment as DICOM-RT ({counts}), with their DICOMDIR index
  summary.pdf   a readable summary: identity, plans, prescriptions, beams and monitor units,
                dose-volume histograms and a few annotated slices
  README.txt    this file

Opening the DICOM files
  Any DICOM software reads the DICOM/ folder from its DICOMDIR file ("import media" or "open folder"): a PACS,
  a radiotherapy treatment planning system, or a free viewer such as 3D Slicer with the SlicerRT extension, or
  Weasis. CT: the scanner's slices in Hounsfield units; RTSTRUCT: the contours of the regions of interest;
  RTPLAN: the beams, their positions and monitor units; RTDOSE: the computed dose in Gy, per beam and in total.

DICOM identifiers (UIDs)
  The UIDs derive from the root {uid_root}, the patient and the exported version: exporting the same version
  again gives the same files and the same UIDs (a system receiving them twice knows them for the same), and two
  different versions never share a UID.

Origin
  Produced by rtvault {rtvault}{site} from {source} (patient {path}).
  Version of {date} (the date of this version's newest file, not that of the export: the same bundle produced
  later is identical).
""",
    "readme_site": " at {site}",
    "readme_missing": "\nNot exported\n",
    "received": "Received DICOM objects",
    "received_head": "File|Modality|Instance UID",
    "received_intro": "Received by rtvault's DICOM node (from a scanner, a PACS, another system) and written byte "
                      "for byte as received, in the DICOM/ folder and its DICOMDIR index.",
    "readme_received": "\nReceived DICOM objects (received by rtvault's DICOM node and written byte for byte as "
                       "received, in the same DICOMDIR index)\n",
}

TEXTS = {"fr": FR, "en": EN}
