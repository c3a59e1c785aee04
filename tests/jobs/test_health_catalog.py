"""`rtvault health`, the checks of the source and the catalog: the source moved away or shrunk, patient versions
on too few (verified) stores, the last run of each job, a catalog that cannot be read, the alerts hook; and the
report itself (worst status, JSON, a check that fails never hiding the others)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from kit.alerts import webhook
from kit.health import HealthSite, second
from rtvault.copies.verify import verify
from rtvault.jobs import health_stores
from rtvault.jobs.alerts import notify
from rtvault.jobs.health import HealthReport, Status
from rtvault.jobs.health_types import Check
from rtvault.utc import iso

H = timedelta(hours=1)


@pytest.fixture
def site(generated_db: Path, tmp_path: Path) -> HealthSite:
    return HealthSite.make(tmp_path / "site", generated_db)


def test_source_mounted_with_its_patient_count(site):
    snapshot = site.backup(second())
    check = site.check("source:pinnacle", second())
    assert (check.status, check.value, check.threshold) == (Status.OK, 6, 4.8)
    assert f"holds 6 patients (6 in snapshot {snapshot}" in check.message


def test_source_moved_away_is_critical(site):
    site.backup(second())
    shutil.move(site.root, site.base / "moved")
    check = site.check("source:pinnacle", second())
    assert check.status is Status.CRITICAL and "does not exist: is the Pinnacle share mounted?" in check.message


def test_source_that_is_not_a_pinnacle_database_is_critical(site):
    shutil.rmtree(site.root)
    site.root.mkdir()
    (site.root / "README").write_text("not Pinnacle\n")
    check = site.check("source:pinnacle", second())
    assert check.status is Status.CRITICAL and "holds no Pinnacle patient directory" in check.message


def test_source_that_lost_more_than_max_shrink_warns_before_the_backup_refuses(site):
    site.backup(second())
    patients = sorted((site.root / "Institution_1" / "Mount_0").glob("Patient_*"))
    shutil.rmtree(patients[0])
    assert site.check("source:pinnacle", second()).status is Status.OK  # 5 of 6: not more than 20 % fewer
    shutil.rmtree(patients[1])
    check = site.check("source:pinnacle", second())  # 4 < 4.8
    assert (check.status, check.value) == (Status.WARNING, 4)
    assert "down from 6" in check.message and "rtvault backup --allow-shrink" in check.message


def test_source_count_read_from_the_catalog_when_indexed(site):
    snapshot = site.backup(second())
    site.refresh()
    with site.catalog() as catalog:  # the catalog is read first: one patient less there shows it was used
        catalog.execute("DELETE FROM locations WHERE id = (SELECT MIN(id) FROM locations WHERE ref = ?)", (snapshot,))
    assert "(5 in snapshot" in site.check("source:pinnacle", second()).message


def test_copies_on_one_store_are_critical_once_replication_had_time(site):
    t0 = second()
    site.backup(t0)
    site.refresh()
    assert site.check("copies", t0 + 5 * H).status is Status.OK  # awaiting replication: the replication check's
    check = site.check("copies", t0 + 7 * H)
    assert check.status is Status.CRITICAL and "6 patient version(s) and 0 archive(s)" in check.message
    assert "are on fewer than two stores: run `rtvault replicate`" in check.message
    site.replicate()
    site.refresh()
    assert site.check("copies", t0 + 7 * H).status is Status.OK


def test_copies_without_verified_second_copy_warn(site):
    t0 = second()
    site.backup(t0)
    site.replicate()
    site.refresh()
    later = t0 + timedelta(days=33)
    verify(site.store("primary"), all=True, now=later - H)
    check = site.check("copies", later)  # the secondary, never verified, is past its first cycle
    assert check.status is Status.WARNING and check.value == 6
    assert "have fewer than two verified copies" in check.message
    verify(site.store("secondary"), all=True, now=later - H)
    assert site.check("copies", later).status is Status.OK


def _receive(site: HealthSite, folder: Path, *names: str) -> str:
    """`names` (pydicom's test files, new UIDs) imported into the primary as the DICOM node stores them: the
    receipt's id."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from rtvault.jobs.dicom_import import import_dicom
    from rtvault.store import receipts

    before = set(receipts.ids(site.store("primary").backend))
    folder.mkdir()
    for name in names:
        dataset = pydicom.dcmread(get_testdata_file(name), force=True)  # rtstruct.dcm has no file meta
        dataset.SOPInstanceUID = generate_uid()
        if "MediaStorageSOPInstanceUID" in getattr(dataset, "file_meta", {}):
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.save_as(folder / name)
    assert import_dicom(site.config, [folder]).stored == len(names)
    [made] = set(receipts.ids(site.store("primary").backend)) - before
    return made


@pytest.mark.slow  # two imports, two replications, status: about 1.2 s
def test_received_objects_on_one_store_are_critical_naming_the_receipt(site):
    from rtvault.copies.status import store_status

    t0 = second()
    site.backup(t0)
    _receive(site, site.base / "first", "CT_small.dcm", "rtplan.dcm")
    site.replicate()
    site.refresh()
    check = site.check("copies", t0 + 7 * H)
    assert check.status is Status.OK and "archive and DICOM receipt" in check.message
    alone = _receive(site, site.base / "second", "rtstruct.dcm", "rtdose.dcm", "MR_small.dcm")
    site.refresh()
    assert site.check("copies", t0 + 5 * H).status is Status.OK  # awaiting replication, as a snapshot does
    check = site.check("copies", t0 + 7 * H)
    assert check.status is Status.CRITICAL  # as an archive on one store is
    assert f"1 DICOM receipt(s) of the DICOM node (3 received object(s): receipt {alone}) older than" in check.message
    assert "are on fewer than two stores: run `rtvault replicate`" in check.message
    status = store_status(site.config)  # `rtvault status` names it too
    assert [(s.kind, s.key, s.stores) for s in status.too_few_copies] == [("receipt", alone, ["primary"])]
    site.replicate()
    site.refresh()
    assert site.check("copies", t0 + 7 * H).status is Status.OK
    assert not store_status(site.config).too_few_copies


def test_a_snapshot_on_one_store_stays_critical_and_names_the_receipts_too(site):
    t0 = second()
    site.backup(t0)
    alone = _receive(site, site.base / "received", "CT_small.dcm")
    site.refresh()
    check = site.check("copies", t0 + 7 * H)
    assert check.status is Status.CRITICAL and "6 patient version(s) and 0 archive(s)" in check.message
    assert f"so are 1 DICOM receipt(s) of the DICOM node (1 received object(s): receipt {alone})" in check.message


def test_a_single_store_site_is_told_to_add_a_copy(site):
    site.configure(stores={"primary": site.path("primary")})
    t0 = second()
    site.backup(t0)
    site.refresh()
    check = site.check("copies", t0 + 7 * H)
    assert check.status is Status.CRITICAL and "configure a second store with copy_of" in check.message


def _runs(site: HealthSite, *rows: tuple[str, str, str, str]) -> None:
    with site.catalog() as catalog, catalog.transaction():
        for n, (job, result, started, error) in enumerate(rows):
            catalog.execute("INSERT INTO runs (id, job, trigger, started, ended, result, error, host, record) "
                            "VALUES (?, ?, 'schedule', ?, ?, ?, ?, 'host', '{}')",
                            (f"w/{n}", job, started, started, result, error))


def test_jobs_warn_when_the_last_run_of_a_job_failed(site):
    now = second()
    assert site.check("jobs", now).message.startswith("no run recorded yet")
    _runs(site, ("backup", "failed", iso(now - 2 * H), "old failure"), ("backup", "ok", iso(now - H), ""),
          ("replicate", "ok", iso(now - 2 * H), ""), ("replicate", "unavailable", iso(now - H), "store secondary "
                                                                                               "does not exist"))
    check = site.check("jobs", now)
    assert (check.status, check.value) == (Status.WARNING, 1)
    assert "the last replicate run unavailable" in check.message and "store secondary does not exist" in check.message
    assert "backup" not in check.message.split("(read")[0]


def test_an_unreadable_catalog_makes_its_checks_unknown_not_a_crash(site):
    site.backup(second())
    (site.base / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    checks = {c.name: c for c in site.evaluate(second()).checks}
    assert checks["copies"].status is checks["jobs"].status is Status.UNKNOWN
    assert "catalog" in checks["jobs"].message
    assert checks["backup:pinnacle"].status is Status.OK  # the stores are still read
    assert checks["source:pinnacle"].status is Status.OK  # its count then comes from the manifest


def test_alerts_not_delivered_are_a_warning(site):
    quiet = site.check("alerts", second())
    assert quiet.status is Status.OK and "no alert channel is configured" in quiet.message
    with webhook(answers=(500, 500, 500)) as hook:
        site.configure(alerts={"webhook": {"url": hook.url}}, daemon={"state_dir": site.base / "state"})
        shutil.move(site.root, site.base / "moved")
        now = second()
        run = notify(site.config, site.evaluate(now).checks, now)  # the alert of the source gone: refused (500)
        assert run.queued and "webhook" in run.failed and hook.requests and not hook.delivered
        check = site.check("alerts", now)
        assert (check.status, check.value) == (Status.WARNING, 1)
        assert "not delivered by" in check.message and "500" in check.message and "rtvault alert test" in check.message


def test_a_check_that_fails_is_unknown_and_hides_no_other(site, monkeypatch):
    def broken(survey):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("rtvault.jobs.health.daemon_check", broken)
    checks = {c.name: c for c in site.evaluate(second()).checks}
    assert checks["daemon"].status is Status.UNKNOWN and "ZeroDivisionError" in checks["daemon"].message
    assert len(checks) >= 8 and checks["verify:primary"].status is Status.OK
    assert health_stores.daemon_check is not broken


def test_the_worst_status_wins_unknown_between_warning_and_critical():
    def report(*statuses: Status) -> HealthReport:
        return HealthReport(tuple(Check(f"c{i}", s, None, None, "m") for i, s in enumerate(statuses)), "t")

    assert report().status is Status.OK
    assert report(Status.OK, Status.WARNING).status is Status.WARNING
    assert report(Status.WARNING, Status.UNKNOWN).status is Status.UNKNOWN
    assert report(Status.UNKNOWN, Status.CRITICAL, Status.WARNING).status is Status.CRITICAL
    assert report(Status.OK).verdict().code == 0 and report(Status.WARNING).verdict().code == 7


def test_json_names_every_check_with_its_fields(site):
    data = site.evaluate(second()).to_json()
    assert data["status"] == "CRITICAL" and data["time"].endswith("Z")  # no backup yet, no daemon
    names = [c["name"] for c in data["checks"]]
    assert names == ["backup:pinnacle", "source:pinnacle", "replication:secondary", "verify:primary",
                     "verify:secondary", "space:primary", "space:secondary", "daemon", "copies", "jobs", "drill",
                     "failover", "journal", "destruction", "alerts"]
    for check in data["checks"]:
        assert {"name", "status", "value", "threshold", "message"} <= set(check)
        assert check["status"] in ("OK", "WARNING", "CRITICAL", "UNKNOWN") and check["message"]
