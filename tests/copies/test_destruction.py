"""Legal destruction on every copy (`rtvault archive delete`): the archive of the deleted patient, replicated to
a second store and copied to a removable disk, destroyed on every store, its disk copy pending until the disk is
plugged in again, a store offline at the time finished once it is back (and never copied back), a certificate
as JSON in the journal and as PDF, refusals (before keep-until, without a reason), and a destruction killed by
SIGKILL halfway that the next run finishes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from kit.copies import Copies
from rtvault.archive import records
from rtvault.catalog import destructions
from rtvault.configured import open_catalog_for
from rtvault.copies.replicate import replicate
from rtvault.errors import ExitCode
from rtvault.jobs import destruction
from rtvault.jobs.dashboard import overview
from rtvault.jobs.health import evaluate
from rtvault.store import Store

LABEL = "usb-a"
LATER = date(2200, 1, 1)  # every keep-until date is long past by then
REASON = "retention ended, committee of 2046-03-02"


def _archive(copies: Copies) -> str:
    (archive_id,) = records.all_ids(copies.primary)
    return archive_id


def _on_disk(copies: Copies, disk: Path) -> None:
    disk.mkdir()
    copies.cli("volume", "init", str(disk), "--label", LABEL)
    copies.cli("volume", "sync", LABEL)


def _journal(store_path: Path, kind: str) -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted((store_path / "journal").rglob("*.json"))]
    # in the order they were written: a stream's first segment names the one before it (two records of one
    # second have writer names in no particular order)
    chosen = [r for r in found if r.get("kind") == kind]
    return sorted(chosen, key=lambda r: (r.get("time", ""), r.get("stage") == "complete"))


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _health(copies: Copies) -> dict:
    return {c.name: c for c in evaluate(copies.config).checks}


def test_refused_before_keep_until_and_without_a_reason(replicated: Copies) -> None:
    archive_id = _archive(replicated)
    early = replicated.cli("archive", "delete", archive_id[:10], "--reason", REASON, expect=ExitCode.INPUT)
    assert "refusing to delete archive" in early.stderr and "kept until" in early.stderr
    bare = replicated.cli("archive", "delete", archive_id[:10], expect=ExitCode.INPUT)
    assert "give --reason" in bare.stderr
    blank = replicated.cli("archive", "delete", archive_id[:10], "--reason", "  ", expect=ExitCode.INPUT)
    assert "give --reason" in blank.stderr
    for store in (replicated.primary, replicated.secondary):
        assert records.holds(store, archive_id) and not records.destroyed_ids(store)
    with open_catalog_for(replicated.config) as catalog:
        assert destructions.all_destructions(catalog) == []


@pytest.mark.slow
def test_destroyed_on_every_store_the_disk_pending_until_plugged_in(replicated: Copies, tmp_path: Path) -> None:
    copies, archive_id = replicated, _archive(replicated)
    disk, drawer = tmp_path / "disk", tmp_path / "drawer"
    _on_disk(copies, disk)
    patient = records.load(copies.primary, archive_id).patients[0]
    disk.rename(drawer)  # the disk goes back in its drawer

    done = destruction.destroy(copies.config, archive_id[:12], REASON, LATER, out=tmp_path / "certificate.pdf")
    assert done.verdict().code == ExitCode.PARTIAL
    (certificate,) = done.certificates
    where = {(c["kind"], c["place"]): c for c in certificate["copies"]}
    assert set(where) == {("store", "primary"), ("store", "secondary"), ("volume", LABEL)}
    assert where[("store", "primary")]["removed"] and where[("store", "secondary")]["removed"]
    assert where[("volume", LABEL)]["removed"] is None and "not mounted" in where[("volume", LABEL)]["note"]
    assert certificate["complete"] is False and certificate["reason"] == REASON and certificate["by"]["user"]
    assert certificate["patients"][0]["mrn"] == patient.mrn and certificate["bytes"] > 0
    assert "R1112-7" in certificate["rule"] and certificate["patients"][0]["keep_until"]
    for path in (copies.primary_path, copies.secondary_path):
        store = Store.open(path)
        assert not records.holds(store, archive_id) and records.destroyed_ids(store) == [archive_id]
        assert records.destruction(store, archive_id)["reason"] == REASON
    text = _pdf_text(tmp_path / "certificate.pdf")
    assert "Certificat de destruction" in text and patient.last_name in text and "EN ATTENTE" in text
    assert "R1112-7" in text and REASON in text.replace("\n", " ")

    # shown in status, health and the catalog; the patient is no longer available anywhere in the catalog
    status = copies.cli_json("status", expect=None)
    assert [(p["kind"], p["place"]) for p in status["pending_destruction"]] == [("volume", LABEL)]
    assert not any(s["path"] == archive_id for s in status["too_few_copies"])
    check = _health(copies)["destruction"]
    assert check.status.name == "WARNING" and LABEL in check.message
    with open_catalog_for(copies.config) as catalog:
        shown = overview(copies.config, catalog).to_json()["pending_destruction"]
        assert [(p["archive"], p["kind"], p["place"]) for p in shown] == [(archive_id, "volume", LABEL)]
        assert catalog.execute("SELECT COUNT(*) FROM locations WHERE ref = ?", (archive_id,)) == [(0,)]
        rows = catalog.execute("SELECT l.kind FROM locations l JOIN versions v ON v.id = l.version "
                               "WHERE v.tree = ?", (patient.tree,))
        assert rows == []
    (first,) = _journal(copies.primary_path, "destruction")
    assert first["stage"] == "decided" and first["certificate"]["complete"] is False

    # a sync from a store never brings it back; plugging the disk in and verifying removes the copy
    drawer.rename(disk)
    verified = copies.cli_json("volume", "verify", LABEL)
    assert verified["destroyed"] == [archive_id] and not (disk / "archives" / archive_id).exists()
    copies.cli_json("volume", "sync", LABEL)
    assert not (disk / "archives" / archive_id).exists()
    records_now = _journal(copies.primary_path, "destruction")
    assert [r["stage"] for r in records_now] == ["decided", "complete"]
    final = records_now[1]["certificate"]
    assert final["complete"] is True and all(c["removed"] for c in final["copies"])
    assert _health(copies)["destruction"].status.name == "OK"
    copies.cli("journal", "verify")

    again = copies.cli_json("archive", "delete", archive_id[:12], "--certificate", str(tmp_path / "again.pdf"),
                            "--lang", "en")
    assert again["pending"] == [] and again["destroyed"][0]["complete"] is True
    english = _pdf_text(tmp_path / "again.pdf")
    assert "Destruction certificate" in english and "PENDING" not in english and LABEL in english
    assert len(_journal(copies.primary_path, "destruction")) == 2  # no third record


def test_a_store_offline_at_deletion_is_finished_when_it_is_back(replicated: Copies, tmp_path: Path) -> None:
    copies, archive_id = replicated, _archive(replicated)
    away = tmp_path / "secondary-away"
    copies.secondary_path.rename(away)  # the NAS is down

    done = destruction.destroy(copies.config, archive_id, REASON, LATER)
    assert done.verdict().code == ExitCode.PARTIAL
    pending = [(c["kind"], c["place"]) for c in done.certificates[0]["copies"] if c["removed"] is None]
    assert pending == [("store", "secondary")]
    assert "does not answer" in done.certificates[0]["copies"][-1]["note"]
    assert not records.holds(copies.primary, archive_id)
    status = copies.cli_json("status", expect=None)
    assert [(p["kind"], p["place"]) for p in status["pending_destruction"]] == [("store", "secondary")]

    away.rename(copies.secondary_path)  # back: a replication the wrong way does not bring the archive back
    back = replicate(copies.secondary, copies.primary)
    assert back.pending_destruction == [] and not records.holds(copies.primary, archive_id)
    there = replicate(copies.primary, copies.secondary)
    assert there.pending_destruction == [archive_id]  # the record went over; the job finishes it
    assert records.destroyed_ids(copies.secondary) == [archive_id]

    finished = copies.cli_json("replicate")
    assert "pairs" in finished
    assert not records.holds(copies.secondary, archive_id) and not records.holds(copies.primary, archive_id)
    assert copies.cli_json("status", expect=None)["pending_destruction"] == []
    stages = [r["stage"] for r in _journal(copies.secondary_path, "destruction")]
    assert stages == ["decided", "complete"]
    assert copies.cli_json("archive", "delete", "--pending")["destroyed"] == []


def test_a_lost_catalog_gets_its_destructions_back_from_the_stores(replicated: Copies, tmp_path: Path) -> None:
    """Decided while the secondary was away; the catalog is lost; the secondary, back, receives the record by
    replication: its verify names the archive and the job removes it, from the store's record alone."""
    copies, archive_id = replicated, _archive(replicated)
    away = tmp_path / "secondary-away"
    copies.secondary_path.rename(away)
    destruction.destroy(copies.config, archive_id, REASON, LATER)
    away.rename(copies.secondary_path)
    assert replicate(copies.primary, copies.secondary).pending_destruction == [archive_id]
    (copies.root.parent / "rtvault-catalog.sqlite").unlink()  # the default [catalog] url, beside the config

    verified = copies.cli_json("verify", "--all", "--store", "secondary")
    assert verified["stores"][0]["pending_destruction"] == [archive_id]
    assert not records.holds(copies.secondary, archive_id)
    with open_catalog_for(copies.config) as catalog:
        (found,) = destructions.all_destructions(catalog)
    assert found.archive == archive_id and found.reason == REASON and not found.pending
    assert copies.cli_json("verify", "--all", "--store", "secondary")["stores"][0]["pending_destruction"] == []


