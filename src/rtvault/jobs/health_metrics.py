"""What `/metrics` exports (web/metrics.py renders it for Prometheus): the health checks, when each job last
succeeded, how long it took, each store's size and free space, and the patients of the catalog by status.

    rtvault_health_status{check}                  0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    rtvault_health_value{check}                   the value a check measured, in its unit (seconds, %, a count)
    rtvault_last_success_timestamp_seconds{job, source | store}
        backup, source: the newest snapshot of the source (any store that is no copy)
        replicate, store: the copy's last replication that left it complete (its copies/ record)
        verify, store: the last complete verification cycle
        other jobs (no source or store): the end of their last `ok` run in the run journal
    rtvault_job_duration_seconds{job}             the last run of each job (run journal)
    rtvault_job_last_run_timestamp_seconds{job}   when it ended
    rtvault_job_last_run_success{job}             1 when its result was ok, else 0
    rtvault_store_up{store}                       1 when the store could be opened
    rtvault_store_snapshots{store}                snapshots it holds
    rtvault_store_bytes{store}                    bytes of the store's files (the daemon's latest sample)
    rtvault_store_free_bytes{store}, rtvault_store_disk_size_bytes{store}   its disk, measured now
    rtvault_patients{status}                      patients of the catalog: active, archived, deleted, received
    rtvault_dicom_last_received_timestamp_seconds{peer}   the newest object received from each [dicom.peers.NAME]
    rtvault_dicom_instances_received{peer}        the distinct instances from it the vault holds (a gauge: legal
                                                  destruction lowers it)
    rtvault_catalog_up                            1 when the catalog could be read
    rtvault_build_info{version}                   1

A store or the catalog that cannot be read leaves its samples out (and its `*_up` at 0); the scrape never fails.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rtvault import __version__
from rtvault.catalog import Catalog
from rtvault.config import Config
from rtvault.copies.replicate import copies_key
from rtvault.errors import RtvaultError
from rtvault.jobs.health import run_checks
from rtvault.jobs.health_dicom import last_received
from rtvault.jobs.health_space import measure, sample_key
from rtvault.jobs.health_survey import Survey, primary_stores, sources
from rtvault.utc import parse

Labels = dict[str, str]
COVERED = ("backup", "replicate", "verify")  # last success told from the stores, per source or store


@dataclass
class Family:
    """One metric: its name, help text and samples (labels, value); every one is a gauge."""

    name: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((labels, float(value)))


def _time(text: object) -> float | None:
    try:
        moment = parse(str(text))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _health(survey: Survey) -> list[Family]:
    status = Family("rtvault_health_status", "Each health check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    value = Family("rtvault_health_value", "The value each health check measured, in its unit: seconds for ages "
                                           "and lags, percent free for space, a count otherwise.")
    for check in run_checks(survey).checks:
        status.add(int(check.status), check=check.name)
        value.add(check.value, check=check.name)
    return [status, value]


def _replicated(survey: Survey, target: str) -> float | None:
    """When the copy's last replication ended complete (its record in the copy), else None."""
    source = survey.config.stores[target].copy_of
    try:
        record = json.loads(survey.store(target).backend.get(copies_key(str(survey.store(source).info.get("id")))))
    except (RtvaultError, ValueError):
        return None
    return _time(record.get("time")) if isinstance(record, dict) and record.get("complete") else None


def _successes(survey: Survey, runs: list[tuple]) -> Family:
    family = Family("rtvault_last_success_timestamp_seconds",
                    "When each job last succeeded (Unix time): backup per source, replicate and verify per store, "
                    "other jobs from the run journal.")
    for source in sources(survey.config):
        newest, _unreadable = survey.newest(primary_stores(survey.config), source)
        family.add(newest[0].timestamp() if newest else None, job="backup", source=source)
    for store, settings in survey.config.stores.items():
        if settings.copy_of:
            family.add(_replicated(survey, store), job="replicate", store=store)
        with contextlib.suppress(RtvaultError):
            family.add(_time(survey.verify_state(store).last_cycle_completed), job="verify", store=store)
    for job, _result, _started, _ended, last_ok in runs:
        if job not in COVERED:
            family.add(_time(last_ok) if last_ok else None, job=job)
    return family


