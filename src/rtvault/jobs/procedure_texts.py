"""The words of the printed procedures, in French and in English (jobs/procedure_sections.py puts this site's
values into them: `{name}` fields filled with `str.format`, the result escaped by the template)."""

from __future__ import annotations

FR: dict[str, str] = {
    "title": "Procédures d'exploitation et d'urgence : sauvegarde de Pinnacle (rtvault)",
    "for": "Pour : {roles}",
    "role_physicist": "physicien ou dosimétriste",
    "role_operator": "exploitant informatique",
    "role_admin": "administrateur",
    "todo": "À compléter",
    "printed": "Imprimé le {generated} à partir de la configuration {config}. À réimprimer après tout changement "
               "de configuration ou après un exercice de restauration :",
    "keep": "Rangez ce document hors de la salle des serveurs : il sert le jour où le serveur est perdu.",
    "site_title": "Ce site",
    "site_config": "Fichier de configuration : {config}",
    "site_root": "Base Pinnacle sauvegardée (racine) : {root}",
    "site_restore_dir": "Dossier d'import Pinnacle (restaurations web) : {restore_dir}",
    "site_web": "Interface web : {url}",
    "site_backups": "Sauvegardes : {schedule}",
    "stores_head": "Stockage|Emplacement|Rôle|Chiffré",
    "store_primary": "principal",
    "store_copy": "copie de {of}",
    "no_stores": "Aucun stockage n'est configuré : rien n'est sauvegardé.",
    "yes": "oui",
    "no": "non",
    "targets_title": "Objectifs de continuité et dernier exercice",
    "rpo": "Perte de données maximale admise (RPO) : {rpo} ; au-delà sans sauvegarde réussie, « rtvault health » "
           "passe au rouge.",
    "rto_patient": "Un patient de retour dans Pinnacle (RTO) : {minutes} min.",
    "rto_full": "Toute la base reconstruite (RTO) : {minutes} min.",
    "drill_last": "Dernier exercice de restauration : {started}, résultat {result}. Un exercice au moins tous "
                  "les {days} jours.",
    "drills_head": "Stockage|Restauration|Durée mesurée|Base complète estimée|Dans l'objectif|Résultat",
    "kind_patient": "un patient",
    "kind_archive": "un patient archivé",
    "kind_full": "base complète",
    "no_drill": "Aucun exercice de restauration n'est enregistré : lancez-en un, puis réimprimez ce document.",
    "catalog_down": "Chiffres mesurés indisponibles : le catalogue n'a pas pu être lu ({problem}).",
    "contacts_title": "Qui appeler",
    "contacts_head": "Rôle|Nom et téléphone",
    "contacts_todo": "Physique médicale|Informatique (astreinte)|Support Philips Pinnacle|Cadre du service",
    "checks_title": "Vérifications : {role}",
    "daily": "Chaque jour",
    "weekly": "Chaque semaine",
    "after_change": "Après tout changement",
    "phys_d1": "Ouvrir le tableau de bord {url}/dashboard : chaque contrôle doit être vert (OK). Un contrôle orange "
               "ou rouge : prévenir l'exploitant informatique (voir « Qui appeler »).",
    "phys_d2": "Après une planification importante, chercher le patient sur {url}/ : une version du jour doit "
               "apparaître.",
    "phys_w1": "Sur le tableau de bord, le dernier exercice de restauration : il a moins de {days} jours et sa "
               "durée est sous l'objectif de {minutes} min.",
    "phys_w2": "S'exercer à retrouver un patient (nom, numéro de dossier ou date de naissance) sur {url}/.",
    "phys_w3": "Avant d'effacer des patients de Pinnacle, lire la liste de ceux qui peuvent l'être sans risque "
               "(archivés, vérifiés, sur deux stockages dont un hors site) sur {url}/reconcile ou par :",
    "op_d1": "Tous les contrôles sont OK (code de sortie 0) ; sinon chaque message dit quoi faire :",
    "op_d2": "Aucune exécution en échec (failed) ces dernières 24 heures :",
    "op_d3": "Le tableau de bord {url}/dashboard : espace libre et prévision de remplissage de chaque stockage.",
    "op_w1": "Le dernier exercice de restauration, ses durées et son résultat :",
    "op_w2": "Les disques amovibles : vus et vérifiés récemment, rangés à leur place :",
    "adm_d1": "Tous les contrôles sont OK :",
    "adm_w1": "Les restaurations et téléchargements de la semaine (journal d'audit) :",
    "adm_w2": "Un exercice de restauration hors calendrier, après une mise à jour ou un changement de matériel :",
    "adm_w3": "Vérifier que le journal des actions n'a pas été modifié (code de sortie 0 attendu) :",
    "adm_c1": "Vérifier la configuration :",
    "adm_c2": "Réimprimer ce document et remplacer les exemplaires papier :",
    "restore_title": "Restaurer un patient",
    "restore_goal": "Objectif : le patient de retour dans Pinnacle en {minutes} min.",
    "restore_web": "Par l'interface web (compte « operator »)",
    "web_1": "Ouvrir {url}/ et se connecter.",
    "web_2": "Chercher le patient par nom (accents et majuscules ignorés), numéro de dossier ou date de naissance.",
    "web_3": "Ouvrir sa fiche, choisir la version (la plus récente, ou celle d'avant l'erreur) et cliquer "
             "« Restaurer ».",
    "web_4": "Le patient est écrit dans un nouveau dossier de {restore_dir}, nommé date-NOM-clé.",
    "import": "Dans Pinnacle, importer le patient depuis ce dossier, puis vérifier ses plans et ses images.",
    "restore_cli": "En ligne de commande (sur le serveur rtvault)",
    "cli_1": "Trouver le patient et son numéro de dossier (MRN) :",
    "cli_2": "Restaurer sa dernière version dans le dossier d'import :",
    "cli_3": "Une version antérieure : la plus récente avant une date et heure :",
    "cli_4": "Le stockage principal {primary} est indisponible : depuis la copie {copy} :",
    "cli_5": "Un patient supprimé de Pinnacle (donc archivé) :",
    "rebuild_title": "Reconstruire le serveur Pinnacle à partir des stockages",
    "rebuild_intro": "Quand le serveur Pinnacle ou son disque est perdu. Objectif : {minutes} min ; le dernier "
                     "exercice estime la restauration complète à {estimate}.",
    "reb_1": "Remettre en service un serveur Pinnacle de même version, avec un volume vide monté sur {root} et "
             "accessible au serveur rtvault. Ne pas démarrer Pinnacle.",
    "reb_2": "Sur le serveur rtvault (ou un serveur de secours où rtvault est installé avec une copie de "
             "{config}), vérifier que le stockage répond et lister ses sauvegardes :",
    "reb_catalog": "Si le catalogue de rtvault est perdu aussi (serveur de secours, base du catalogue perdue) : le "
                   "reconstruire depuis les stockages. Les utilisateurs du catalogue (mots de passe et rôles), les "
                   "jetons et les disques amovibles reviennent avec catalog rebuild, depuis la dernière sauvegarde du "
                   "catalogue écrite sur un stockage chiffré ou réservé à rtvault ; le résultat nomme les "
                   "utilisateurs rendus :",
    "reb_3": "Restaurer toute la base depuis le stockage principal {primary} (fichiers Institution compris) :",
    "reb_4": "Si {primary} est perdu ou abîmé, restaurer depuis la copie {copy} :",
    "reb_5": "Code de sortie 0 : tout est restauré. Code 9 : ce qui n'a pu être lu est nommé ; restaurer ces "
             "patients depuis une autre copie (--store) ou une archive (--from-archive).",
    "reb_6": "Vérifier la base restaurée (nombre de patients, comparé à la dernière sauvegarde) :",
    "reb_7": "Rendre les fichiers à l'utilisateur de Pinnacle (propriétaire et droits d'origine), démarrer "
             "Pinnacle, ouvrir trois patients récents et vérifier plans, images et doses.",
    "reb_8": "Relancer les sauvegardes, puis le service :",
    "failover_title": "Basculer sur la copie, puis revenir",
    "failover_intro": "Quand le stockage principal {primary} est perdu (disque, NAS, salle) et que les sauvegardes "
                      "doivent continuer.",
    "no_copy": "Aucune copie n'est configurée : aucune bascule n'est possible. Ajouter un stockage avec "
               "copy_of = \"{primary}\".",
    "fo_1": "Confirmer que c'est le stockage qui est perdu (contrôles backup, replication et space) :",
    "fo_2": "Basculer : la copie {copy} devient le stockage où écrivent les sauvegardes (enregistré, alerte "
            "envoyée) :",
    "fo_3": "Vérifier qu'une sauvegarde passe sur {copy} :",
    "fo_4": "Si la copie {copy} est tenue par un autre serveur qui la tire chez lui : c'est ce serveur qui lance "
            "les sauvegardes pendant la bascule (même commande, sur sa configuration).",
    "fo_5": "Réparer ou remplacer {primary} ({where}).",
    "fo_6": "Revenir : recopier sur {primary} ce qui a été écrit entre-temps et rétablir les rôles normaux, les "
            "deux côtés vérifiés :",
    "fo_7": "Contrôler, puis réimprimer ce document :",
    "disks_title": "Disques amovibles",
    "disks_intro": "Les disques que connaît le catalogue. Noter à la main où chacun est rangé.",
    "disks_head": "Disque|Dernier montage|Vu le|Vérifié le|Archives|Rangé où",
    "no_disks": "Aucun disque amovible n'est enregistré.",
    "disks_cmd": "La liste à jour, et si chaque disque est monté :",
    "disks_verify": "Un disque rapporté : le monter à son emplacement et le relire entièrement :",
    "page": "page",
    "a_date": "<AAAA-MM-JJ>",
    "a_name": "<NOM>",
}

