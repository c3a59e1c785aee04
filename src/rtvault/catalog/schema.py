"""The catalog's schema as named, ordered migrations, each applied once in a transaction and recorded.

The patient tables are an index rebuilt from the stores (`rtvault catalog rebuild`); users, tokens, sessions
and the audit trail exist only here and survive a rebuild.
"""

from __future__ import annotations

from rtvault.catalog.db import Catalog
from rtvault.utc import now_iso

# Tables that `catalog rebuild` empties and refills from the stores, children first.
INDEX_TABLES = ("dicom_instances", "locations", "plans", "image_sets", "terms", "version_machines", "versions",
                "variants", "vocabulary",
                "physicians", "indexed", "patients", "runs", "health_events")

# A patient's site and source: those of its newest location that names one (a snapshot's: the source's site
# and name; an archive's: those of the snapshot it was made from; else the site of the store holding it).
PLACE = ("UPDATE patients SET "
         "site = COALESCE((SELECT l.site FROM locations l WHERE l.patient = patients.id AND l.site <> '' "
         "ORDER BY l.time DESC, l.id DESC LIMIT 1), ''), "
         "source = COALESCE((SELECT l.source FROM locations l WHERE l.patient = patients.id AND l.source <> '' "
         "ORDER BY l.time DESC, l.id DESC LIMIT 1), '')")

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_patients", [
        """CREATE TABLE patients (
            id {pk},
            key TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL,
            patient_id TEXT NOT NULL DEFAULT '',
            mrn TEXT NOT NULL DEFAULT '',
            mrn_fold TEXT NOT NULL DEFAULT '',
            last_name TEXT NOT NULL DEFAULT '',
            first_name TEXT NOT NULL DEFAULT '',
            middle_name TEXT NOT NULL DEFAULT '',
            birth_date TEXT,
            birth_year INTEGER,
            gender TEXT NOT NULL DEFAULT '',
            physician TEXT NOT NULL DEFAULT '',
            physician_fold TEXT NOT NULL DEFAULT '',
            diagnosis TEXT NOT NULL DEFAULT '',
            comment TEXT NOT NULL DEFAULT '',
            last_modified TEXT,
            archived_at TEXT,
            keep_until TEXT,
            status TEXT NOT NULL DEFAULT 'deleted',
            sort_name TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX patients_mrn ON patients (mrn_fold)",
        "CREATE INDEX patients_patient_id ON patients (patient_id)",
        "CREATE INDEX patients_birth ON patients (birth_date)",
        "CREATE INDEX patients_year_physician ON patients (birth_year, physician_fold)",
        "CREATE INDEX patients_physician ON patients (physician_fold)",
        "CREATE INDEX patients_status ON patients (status, sort_name)",
        "CREATE INDEX patients_sort ON patients (sort_name)",
        "CREATE INDEX patients_modified ON patients (last_modified)",
        "CREATE INDEX patients_archived ON patients (archived_at)",
        # Every searchable word of a patient: field is last, first, plan, text.
        "CREATE TABLE terms (field TEXT NOT NULL, term TEXT NOT NULL, patient INTEGER NOT NULL)",
        "CREATE INDEX terms_lookup ON terms (field, term, patient)",
        "CREATE INDEX terms_patient ON terms (patient)",
        # Distinct terms, and for name fields their one-deletion neighbourhood (typo tolerance).
        "CREATE TABLE vocabulary (field TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (field, term))",
        "CREATE TABLE variants (field TEXT NOT NULL, variant TEXT NOT NULL, term TEXT NOT NULL, "
        "PRIMARY KEY (field, variant, term))",
        "CREATE TABLE physicians (fold TEXT PRIMARY KEY, name TEXT NOT NULL)",
        """CREATE TABLE versions (
            id {pk},
            patient INTEGER NOT NULL REFERENCES patients (id),
            tree TEXT NOT NULL,
            last_modified TEXT,
            files INTEGER NOT NULL DEFAULT 0,
            bytes BIGINT NOT NULL DEFAULT 0,
            complete INTEGER NOT NULL DEFAULT 1,
            UNIQUE (patient, tree)
        )""",
        """CREATE TABLE locations (
            id {pk},
            version INTEGER NOT NULL REFERENCES versions (id),
            patient INTEGER NOT NULL REFERENCES patients (id),
            store TEXT NOT NULL,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            time TEXT NOT NULL,
            file TEXT NOT NULL DEFAULT '',
            volume TEXT NOT NULL DEFAULT '',
            damaged INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX locations_patient ON locations (patient)",
        "CREATE INDEX locations_ref ON locations (store, kind, ref)",
        "CREATE INDEX locations_file ON locations (file)",
        "CREATE TABLE plans (patient INTEGER NOT NULL, name TEXT NOT NULL)",
        "CREATE INDEX plans_patient ON plans (patient)",
        "CREATE TABLE image_sets (patient INTEGER NOT NULL, name TEXT NOT NULL, modality TEXT NOT NULL)",
        "CREATE INDEX image_sets_modality ON image_sets (modality, patient)",
        "CREATE INDEX image_sets_patient ON image_sets (patient)",
        # What has been indexed: one row per snapshot or archive of each store.
        "CREATE TABLE indexed (store TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, time TEXT NOT NULL, "
        "PRIMARY KEY (store, kind, ref))",
    ]),
    ("0002_users_and_audit", [
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            password_hash TEXT,
            source TEXT NOT NULL DEFAULT 'local',
            created TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE TABLE tokens (hash TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES users (name), "
        "label TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, last_used TEXT)",
        "CREATE TABLE sessions (hash TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES users (name), "
        "csrf TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL, address TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE login_failures (address TEXT NOT NULL, username TEXT NOT NULL, time TEXT NOT NULL)",
        "CREATE INDEX login_failures_address ON login_failures (address, time)",
        """CREATE TABLE audit (
            id {pk},
            time TEXT NOT NULL,
            username TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            patient TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL DEFAULT 'ok'
        )""",
        "CREATE INDEX audit_time ON audit (time)",
        "CREATE INDEX audit_user ON audit (username, time)",
        "CREATE INDEX audit_patient ON audit (patient, time)",
    ]),
    ("0003_audit_append_only", [
        "@sqlite CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "@sqlite CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "@postgresql CREATE FUNCTION audit_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$ LANGUAGE plpgsql",
        "@postgresql CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    ]),
    # PostgreSQL compares text with the database's collation, where `lef` < `lefa` < `lef` || chr(127) may not
    # hold (ICU and glibc locales ignore punctuation and case at first): the columns searched by range or
    # sorted for display compare bytes, as SQLite's BINARY does, whatever the database was created with.
    ("0004_postgresql_byte_order", [
        *(f'@postgresql ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE "C"' for table, column in (
            ("terms", "term"), ("patients", "sort_name"), ("patients", "last_modified"),
            ("patients", "archived_at"), ("patients", "birth_date"), ("versions", "last_modified"),
            ("locations", "file"), ("locations", "volume"), ("locations", "time"), ("indexed", "time"),
            ("audit", "time"), ("sessions", "expires"), ("login_failures", "time"))),
        *(f"@postgresql ALTER TABLE {table} ALTER COLUMN {column} TYPE BIGINT" for table, column in (
            ("terms", "patient"), ("versions", "patient"), ("locations", "version"), ("locations", "patient"),
            ("plans", "patient"), ("image_sets", "patient"))),
    ]),
    # Search at a million patients: a candidate's name terms are read through (patient, field, term), never by
    # scanning every patient who shares a common name; status with a date range narrows on both columns.
    ("0005_search_indexes", [
        "CREATE INDEX terms_patient_field ON terms (patient, field, term)",
        "DROP INDEX terms_patient",
        "CREATE INDEX patients_status_archived ON patients (status, archived_at)",
        "CREATE INDEX patients_status_modified ON patients (status, last_modified)",
    ]),
    # A name typed alone is the commonest search: with each term's patient sort key beside it, its page is read
    # in display order from one index instead of sorting every patient sharing a common name.
    ("0006_terms_in_name_order", [
        "@sqlite ALTER TABLE terms ADD COLUMN sort_name TEXT NOT NULL DEFAULT ''",
        "@postgresql ALTER TABLE terms ADD COLUMN sort_name TEXT COLLATE \"C\" NOT NULL DEFAULT ''",
        "UPDATE terms SET sort_name = (SELECT p.sort_name FROM patients p WHERE p.id = terms.patient)",
        "CREATE INDEX terms_ordered ON terms (field, term, sort_name, patient)",
    ]),
    # Removable disks (copies/volumes.py): not in any store, so not in INDEX_TABLES; a rebuild keeps them and
    # their copies are shown again as locations mirrored from the stores' (catalog/volumes.py).
    ("0007_volumes", [
        "CREATE TABLE volumes (label TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, path TEXT NOT NULL, "
        "created TEXT NOT NULL, last_seen TEXT, last_verified TEXT)",
        "CREATE TABLE volume_archives (volume TEXT NOT NULL REFERENCES volumes (label), archive TEXT NOT NULL, "
        "file TEXT NOT NULL, bytes BIGINT NOT NULL, copied TEXT NOT NULL, verified TEXT, "
        "PRIMARY KEY (volume, archive))",
    ]),
    # The prefix shortcut walks the distinct names of a prefix range in byte order, as the terms are.
    ("0008_vocabulary_byte_order", [
        '@postgresql ALTER TABLE vocabulary ALTER COLUMN term TYPE TEXT COLLATE "C"',
    ]),
    # Rewriting a row without UPDATE or DELETE: SQLite's REPLACE (`REPLACE INTO`, `INSERT OR REPLACE`) deletes
    # the conflicting row without firing delete triggers, so an insert naming an existing id is refused before
    # it happens; PostgreSQL's TRUNCATE fires no row trigger, so a statement trigger refuses it.
    ("0009_audit_no_rewrite", [
        "@sqlite CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit "
        "WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id) "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "@postgresql CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    ]),
    # Sign-in attempts counted before the password is checked, each with an id so that one can be taken back
    # (catalog/logins.py); repeated refusals of a locked-out address are counted in one row.
    ("0010_login_attempts", [
        "DROP TABLE login_failures",
        "@sqlite CREATE TABLE login_attempts (id {pk}, address TEXT NOT NULL, username TEXT NOT NULL, "
        "time TEXT NOT NULL)",
        "@postgresql CREATE TABLE login_attempts (id {pk}, address TEXT NOT NULL, username TEXT NOT NULL, "
        'time TEXT COLLATE "C" NOT NULL)',
        "CREATE INDEX login_attempts_address ON login_attempts (address, time)",
        "@sqlite CREATE TABLE login_lockouts (address TEXT PRIMARY KEY, username TEXT NOT NULL, "
        "started TEXT NOT NULL, latest TEXT NOT NULL, refused INTEGER NOT NULL DEFAULT 0)",
        "@postgresql CREATE TABLE login_lockouts (address TEXT PRIMARY KEY, username TEXT NOT NULL, "
        'started TEXT COLLATE "C" NOT NULL, latest TEXT COLLATE "C" NOT NULL, refused INTEGER NOT NULL DEFAULT 0)',
    ]),
    # A session's CSRF token is now an HMAC of its cookie (users.csrf_token): the tokens kept in clear go.
    # The column stays, empty (dropping a column needs SQLite 3.35).
    ("0011_csrf_not_stored", [
        "UPDATE sessions SET csrf = ''",
    ]),
    # Birth year + physician at a million patients: with the sort key in the index, the page's ids come from
    # the index alone (in name order when both are one value) instead of sorting every match's patient row.
    ("0012_year_physician_in_name_order", [
        "CREATE INDEX patients_year_physician_sort ON patients (birth_year, physician_fold, sort_name)",
        "DROP INDEX patients_year_physician",
    ]),
    # The run journal (jobs/journal.py): one row per run record, indexed from the stores' journal/ files (so a
    # rebuild reads them again: in INDEX_TABLES). `id` is the record's writer/seq, the same on every store.
    # Store samples: each store's disk space, taken by the daemon at every health interval, for the forecast
    # of the day it is full; kept by a rebuild (they are in no store).
    ("0013_runs_and_store_samples", [
        "CREATE TABLE runs (id TEXT PRIMARY KEY, job TEXT NOT NULL, trigger TEXT NOT NULL, started TEXT NOT NULL, "
        "ended TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL, host TEXT NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX runs_job_started ON runs (job, started)",
        "CREATE INDEX runs_started ON runs (started)",
        "CREATE TABLE store_samples (store TEXT NOT NULL, time TEXT NOT NULL, total_bytes BIGINT NOT NULL, "
        "free_bytes BIGINT NOT NULL, store_bytes BIGINT, PRIMARY KEY (store, time))",
    ]),
    # Health events: each change of a health check's status, from the journal's alert records (a record holds
    # the checks that changed in one evaluation, `seq` numbers them), for the monthly report's alerts.
    ("0014_health_events", [
        "CREATE TABLE health_events (id TEXT NOT NULL, seq INTEGER NOT NULL, check_name TEXT NOT NULL, "
        "status TEXT NOT NULL, previous TEXT, at TEXT NOT NULL, message TEXT NOT NULL, notified TEXT NOT NULL, "
        "host TEXT NOT NULL, PRIMARY KEY (id, seq))",
        "CREATE INDEX health_events_at ON health_events (at)",
    ]),
    # The audit table becomes the index of the journal's action entries (the segment and the entry's place in
    # it); rows from before have none.
    ("0015_audit_journal", [
        "ALTER TABLE audit ADD COLUMN journal_id TEXT",
        "ALTER TABLE audit ADD COLUMN journal_entry INTEGER",
        "CREATE INDEX audit_journal ON audit (journal_id)",
    ]),
    # `rtvault reconcile` finds the patients of the Pinnacle source by their path (catalog/holdings.py): a lookup
    # per patient of the source, not a pass over every patient of the catalog.
    ("0016_patients_path", [
        "CREATE INDEX patients_path ON patients (path)",
    ]),
    # Stores known by the id of their rtvault-store.json, not by the name a configuration gives them, so that
    # sites sharing one catalog may name their stores alike (catalog/stores.py). The rows written before hold
    # names: renamed to ids when a configuration naming those stores opens the catalog (`stores.adopt`).
    ("0017_store_ids", [
        "CREATE TABLE stores (id TEXT PRIMARY KEY, name TEXT NOT NULL, site TEXT NOT NULL DEFAULT '', "
        "seen TEXT NOT NULL)",
    ]),
    # Legal destruction (jobs/destruction.py): each archive destroyed, its certificate, and every copy it had (a
    # store or a removable disk) with the time it was removed, NULL while pending. Not in INDEX_TABLES: a rebuild
    # keeps them (and `archive delete --pending` adds back what the stores' archives/destroyed/ records say).
    ("0018_destructions", [
        "CREATE TABLE destructions (archive TEXT PRIMARY KEY, decided TEXT NOT NULL, by_user TEXT NOT NULL, "
        "reason TEXT NOT NULL, certificate TEXT NOT NULL, completed TEXT)",
        "CREATE TABLE destruction_copies (archive TEXT NOT NULL REFERENCES destructions (archive), "
        "kind TEXT NOT NULL, place TEXT NOT NULL, removed TEXT, note TEXT NOT NULL DEFAULT '', "
        "PRIMARY KEY (archive, kind, place))",
    ]),
    # Each snapshot's source ([sources.<name>]): a patient is active when the newest snapshot of its own source in
    # a store holds it, whatever the other sources' snapshots (catalog/indexer.py `refresh_status`). Rows written
    # before are of the source `pinnacle`, as their manifests are; a rebuild fills it from the manifests anyway.
    ("0019_indexed_source", [
        "ALTER TABLE indexed ADD COLUMN source TEXT NOT NULL DEFAULT 'pinnacle'",
    ]),
    # The machines the plans of each patient version name (their plan.Pinnacle.Machines, recorded by the reader in
    # the tree's patient record): which patients were planned on a machine, and which physics a version needs.
    ("0020_version_machines", [
        "CREATE TABLE version_machines (version INTEGER NOT NULL REFERENCES versions (id), "
        "patient INTEGER NOT NULL REFERENCES patients (id), machine TEXT NOT NULL, PRIMARY KEY (version, machine))",
        "CREATE INDEX version_machines_machine ON version_machines (machine, patient)",
        "CREATE INDEX version_machines_patient ON version_machines (patient)",
    ]),
    # A store's copy of a destroyed archive is known by the store's id (catalog/destructions.py), and each copy
    # says which configuration listed it (`[site] name` and host): a copy recorded by name, its store's id
    # unknown then, is completed by that site only. Rows from before have NULL: they name a store by its
    # configured name and are renamed to its id when a configuration naming it opens the catalog
    # (`stores.adopt`).
    ("0021_destruction_copy_sites", [
        "ALTER TABLE destruction_copies ADD COLUMN site TEXT",
        "ALTER TABLE destruction_copies ADD COLUMN host TEXT",
    ]),
    # Sites and sources in the catalog: each location's (a snapshot's manifest `site` and `source_name`; an
    # archive's from its index; else the site of the store holding it), each patient's (`PLACE`: its newest
    # location's), searched by `--site` and `--source`; and the sites a user is limited to (JSON list, '' for
    # every site). Rows written before: the snapshots' source from `indexed`, the site of their store; a
    # manifest's own site is read by `catalog rebuild`.
    ("0022_sites", [
        "ALTER TABLE locations ADD COLUMN site TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE locations ADD COLUMN source TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE patients ADD COLUMN site TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE patients ADD COLUMN source TEXT NOT NULL DEFAULT ''",
        "UPDATE locations SET source = COALESCE((SELECT i.source FROM indexed i WHERE i.store = locations.store "
        "AND i.kind = 'snapshot' AND i.ref = locations.ref), '') WHERE kind = 'snapshot'",
        "UPDATE locations SET site = COALESCE((SELECT s.site FROM stores s WHERE s.id = locations.store), '')",
        # A patient's newest locations first: `PLACE` runs for every patient a snapshot names, at each sync.
        "DROP INDEX locations_patient",
        "CREATE INDEX locations_patient ON locations (patient, time)",
        PLACE,
        "CREATE INDEX patients_site ON patients (site, sort_name)",
        "CREATE INDEX patients_source ON patients (source, sort_name)",
        "ALTER TABLE users ADD COLUMN sites TEXT NOT NULL DEFAULT ''",
    ]),
    # What the DICOM node received (catalog/dicom.py): one row per instance per store, from the stores' receipts
    # (`receipt` is the receipt's id, or `spool:<id>` until the receiver seals it); `patient` is the catalog
    # patient it belongs to (a Pinnacle patient of the same site and MRN, else one of its own), NULL until linked.
    ("0023_dicom_instances", [
        """CREATE TABLE dicom_instances (
            id {pk},
            store TEXT NOT NULL,
            receipt TEXT NOT NULL,
            hash TEXT NOT NULL,
            size INTEGER NOT NULL,
            sop_class TEXT NOT NULL,
            sop_instance TEXT NOT NULL,
            transfer_syntax TEXT NOT NULL DEFAULT '',
            patient INTEGER,
            patient_id TEXT NOT NULL DEFAULT '',
            patient_name TEXT NOT NULL DEFAULT '',
            issuer TEXT NOT NULL DEFAULT '',
            birth_date TEXT NOT NULL DEFAULT '',
            sex TEXT NOT NULL DEFAULT '',
            study_uid TEXT NOT NULL,
            study_date TEXT NOT NULL DEFAULT '',
            study_time TEXT NOT NULL DEFAULT '',
            study_description TEXT NOT NULL DEFAULT '',
            study_id TEXT NOT NULL DEFAULT '',
            accession TEXT NOT NULL DEFAULT '',
            series_uid TEXT NOT NULL,
            series_number INTEGER,
            series_description TEXT NOT NULL DEFAULT '',
            modality TEXT NOT NULL DEFAULT '',
            instance_number INTEGER,
            plan_label TEXT NOT NULL DEFAULT '',
            roi_names TEXT NOT NULL DEFAULT '',
            dose_type TEXT NOT NULL DEFAULT '',
            received TEXT NOT NULL,
            calling_ae TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT 'network',
            site TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX dicom_instances_receipt ON dicom_instances (store, receipt)",
        "CREATE INDEX dicom_instances_hash ON dicom_instances (hash)",
        "CREATE INDEX dicom_instances_sop ON dicom_instances (sop_instance)",
        "CREATE INDEX dicom_instances_study ON dicom_instances (study_uid)",
        "CREATE INDEX dicom_instances_series ON dicom_instances (series_uid)",
        "CREATE INDEX dicom_instances_patient_id ON dicom_instances (patient_id)",
        "CREATE INDEX dicom_instances_patient ON dicom_instances (patient)",
        "CREATE INDEX dicom_instances_sender ON dicom_instances (calling_ae, received)",
    ]),
    # DICOM patients (catalog/dicom_patients.py): each instance's PatientID folded as MRNs are (`patient_fold`), so
    # that the instances of a Pinnacle patient's MRN are found when it appears; the rows indexed before are linked
    # again at the next sync (`patient` NULL, their fold computed then).
    ("0024_dicom_patient_links", [
        "ALTER TABLE dicom_instances ADD COLUMN patient_fold TEXT NOT NULL DEFAULT ''",
        "UPDATE dicom_instances SET patient = NULL",
        "CREATE INDEX dicom_instances_fold ON dicom_instances (patient_fold)",
    ]),
    # The DICOM node's queries on PostgreSQL as on SQLite (catalog/dicom.py): the text of received instances
    # compared by range, sorted or MAXed (dates, times, UIDs, names, reception times) in byte order, whatever the
    # database's collation (as 0004 did for patients); a patient and an object size beyond 32 bits; and the
    # PatientName folded by Python (`name_fold`: every letter, not SQLite's ASCII LOWER), for C-FIND's matching
    # without case. Rows indexed before get LOWER's fold here, Python's at `catalog rebuild`.
    ("0025_dicom_byte_order", [
        *(f'@postgresql ALTER TABLE dicom_instances ALTER COLUMN {column} TYPE TEXT COLLATE "C"'
          for column in ("store", "receipt", "hash", "sop_class", "sop_instance", "transfer_syntax", "patient_id",
                         "patient_name", "issuer", "birth_date", "sex", "study_uid", "study_date", "study_time",
                         "study_description", "study_id", "accession", "series_uid", "series_description",
                         "modality", "plan_label", "roi_names", "dose_type", "received", "calling_ae", "origin",
                         "site", "patient_fold")),
        *(f"@postgresql ALTER TABLE dicom_instances ALTER COLUMN {column} TYPE BIGINT" for column in ("size",
                                                                                                    "patient")),
        "@sqlite ALTER TABLE dicom_instances ADD COLUMN name_fold TEXT NOT NULL DEFAULT ''",
        "@postgresql ALTER TABLE dicom_instances ADD COLUMN name_fold TEXT COLLATE \"C\" NOT NULL DEFAULT ''",
        "UPDATE dicom_instances SET name_fold = LOWER(patient_name)",
        "CREATE INDEX dicom_instances_name ON dicom_instances (name_fold)",
    ]),
]


def _statements(catalog: Catalog, statements: list[str]) -> list[str]:
    chosen = []
    for text in statements:
        if text.startswith("@"):
            dialect, text = text[1:].split(" ", 1)
            if dialect != catalog.dialect:
                continue
        chosen.append(text)
    return chosen


def apply_migrations(catalog: Catalog) -> list[str]:
    """Apply every migration not yet recorded, in order; returns the names applied."""
    catalog.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    done = {row[0] for row in catalog.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, statements in MIGRATIONS:
        if name in done:
            continue
        with catalog.transaction():
            if catalog.one("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)):
                continue  # another process applied it while we waited for the lock
            for text in _statements(catalog, statements):
                catalog.execute(text)
            catalog.execute("INSERT INTO schema_migrations (name, applied) VALUES (?, ?)", (name, now_iso()))
        applied.append(name)
    return applied


def open_catalog(url: str, *, migrate: bool = True) -> Catalog:
    """Connect to the catalog and bring its schema up to date."""
    catalog = Catalog(url)
    if migrate:
        apply_migrations(catalog)
    return catalog