KILLED_AFTER_ONE_STORE = """import datetime, os, runpy, signal, sys
import rtvault.archive.records as records
import rtvault.cli.archive_cmd as archive_cmd
real = records.remove
def remove(store, archive_id):
    real(store, archive_id)
    os.kill(os.getpid(), signal.SIGKILL)  # one store emptied, not yet recorded removed
records.remove = remove
class Later(datetime.date):
    @classmethod
    def today(cls):
        return datetime.date(2200, 1, 1)
archive_cmd.date = Later
sys.argv[0] = "rtvault"
runpy.run_module("rtvault", run_name="__main__")
"""


@pytest.mark.slow
def test_a_destruction_killed_halfway_is_finished_by_the_next_run(replicated: Copies) -> None:
    copies, archive_id = replicated, _archive(replicated)
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_ONE_STORE, "--config", str(copies.config_path),
                             "archive", "delete", archive_id, "--reason", REASON], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # the invariant: the catalog says destroyed, and every store still holding it is listed as pending
    status = copies.cli_json("status", expect=None)
    pending = {p["place"] for p in status["pending_destruction"]}
    holding = {name for name in ("primary", "secondary") if records.holds(copies.store(name), archive_id)}
    assert holding and holding <= pending
    assert _health(copies)["destruction"].status.name == "WARNING"

    done = copies.cli_json("archive", "delete", archive_id[:12])  # no reason needed: the first one stands
    assert done["pending"] == [] and done["destroyed"][0]["reason"] == REASON
    assert not any(records.holds(copies.store(n), archive_id) for n in ("primary", "secondary"))
    assert [r["stage"] for r in _journal(copies.primary_path, "destruction")] == ["decided"]  # complete at once
    copies.cli("journal", "verify")


