"""The health checks that read the catalog (and the source): the source's sanity (`source:<source>`), copies
held by too few stores (`copies`) and the last run of each job (`jobs`). SQL aggregates over the catalog's
indexes only: they stay fast on 100,000 patients. And the copies of destroyed archives still to remove
(`destruction`)."""

from __future__ import annotations

import os
from pathlib import Path

from rtvault.catalog import destructions, stores
from rtvault.catalog.indexer import store_id
from rtvault.catalog.runs import last_runs
from rtvault.catalog.volumes import STORE_PREFIX
from rtvault.config.settings import LEGACY_SOURCE, PHYSICS_KIND
from rtvault.errors import RtvaultError, SourceRefused, StoreError
from rtvault.jobs.health_survey import Survey, primary_stores
from rtvault.jobs.health_types import Check, Status
from rtvault.jobs.source import PHYSICS_MARK, check_source
from rtvault.pinnacle.discover import INSTITUTION_DIR, MOUNT_DIR, PATIENT_DIR
from rtvault.store.repository import parse_manifest, snapshot_key
from rtvault.utc import span

FAILED = ("failed", "unavailable")
CATALOG_FIX = ("check [catalog] url and that its database answers; `rtvault catalog rebuild` refills a damaged "
               "catalog from the stores")


def _folders(path: str, pattern: object) -> list[str]:
    with os.scandir(path) as entries:
        return [e.path for e in entries if pattern.match(e.name) and e.is_dir(follow_symlinks=False)]  # type: ignore[attr-defined]


def count_patients(root: Path) -> int:
    """Patient directories as a backup finds them: Institution_I/Mount_M/Patient_P, and Patient_P at the root
    (the oldest layout); never through a symbolic link. OSError when a folder cannot be listed."""
    count = len(_folders(str(root), PATIENT_DIR))
    for institution in _folders(str(root), INSTITUTION_DIR):
        for mount in _folders(institution, MOUNT_DIR):
            count += len(_folders(mount, PATIENT_DIR))
    return count


def _last_count(survey: Survey, source: str) -> tuple[int, str] | None:
    """The patient count of the source's newest snapshot and its id: from the catalog when it indexed that
    snapshot, else from its manifest (the one manifest read). None when there is no snapshot; StoreError when
    unreadable."""
    newest, unreadable = survey.newest(primary_stores(survey.config), source)
    if newest is None:
        if unreadable:
            raise StoreError("; ".join(unreadable))
        return None
    _time, snapshot_id, store = newest
    try:
        row = survey.catalog().one("SELECT COUNT(*) FROM locations WHERE store = ? AND kind = 'snapshot' AND ref = ?",
                                   (store_id(survey.store(store)), snapshot_id))
        if row and row[0]:
            return int(row[0]), snapshot_id
    except RtvaultError:
        pass  # the manifest says it as well
    try:
        manifest = parse_manifest(survey.store(store).backend.get(snapshot_key(snapshot_id)))
    except ValueError as error:
        raise StoreError(f"snapshot {snapshot_id} in {store} is damaged: {error}") from None
    return len(manifest.patients), snapshot_id


def _physics_check(name: str, root: Path) -> Check:
    """A physics tree is there when its machine database is: what the backup checks before recording it."""
    if not (root / PHYSICS_MARK).is_dir():
        return Check(name, Status.CRITICAL, None, None,
                     f"source {root} has no {PHYSICS_MARK} folder: it is not a Pinnacle physics tree "
                     "(PinnacleSiteData); is the share mounted, and is root the folder that holds Physics/?")
    machines = sum(1 for _ in (root / PHYSICS_MARK).glob("Machine.*/Pinnacle.Machine"))
    return Check(name, Status.OK if machines else Status.WARNING, machines, None,
                 f"physics tree {root} holds {machines} machine(s) in {PHYSICS_MARK}"
                 + ("" if machines else ": no Machine.<n>/Pinnacle.Machine in it; is it complete?"))


