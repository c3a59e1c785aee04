"""`rtvault reconcile` and `rtvault archive now` on real backups (kit.reconcile.ReconcileSite: a generated database
two years idle, a primary store and its offsite copy, a SQLite catalog): each list, and what keeps a patient off
the list of those safe to delete from Pinnacle until it is archived, copied twice, one offsite, and verified."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kit.config import add_tables
from kit.files import set_last_name
from kit.reconcile import ReconcileSite, age, touch
from rtvault.archive import records
from rtvault.catalog.indexer import patient_key
from rtvault.configured import open_store
from rtvault.copies.volumes import init_volume, sync_volume, verify_volume
from rtvault.demo import evolve_database
from rtvault.errors import CatalogError
from rtvault.jobs.backup import run_backup
from rtvault.pinnacle.patient import read_patient
from rtvault.store import Store


@pytest.fixture
def site(tmp_path: Path) -> ReconcileSite:
    return ReconcileSite.made(tmp_path)


def test_idle_patients_are_safe_only_once_archived_copied_offsite_and_verified(site: ReconcileSite) -> None:
    paths = site.paths()
    found = site.reconcile()
    assert site.lists(found) == {"never_captured": [], "under_copied": [], "safe_to_delete": []}
    assert sorted(n.who.path for n in found.not_yet) == paths
    assert all("not archived: run `rtvault archive now --idle`" in n.reason for n in found.not_yet)

    made = site.archive_now(idle=True)
    assert len(made.archived) == len(paths) and not made.not_archived
    assert all(a.record.origin == "requested" for a in made.archived)
    assert site.lists()["under_copied"] == paths and site.lists()["safe_to_delete"] == []  # primary only

    site.replicate()  # on both stores, neither verified yet
    under = site.reconcile().to_json()["under_copied"]
    assert sorted((e["path"], e["archives"][0]["copies"], e["archives"][0]["verified"]) for e in under) == \
        [(p, ["offsite", "primary"], []) for p in paths]

    site.verify()
    found = site.reconcile()
    assert site.lists(found) == {"never_captured": [], "under_copied": [], "safe_to_delete": paths}
    assert found.verdict().code == 0 and not found.not_yet and not found.problems
    entry = found.to_json()["safe_to_delete"][0]
    record = read_patient(site.root / entry["path"], entry["path"])
    assert entry["key"] == patient_key(entry["path"], record.patient_id, record.mrn)
    assert entry["name"] == f"{record.last_name} {record.first_name}" and entry["mrn"] == record.mrn
    assert entry["verified"] == ["offsite", "primary"] and entry["offsite"] == ["offsite"]
    assert entry["archive"] in records.all_ids(_primary(site))
    assert entry["snapshot"] == _primary(site).manifests()[-1].id


def _primary(site: ReconcileSite) -> Store:
    return open_store(site.config, "primary")


def test_a_patient_modified_recently_is_not_safe(site: ReconcileSite) -> None:
    first, second, *_rest = site.paths()
    touch(next((site.root / first).glob("Plan_*/plan.Trial")))  # edited in Pinnacle today
    site.backup()
    site.made_safe()
    found = site.reconcile()
    assert first not in site.lists(found)["safe_to_delete"] and second in site.lists(found)["safe_to_delete"]
    assert first not in [n.who.path for n in found.not_yet]  # not idle: in use, no reason to give


def test_a_patient_changed_since_its_backup_without_a_new_date_is_not_safe(site: ReconcileSite) -> None:
    """A chmod (or a copy keeping the dates) leaves the mtime two years old: only the backup's stat says the
    folder is no longer what the snapshot holds, and its archive no longer what Pinnacle holds."""
    site.made_safe()
    first = site.paths()[0]
    os.chmod(site.root / first / "Patient", 0o600)
    found = site.reconcile()
    assert first not in site.lists(found)["safe_to_delete"]
    reason = next(n.reason for n in found.not_yet if n.who.path == first)
    assert "changed since snapshot" in reason and "Patient changed" in reason and "rtvault backup" in reason

    refused = site.archive_now(idle=True)  # the archive would not be of what Pinnacle holds
    assert [p.file for p in refused.not_archived] == [first] and refused.verdict().code == 9
    site.backup()  # a new version, not archived yet
    assert "not archived" in next(n.reason for n in site.reconcile().not_yet if n.who.path == first)
    site.made_safe()
    assert first in site.lists()["safe_to_delete"]


def test_a_single_copy_or_no_offsite_copy_is_not_safe(site: ReconcileSite) -> None:
    site.archive_now(idle=True)
    site.verify("primary")  # the offsite copy was never made
    found = site.reconcile()
    assert site.lists(found)["safe_to_delete"] == []
    assert all("needs two verified copies" in n.reason for n in found.not_yet)

    site.configure(offsite=False)  # two copies, both in the building
    site.replicate()
    site.verify()
    found = site.reconcile()
    assert site.lists(found)["safe_to_delete"] == [] and site.lists(found)["under_copied"] == []
    assert all("one on an offsite store or a removable disk" in n.reason for n in found.not_yet)
    site.configure(offsite=True)
    assert site.lists()["safe_to_delete"] == site.paths()


def test_a_patient_not_archived_is_not_safe_until_archive_now(site: ReconcileSite) -> None:
    first, *others = site.paths()
    site.replicate()
    site.verify()
    assert site.lists()["safe_to_delete"] == []  # two verified copies of its snapshots, but no archive

    mrn = read_patient(site.root / first, first).mrn
    made = site.archive_now(mrn, first)  # the same patient twice, by MRN and by path: archived once
    assert [a.record.patients[0].path for a in made.archived] == [first] and not made.already
    again = site.archive_now(first)
    assert not again.archived and again.already[0]["archive"] == made.archived[0].record.id
    site.replicate()
    site.verify()
    assert site.lists()["safe_to_delete"] == [first]
    unknown = site.archive_now("Institution_9/Mount_0/Patient_0")
    assert unknown.verdict().code == 9 and "no snapshot" in unknown.not_archived[0].message
    assert others


def test_a_patient_deleted_once_safe_is_not_archived_again(site: ReconcileSite) -> None:
    site.made_safe()
    gone = site.paths()[0]
    shutil.rmtree(site.root / gone)
    summary = run_backup(site.config, _primary(site), allow_shrink=True)
    assert summary.archived == [] and summary.not_archived == []  # its version is archived already
    site.backup()
    site.replicate()
    assert gone not in {p for paths in site.lists().values() for p in paths}  # two verified copies: nothing to do


def test_a_copy_lost_from_a_store_puts_the_patient_back_under_copied(site: ReconcileSite) -> None:
    site.made_safe()
    first = site.paths()[0]
    archive = next(e["archive"] for e in site.reconcile().to_json()["safe_to_delete"] if e["path"] == first)
    (site.base / "offsite" / records.tar_key(archive)).unlink()
    site.verify("offsite")  # finds it missing
    found = site.reconcile().to_json()
    assert first not in [e["path"] for e in found["safe_to_delete"]]
    under = next(e for e in found["under_copied"] if e["path"] == first)
    assert under["archives"] == [{"archive": archive, "file": under["archives"][0]["file"],
                                  "copies": ["offsite", "primary"], "verified": ["primary"]}]


def test_never_captured_lists_new_patients_until_the_next_backup(site: ReconcileSite) -> None:
    day = evolve_database(site.root, 1)  # a patient admitted, another deleted (its archive made by the backup)
    new, = day.added_patients
    found = site.reconcile().to_json()["never_captured"]
    assert [e["path"] for e in found] == [new]
    record = read_patient(site.root / new, new)
    assert found[0]["name"] == f"{record.last_name} {record.first_name}" and found[0]["mrn"] == record.mrn
    assert found[0]["key"] == patient_key(new, record.patient_id, record.mrn) and found[0]["files"] > 0
    site.backup()
    assert site.lists()["never_captured"] == []


def test_the_catalog_missing_or_behind_is_refused(site: ReconcileSite) -> None:
    run_backup(site.config, _primary(site))  # a snapshot the catalog has not indexed (its refresh never ran)
    with pytest.raises(CatalogError, match=r"has not indexed snapshot .* of store primary.*catalog sync"):
        site.reconcile()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{site.catalog_path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(CatalogError, match=r"does not exist.*catalog rebuild"):
        site.reconcile()
    assert not site.catalog_path.exists()  # not made anew, empty, by the refusal


def test_a_store_that_cannot_be_read_is_named_and_its_copies_do_not_count(site: ReconcileSite) -> None:
    site.made_safe()
    shutil.rmtree(site.base / "offsite")  # the offsite disk is not mounted
    found = site.reconcile()
    assert found.verdict().code == 9 and any("store offsite cannot be read" in p for p in found.problems)
    assert site.lists(found)["safe_to_delete"] == []


def test_csv_lists_every_entry_and_defuses_formulas(site: ReconcileSite) -> None:
    set_last_name(site.root / site.paths()[0] / "Patient", "=HYPERLINK(\"http://x\")")
    age(site.root / site.paths()[0])
    site.backup()
    site.made_safe()
    text = site.reconcile().csv()
    lines = text.splitlines()
    assert lines[0].startswith("list,source,key,name,mrn,path") and len(lines) == 1 + len(site.paths())
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


def test_idle_months_comes_from_the_configuration(site: ReconcileSite) -> None:
    site.made_safe()
    add_tables(site.config_path, reconcile={"idle_months": 36})  # three years: two-year-old patients are in use
    found = site.reconcile()
    assert site.lists(found)["safe_to_delete"] == [] and found.idle_months == 36


def test_a_removable_disk_counts_as_the_offline_copy(site: ReconcileSite, tmp_path: Path) -> None:
    site.configure(offsite=False)  # the copy store is in the building: only the disk can be the one away
    site.made_safe()
    assert site.lists()["safe_to_delete"] == []
    disk = tmp_path / "disk"
    disk.mkdir()
    init_volume(site.config, disk, "usb-a")
    sync_volume(site.config, "usb-a")
    assert site.lists()["safe_to_delete"] == []  # on the disk, never verified there yet
    verify_volume(site.config, "usb-a")
    found = site.reconcile().to_json()["safe_to_delete"]
    assert sorted(e["path"] for e in found) == site.paths()
    assert all(e["offsite"] == ["volume:usb-a"] and "volume:usb-a" in e["verified"] for e in found)