EN: dict[str, str] = {
    "title": "Operating and emergency procedures: Pinnacle backup (rtvault)",
    "for": "For: {roles}",
    "role_physicist": "physicist or dosimetrist",
    "role_operator": "IT operator",
    "role_admin": "administrator",
    "todo": "To be completed",
    "printed": "Printed on {generated} from the configuration {config}. Print it again after any change of the "
               "configuration or after a restore drill:",
    "keep": "Keep this document outside the server room: it is needed on the day the server is lost.",
    "site_title": "This site",
    "site_config": "Configuration file: {config}",
    "site_root": "Pinnacle database backed up (root): {root}",
    "site_restore_dir": "Pinnacle import folder (web restores): {restore_dir}",
    "site_web": "Web interface: {url}",
    "site_backups": "Backups: {schedule}",
    "stores_head": "Store|Location|Role|Encrypted",
    "store_primary": "primary",
    "store_copy": "copy of {of}",
    "no_stores": "No store is configured: nothing is backed up.",
    "yes": "yes",
    "no": "no",
    "targets_title": "Continuity targets and the last drill",
    "rpo": "Most data that may be lost (RPO): {rpo}; beyond that without a successful backup, \"rtvault health\" "
           "turns red.",
    "rto_patient": "One patient back in Pinnacle (RTO): {minutes} min.",
    "rto_full": "The whole database rebuilt (RTO): {minutes} min.",
    "drill_last": "Last restore drill: {started}, result {result}. A drill at least every {days} days.",
    "drills_head": "Store|Restore|Measured time|Full restore estimated|Within target|Result",
    "kind_patient": "one patient",
    "kind_archive": "one archived patient",
    "kind_full": "whole database",
    "no_drill": "No restore drill is recorded: run one, then print this document again.",
    "catalog_down": "Measured figures unavailable: the catalog could not be read ({problem}).",
    "contacts_title": "Whom to call",
    "contacts_head": "Role|Name and phone",
    "contacts_todo": "Medical physics|IT (on call)|Philips Pinnacle support|Head of department",
    "checks_title": "Checks: {role}",
    "daily": "Every day",
    "weekly": "Every week",
    "after_change": "After any change",
    "phys_d1": "Open the dashboard {url}/dashboard: every check must be green (OK). A check in orange or red: tell "
               "the IT operator (see \"Whom to call\").",
    "phys_d2": "After an important planning session, search the patient on {url}/: a version of the day must be "
               "listed.",
    "phys_w1": "On the dashboard, the last restore drill: less than {days} days old and its time under the "
               "{minutes} min target.",
    "phys_w2": "Practise finding a patient (name, record number or birth date) on {url}/.",
    "phys_w3": "Before deleting patients from Pinnacle, read the list of those that can be deleted safely (archived, "
               "verified, on two stores, one of them offsite) on {url}/reconcile or with:",
    "op_d1": "Every check is OK (exit code 0); otherwise each message says what to do:",
    "op_d2": "No failed run in the last 24 hours:",
    "op_d3": "The dashboard {url}/dashboard: free space and forecast of each store.",
    "op_w1": "The last restore drill, its times and its result:",
    "op_w2": "The removable disks: seen and verified recently, stored in their place:",
    "adm_d1": "Every check is OK:",
    "adm_w1": "The restores and downloads of the week (audit trail):",
    "adm_w2": "A restore drill out of schedule, after an upgrade or a change of hardware:",
    "adm_w3": "Check that the journal of actions was not tampered with (exit code 0 expected):",
    "adm_c1": "Check the configuration:",
    "adm_c2": "Print this document again and replace the paper copies:",
    "restore_title": "Restore one patient",
    "restore_goal": "Target: the patient back in Pinnacle within {minutes} min.",
    "restore_web": "With the web interface (an \"operator\" account)",
    "web_1": "Open {url}/ and sign in.",
    "web_2": "Search the patient by name (accents and case ignored), record number or birth date.",
    "web_3": "Open the patient's page, choose the version (the newest, or the one before the mistake) and click "
             "\"Restore\".",
    "web_4": "The patient is written into a new folder of {restore_dir}, named date-NAME-key.",
    "import": "In Pinnacle, import the patient from that folder, then check its plans and images.",
    "restore_cli": "With the command line (on the rtvault server)",
    "cli_1": "Find the patient and its medical record number (MRN):",
    "cli_2": "Restore its newest version into the import folder:",
    "cli_3": "An earlier version: the newest before a date and time:",
    "cli_4": "The primary store {primary} is unavailable: from the copy {copy}:",
    "cli_5": "A patient deleted from Pinnacle (hence archived):",
    "rebuild_title": "Rebuild the Pinnacle server from the stores",
    "rebuild_intro": "When the Pinnacle server or its disk is lost. Target: {minutes} min; the last drill estimates "
                     "the full restore at {estimate}.",
    "reb_1": "Bring back a Pinnacle server of the same version, with an empty volume mounted on {root} and reachable "
             "from the rtvault server. Do not start Pinnacle.",
    "reb_2": "On the rtvault server (or a standby server with rtvault installed and a copy of {config}), check that "
             "the store answers and list its backups:",
    "reb_catalog": "If rtvault's catalog is lost too (a standby server, the catalog database lost): rebuild it from "
                   "the stores. The catalog's users (passwords and roles), tokens and removable disks come back with "
                   "catalog rebuild, from the newest catalog backup written to an encrypted or rtvault-only store; "
                   "its result names the users given back:",
    "reb_3": "Restore the whole database from the primary store {primary} (Institution files included):",
    "reb_4": "If {primary} is lost or damaged, restore from the copy {copy}:",
    "reb_5": "Exit code 0: everything is restored. Exit code 9: what could not be read is named; restore those "
             "patients from another copy (--store) or an archive (--from-archive).",
    "reb_6": "Check the restored database (patient count, against the last backup):",
    "reb_7": "Give the files back to Pinnacle's user (original owner and permissions), start Pinnacle, open three "
             "recent patients and check plans, images and doses.",
    "reb_8": "Start the backups again, then the service:",
    "failover_title": "Fail over to the copy, and back",
    "failover_intro": "When the primary store {primary} is lost (disk, NAS, room) and backups must go on.",
    "no_copy": "No copy is configured: no failover is possible. Add a store with copy_of = \"{primary}\".",
    "fo_1": "Confirm that the store is what is lost (the backup, replication and space checks):",
    "fo_2": "Fail over: the copy {copy} becomes the store that backups write to (recorded, alerted):",
    "fo_3": "Check that a backup goes through on {copy}:",
    "fo_4": "If the copy {copy} is kept by another host that pulls its copy: that host runs the backups during the "
            "failover (the same command, on its configuration).",
    "fo_5": "Repair or replace {primary} ({where}).",
    "fo_6": "Fail back: copy onto {primary} what was written meanwhile and restore the normal roles, both sides "
            "checked:",
    "fo_7": "Check, then print this document again:",
    "disks_title": "Removable disks",
    "disks_intro": "The disks the catalog knows. Write down by hand where each one is kept.",
    "disks_head": "Disk|Last mounted at|Seen|Verified|Archives|Kept where",
    "no_disks": "No removable disk is registered.",
    "disks_cmd": "The current list, and whether each disk is mounted:",
    "disks_verify": "A disk brought back: mount it at its place and read it all again:",
    "page": "page",
    "a_date": "<YYYY-MM-DD>",
    "a_name": "<NAME>",
}

TEXTS = {"fr": FR, "en": EN}