def source_check(survey: Survey, source: str) -> Check | None:
    """The source is mounted, readable and a Pinnacle database, and has not lost patients since the last
    snapshot (beyond [backup] max_shrink, the next backup would refuse to run); a physics source holds its
    Physics/ReadOnlyMachineDB. None when no root is set."""
    settings = survey.config.all_sources().get(source)
    root, name = (settings.root if settings else None), f"source:{source}"
    table = "[source.pinnacle]" if source == LEGACY_SOURCE else f"[sources.{source}]"
    if root is None:
        return None
    try:
        check_source(root, f"{table} root")
        if settings is not None and settings.kind == PHYSICS_KIND:
            return _physics_check(name, root)
        count = count_patients(root)
    except SourceRefused as error:
        return Check(name, Status.CRITICAL, None, None, f"{error}: mount it again (or correct {table} root)")
    except OSError as error:
        return Check(name, Status.CRITICAL, None, None,
                     f"source {root} cannot be listed ({error.strerror}): give the user running rtvault read access")
    if count == 0:
        return Check(name, Status.CRITICAL, 0, None, f"source {root} holds no Pinnacle patient directory "
                     "(Institution_N/Mount_M/Patient_P): is the right share mounted there?")
    try:
        last = _last_count(survey, source)
    except RtvaultError as error:
        return Check(name, Status.UNKNOWN, count, None,
                     f"source {root} holds {count} patients; cannot compare with the last snapshot: {error}")
    if last is None:
        return Check(name, Status.OK, count, None, f"source {root} holds {count} patients (no snapshot yet)")
    before, snapshot_id = last
    shrink = survey.config.backup.max_shrink
    least = before * (1 - shrink)
    if count < least:
        return Check(name, Status.WARNING, count, round(least, 1),
                     f"source {root} holds {count} patients, down from {before} in snapshot {snapshot_id} (more "
                     f"than [backup] max_shrink {shrink:.0%} fewer), so the next backup will refuse to run: check that "
                     "the share is complete; if the patients were deleted on purpose, run `rtvault backup "
                     "--allow-shrink` once")
    return Check(name, Status.OK, count, round(least, 1),
                 f"source {root} holds {count} patients ({before} in snapshot {snapshot_id}; WARNING below "
                 f"{least:.0f}, [backup] max_shrink {shrink:.0%})")


def _among(names: list[str]) -> str:
    return f"({', '.join('?' * len(names))})" if names else "(NULL)"


def _short(survey: Survey, kind: str, group: str, good: list[str]) -> tuple[int, int]:
    """(items on fewer than two stores, items on fewer than two verified stores) of one kind of location,
    leaving out those first seen within the replication check's warning level (awaiting replication)."""
    ids = survey.store_ids()  # the catalog knows stores by id; an unreadable one's copies do not count
    stores, good = list(ids.values()), [ids.get(name, name) for name in good]
    grace = survey.since(survey.config.health.replication_max_lag_s / 2)
    row = survey.catalog().one(
        "SELECT COALESCE(SUM(CASE WHEN held < 2 THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN good < 2 THEN 1 ELSE 0 END), 0) FROM ("
        f"SELECT COUNT(DISTINCT store) AS held, COUNT(DISTINCT CASE WHEN store IN {_among(good)} THEN store END) "
        f"AS good FROM locations WHERE kind = ? AND (store IN {_among(stores)} OR store LIKE ?) "
        f"GROUP BY {group} HAVING MIN(time) < ?) items",
        (*good, kind, *stores, STORE_PREFIX + "%", grace))
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _short_receipts(survey: Survey, good: list[str]) -> tuple[list[str], int, int]:
    """The DICOM node's receipts (`indexed` rows of kind `receipt`, one per store holding it) first indexed more
    than the grace ago: (those on fewer than two stores, the distinct received objects they name, how many are on
    fewer than two verified stores)."""
    ids = survey.store_ids()
    stores, good = list(ids.values()), [ids.get(name, name) for name in good]
    grace = survey.since(survey.config.health.replication_max_lag_s / 2)
    catalog = survey.catalog()
    held = f"FROM indexed WHERE kind = 'receipt' AND store IN {_among(stores)} GROUP BY ref HAVING MIN(time) < ?"
    rows = catalog.execute(
        f"SELECT ref, COUNT(DISTINCT store), COUNT(DISTINCT CASE WHEN store IN {_among(good)} THEN store END) "
        f"{held} AND (COUNT(DISTINCT store) < 2 OR COUNT(DISTINCT CASE WHEN store IN {_among(good)} THEN store END) "
        "< 2) ORDER BY ref", (*good, *stores, grace, *good))
    short = [str(ref) for ref, count, _ in rows if count < 2]
    unverified = sum(1 for _, _, verified in rows if verified < 2)
    objects = 0
    if short:
        found = catalog.one(f"SELECT COUNT(DISTINCT hash) FROM dicom_instances WHERE receipt IN (SELECT ref {held} "
                            "AND COUNT(DISTINCT store) < 2)", (*stores, grace))
        objects = int(found[0]) if found else 0
    return short, objects, unverified