SLOW_TO_DECIDE = KILLED_AFTER_ONE_STORE.replace('''real = records.remove
def remove(store, archive_id):
    real(store, archive_id)
    os.kill(os.getpid(), signal.SIGKILL)  # one store emptied, not yet recorded removed
records.remove = remove''', '''import time
real = records.load
def load(store, archive_id):
    found = real(store, archive_id)
    time.sleep(1.5)  # both runs have read the archive before either records its decision
    return found
records.load = load''')


@pytest.mark.slow
def test_two_deletions_at_once_decide_once(replicated: Copies) -> None:
    copies, archive_id = replicated, _archive(replicated)
    assert SLOW_TO_DECIDE != KILLED_AFTER_ONE_STORE
    runs = [subprocess.Popen([sys.executable, "-c", SLOW_TO_DECIDE, "--config", str(copies.config_path), "archive",
                              "delete", archive_id, "--reason", f"{REASON} ({n})", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    done = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    assert [code for code, _out, _err in done] == [0, 0], done
    reports = [json.loads(out) for _code, out, _err in done]
    (first,) = [r for r in reports if not r["already_decided"]]
    (second,) = [r for r in reports if r["already_decided"]]
    (said,) = second["already_decided"]
    assert said["archive"] == archive_id and said["reason"] == first["destroyed"][0]["reason"]
    assert said["decided"] == first["destroyed"][0]["decided"] and said["by"].endswith(first["destroyed"][0]["by"]
                                                                                        ["host"])
    assert [r["stage"] for r in _journal(copies.primary_path, "destruction")] == ["decided"]
    assert not any(records.holds(copies.store(n), archive_id) for n in ("primary", "secondary"))
    copies.cli("journal", "verify")