def _stores(survey: Survey) -> list[Family]:
    up = Family("rtvault_store_up", "1 when the store could be opened, else 0.")
    snapshots = Family("rtvault_store_snapshots", "Snapshots the store holds.")
    size = Family("rtvault_store_bytes", "Bytes of the store's files (the daemon's latest sample).")
    free = Family("rtvault_store_free_bytes", "Free bytes on the store's disk (directory stores).")
    disk = Family("rtvault_store_disk_size_bytes", "Size of the store's disk in bytes (directory stores).")
    for store, settings in survey.config.stores.items():
        try:
            snapshots.add(len(survey.snapshots(store)), store=store)
            up.add(1, store=store)
        except RtvaultError:
            up.add(0, store=store)
            continue
        if settings.path is not None:
            try:
                measured = measure(settings.path)
                free.add(measured.free, store=store)
                disk.add(measured.total, store=store)
            except OSError:
                pass
        try:
            row = survey.catalog().one("SELECT store_bytes FROM store_samples WHERE store = ? AND store_bytes IS "
                                       "NOT NULL ORDER BY time DESC LIMIT 1", (sample_key(survey.config, store),))
            size.add(row[0] if row else None, store=store)
        except RtvaultError:
            pass
    return [up, snapshots, size, free, disk]


def _journal(survey: Survey) -> list[tuple]:
    """(job, result, started, ended, end of its last ok run) of the last run of each job; [] without a catalog."""
    try:
        return survey.catalog().execute(
            "SELECT r.job, r.result, r.started, r.ended, (SELECT MAX(ended) FROM runs WHERE job = r.job AND "
            "result = 'ok') FROM runs r WHERE r.started = (SELECT MAX(started) FROM runs WHERE job = r.job) "
            "ORDER BY r.job")
    except RtvaultError:
        return []


def patients_by_status(catalog: Catalog) -> dict[str, int]:
    """The patients of the catalog by status (active, archived, deleted, received: DICOM only): one indexed
    count."""
    return {str(status): int(count)
            for status, count in catalog.execute("SELECT status, COUNT(*) FROM patients GROUP BY status")}


def _catalog(survey: Survey, runs: list[tuple]) -> list[Family]:
    up = Family("rtvault_catalog_up", "1 when the catalog could be read, else 0.")
    patients = Family("rtvault_patients", "Patients of the catalog by status (active, archived, deleted, "
                                          "received).")
    duration = Family("rtvault_job_duration_seconds", "How long the last run of each job took.")
    ended = Family("rtvault_job_last_run_timestamp_seconds", "When the last run of each job ended (Unix time).")
    success = Family("rtvault_job_last_run_success", "1 when the last run of each job succeeded (result ok), else 0.")
    try:
        for status, count in patients_by_status(survey.catalog()).items():
            patients.add(count, status=status)
        up.add(1)
    except RtvaultError:
        up.add(0)
    for job, result, started, end, _last_ok in runs:
        begin, finish = _time(started), _time(end)
        duration.add(None if begin is None or finish is None else max(0.0, finish - begin), job=job)
        ended.add(finish, job=job)
        success.add(int(result == "ok"), job=job)
    return [up, patients, duration, ended, success, *_dicom(survey)]


def _dicom(survey: Survey) -> list[Family]:
    """Each configured DICOM peer's last object and how many instances from it the vault holds."""
    last = Family("rtvault_dicom_last_received_timestamp_seconds",
                  "When the newest object from each DICOM peer was received (Unix time).")
    held = Family("rtvault_dicom_instances_received", "Distinct DICOM instances received from each peer and held.")
    for name, peer in survey.config.dicom.peers.items():
        try:
            newest, count = last_received(survey.catalog(), peer.ae_title)
        except RtvaultError:
            return [last, held]
        last.add(_time(newest), peer=name)
        held.add(count, peer=name)
    return [last, held]


def gather(config: Config, now: datetime | None = None) -> list[Family]:
    """Every metric of the site at `now`, read once (the same survey as `rtvault health`)."""
    with Survey(config, now or datetime.now(UTC)) as survey:
        runs = _journal(survey)
        info = Family("rtvault_build_info", "The rtvault version serving these metrics.")
        info.add(1, version=__version__)
        return [*_health(survey), _successes(survey, runs), *_stores(survey), *_catalog(survey, runs), info]