def _receipts_text(short: list[str], objects: int) -> str:
    """`2 DICOM receipt(s) of the DICOM node (5 received object(s): receipt A, receipt B)`."""
    named = ", ".join(f"receipt {r}" for r in short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
    return f"{len(short)} DICOM receipt(s) of the DICOM node ({objects} received object(s): {named})"


def copies_check(survey: Survey) -> Check:
    """Patient versions, archives and the DICOM node's receipts on fewer than two stores (CRITICAL: received
    objects are patient data as archives are), or any of them on fewer than two stores whose verification is up
    to date (WARNING; `Survey.verification_current`; volumes verified within [verify] cycle_days)."""
    config = survey.config
    good = [s for s in config.stores if survey.verification_current(s)]
    grace = span(config.health.replication_max_lag_s / 2)
    try:
        volumes = survey.catalog().execute("SELECT label FROM volumes WHERE last_verified >= ?",
                                           (survey.since(config.verify.cycle_days * 86400),))
        good += [STORE_PREFIX + label for (label,) in volumes]
        versions, unverified_versions = _short(survey, "snapshot", "version", good)
        archives, unverified_archives = _short(survey, "archive", "ref", good)
        receipts, received, unverified_receipts = _short_receipts(survey, good)
    except RtvaultError as error:
        return Check("copies", Status.UNKNOWN, None, None, f"cannot count the copies: {error} ({CATALOG_FIX})")
    unverified = unverified_versions + unverified_archives + unverified_receipts
    fix = "configure a second store with copy_of, then run `rtvault replicate`" if len(config.stores) < 2 \
        else "run `rtvault replicate` and read its error"
    also = f"; so are {_receipts_text(receipts, received)}" if receipts else ""
    if versions or archives:
        return Check("copies", Status.CRITICAL, unverified, 0.0,
                     f"{versions} patient version(s) and {archives} archive(s) older than {grace} are on fewer than "
                     f"two stores{also}: {fix} (`rtvault status` lists them)")
    if receipts:
        return Check("copies", Status.CRITICAL, unverified, 0.0,
                     f"{_receipts_text(receipts, received)} older than {grace} are on fewer than two stores: {fix} "
                     "(`rtvault status` lists them)")
    if unverified:
        return Check("copies", Status.WARNING, unverified, 0.0,
                     f"{unverified_versions} patient version(s), {unverified_archives} archive(s) and "
                     f"{unverified_receipts} DICOM receipt(s) older than {grace} have fewer than two verified copies "
                     "(a store whose verification is late does not count): run `rtvault verify` (see the verify "
                     "checks; `rtvault status` lists them)")
    return Check("copies", Status.OK, 0, 0.0,
                 f"every patient version, archive and DICOM receipt older than {grace} is on two verified stores or "
                 "more")


def destruction_check(survey: Survey) -> Check:
    """Copies of legally destroyed archives still to remove (a disk not mounted since, a store that did not
    answer): WARNING while any is pending, naming each."""
    config = survey.config
    try:
        catalog = survey.catalog()
        pending = destructions.pending(catalog)
        labels = stores.labels(catalog, {sid: name for name, sid in survey.store_ids().items()},
                               names=list(config.stores), site=config.site.name) if pending else {}
    except RtvaultError as error:
        return Check("destruction", Status.UNKNOWN, None, None,
                     f"cannot read the pending destructions: {error} ({CATALOG_FIX})")
    if not pending:
        return Check("destruction", Status.OK, 0, None, "no copy of a destroyed archive is left to remove")
    where = sorted({f"{c.kind} {c.shown(labels, config.site.name)}" for c in pending})
    return Check("destruction", Status.WARNING, len(pending), None,
                 f"{len(pending)} cop{'y' if len(pending) == 1 else 'ies'} of legally destroyed archives still to "
                 f"remove, on {', '.join(where)}: plug each disk in and run `rtvault volume verify LABEL`, bring "
                 "each store back and run `rtvault archive delete --pending`"
                 + (" (`rtvault dicom delete --pending` for received DICOM objects, `dicom-...`)"
                    if any(destructions.is_received(c.archive) for c in pending) else "")
                 + " (`rtvault status` lists them)")


def jobs_check(survey: Survey) -> Check:
    """The last run of each job the run journal recorded: WARNING when it failed."""
    try:
        latest = last_runs(survey.catalog())
    except RtvaultError as error:
        return Check("jobs", Status.UNKNOWN, None, None, f"cannot read the run journal: {error} ({CATALOG_FIX})")
    last = {job: (row.result, row.error, row.ended) for job, row in sorted(latest.items())}
    if not last:
        return Check("jobs", Status.OK, 0, 0.0, "no run recorded yet (`rtvault daemon` records every run)")
    failed = {job: found for job, found in last.items() if found[0] in FAILED}
    if failed:
        said = "; ".join(f"the last {job} run {result} at {ended}: {error or 'no error recorded'}"
                         for job, (result, error, ended) in failed.items())
        return Check("jobs", Status.WARNING, len(failed), 0.0,
                     f"{said} (read `rtvault runs --job {next(iter(failed))}`, correct the cause, the next run "
                     "clears this)")
    return Check("jobs", Status.OK, 0, 0.0, f"the last run of each job succeeded ({', '.join(last)})")
