"""`rtvault report --month`: the month's evidence as the quality manager files it. A month of journal records
(backups, verifies that read one store and could not read the other, a drill over its target, alerts: one begun
the month before, one resolved within the month, one still open) gives a PDF whose text tells the counts, the
failed run and its error, the drill's figures against the targets, each store's verification and each alert with
its resolution; the month is local time (Europe/Paris here); what is missing is said on stderr; English on
demand; nothing from the journal becomes markup; a month that is none, has not begun, or a catalog that cannot
be read is one clear sentence and no file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pypdf
import pytest

from kit.cli import rtvault, rtvault_json
from kit.config import write_config
from rtvault.catalog import runs as catalog_runs
from rtvault.config import load
from rtvault.configured import open_catalog_for
from rtvault.jobs.journal import run_record
from rtvault.utc import parse

VERIFY_PARTIAL = {"stores": [
    {"store": "primary", "objects_verified": 500, "bytes": 12_500_000, "total": 1000, "coverage_percent": 50.0,
     "cycle_completed": False, "problems": [], "error": None},
    {"store": "offsite", "error": "store offsite cannot be read: /mnt/offsite/rtvault is not mounted"}]}
VERIFY_DONE = {"stores": [
    {"store": "primary", "objects_verified": 500, "bytes": 12_500_000, "total": 1000, "coverage_percent": 100.0,
     "cycle_completed": True, "problems": [{"key": "data/ab/abcd", "kind": "corrupt"}], "error": None}]}
DRILLS = {"drills": [
    {"store": "primary", "kind": "patient", "key": "Institution_1/Mount_0/Patient_7", "bytes": 7_100_000,
     "seconds": 12.3, "mb_per_s": 0.58, "full_estimate_s": 1050.0, "within_rto": True, "result": "ok", "error": ""},
    {"store": "primary", "kind": "archive", "key": "3f2a9c0d1e2b Patient_4", "bytes": 3_000_000, "seconds": 4.5,
     "mb_per_s": 0.67, "full_estimate_s": None, "within_rto": True, "result": "ok", "error": ""},
    {"store": "offsite", "kind": "patient", "key": "Institution_1/Mount_0/Patient_3", "bytes": 5_000_000,
     "seconds": 41.0, "mb_per_s": 0.12, "full_estimate_s": 2460.0, "within_rto": False, "result": "ok",
     "error": ""}]}


def _run(job: str, start: str, seconds: float, result: str = "ok", error: str = "", summary: object = None) -> dict:
    begin = parse(start)
    end = datetime.fromtimestamp(begin.timestamp() + seconds, begin.tzinfo)
    return {**run_record(job, "schedule", begin, end, result, error, summary or {}), "id": f"{start}-{job}",
            "host": "pinnacle-backup"}


def _alert(time: str, *changes: tuple[str, str | None, str, str]) -> dict:
    return {"kind": "alert", "id": f"{time}-alert", "time": time, "host": "pinnacle-backup", "channels": ["mail"],
            "changes": [{"check": c, "previous": p, "status": s, "message": m} for c, p, s, m in changes]}


RECORDS = [
    _run("backup", "2026-10-31T22:30:00Z", 50),  # 23:30 on 31 October in Paris: not this month
    _run("backup", "2026-10-31T23:30:00Z", 60),  # 00:30 on 1 November in Paris
    _run("backup", "2026-11-02T08:00:00Z", 80),
    _run("backup", "2026-11-03T08:00:00Z", 5, "failed",
         "backup: store primary is full: /mnt/nas1/rtvault has 0 bytes free; free space, then run rtvault backup"),
    _run("verify", "2026-11-04T02:00:00Z", 300, "unavailable", "verify: store offsite cannot be read",
         VERIFY_PARTIAL),
    _run("verify", "2026-11-05T02:00:00Z", 280, "partial", "verify: 1 problem", VERIFY_DONE),
    _run("drill", "2026-11-09T05:30:00Z", 70, summary=DRILLS),
    _run("backup", "2026-12-01T08:00:00Z", 70),  # next month
    _alert("2026-10-30T10:00:00Z", ("space:offsite", "OK", "WARNING", "store offsite: 8 % free")),
    _alert("2026-11-02T09:00:00Z", ("space:offsite", "WARNING", "OK", "store offsite: 40 % free")),
    _alert("2026-11-10T03:00:00Z", ("replication:offsite", "OK", "CRITICAL",
                                    "replication to offsite: last copy 30 h ago")),
    _alert("2026-11-10T05:30:00Z", ("replication:offsite", "CRITICAL", "OK", "replication to offsite: up to date")),
    _alert("2026-11-20T12:00:00Z", ("drill", None, "WARNING", "last restore drill 11 days ago")),
]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TZ", "Europe/Paris")
    config = write_config(tmp_path / "rtvault.toml", root="/PrimaryPatientData/NewPatients",
                          stores={"primary": "/mnt/nas1/rtvault",
                                  "offsite": {"path": "/mnt/offsite/rtvault", "copy_of": "primary"}},
                          catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"},
                          site={"name": "CHU d'Exemple, radiothérapie"})
    with open_catalog_for(load(config)) as catalog:
        assert catalog_runs.add(catalog, RECORDS) == len(RECORDS)
    return config


def _flat(text: str) -> str:
    return "".join(text.split())


def test_the_month_in_a_pdf_for_the_quality_file(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "rapport-2026-11.pdf"
    done = rtvault(site, "report", "--month", "2026-11", "--out", out)
    assert str(out) in done.stdout and "6 runs (3 ok), 3 drills, 3 alerts" in done.stdout
    assert "note: store offsite was not verified in 2026-11" in done.stderr
    assert "note: alert on drill since 2026-11-20 13:00 is not resolved" in done.stderr
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out).pages)
    flat = _flat(text)
    for expected in ("Rapport mensuel de sauvegarde et de continuité : novembre 2026", "CHU d'Exemple, radiothérapie",
                     "du 2026-11-01 00:00 au 2026-12-01 00:00",
                     "Tâches exécutées : 6 (réussies 3, partielles 1, en échec 1, stockage indisponible 1)",
                     "/mnt/nas1/rtvault has 0 bytes free", "2026-11-03 09:00",
                     "Exercices de restauration : 3, dont 0 en échec et 1 au-delà de l'objectif",
                     "un patient en 10 min, toute la base en 30 min", "12,3 s", "41,0 s", "41 min", "NON",
                     "Institution_1/Mount_0/Patient_3", "un patient archivé",
                     "Vérification : 1 stockage(s) sur 2 relus ce mois ; 1 cycle(s) complet(s)",
                     "25.0 MB", "100,0 %", "/mnt/offsite/rtvault is not mounted",
                     "Alertes : 3, dont 2 résolues et 1 non résolues",
                     "espace disque de offsite", "2026-10-30 11:00", "2026-11-02 10:00",
                     "réplication vers offsite", "CRITIQUE", "2026-11-10 04:00", "2026-11-10 06:30", "2 h 30 min",
                     "2 j 23 h", "exercice de restauration", "non résolue", "Visa",
                     "le stockage offsite n'a pas été vérifié en 2026-11",
                     "l'alerte sur « drill » depuis le 2026-11-20 13:00 n'est pas résolue"):
        assert _flat(expected) in flat, expected
    days = text[text.index("Tâches par jour"):]
    assert "2026-11-30" in days and "2026-12-01" not in days.split("Exercices")[0]


@pytest.mark.slow
def test_json_english_and_nothing_becomes_markup(site: Path, tmp_path: Path) -> None:
    with open_catalog_for(load(site)) as catalog:
        catalog_runs.add(catalog, [_run("replicate", "2026-11-12T03:00:00Z", 9, "failed",
                                        "<script>alert(1)</script>\x1b[31m red")])
    found = rtvault_json(site, "report", "--month", "2026-11", "--lang", "en", "--out", tmp_path / "r.html")
    assert found["runs"]["total"] == 7 and found["runs"]["failed"] == 2
    assert found["runs"]["jobs"]["backup"] == {"runs": 3, "ok": 2, "partial": 0, "failed": 1, "unavailable": 0,
                                                "median_s": 60.0, "longest_s": 80.0}
    assert [(a["check"], a["resolved"]) for a in found["alerts"]] == [
        ("space:offsite", "2026-11-02T09:00:00Z"), ("replication:offsite", "2026-11-10T05:30:00Z"), ("drill", None)]
    by_store = {v["store"]: v for v in found["verification"]}
    assert by_store["primary"]["files"] == 1000 and by_store["primary"]["cycles_completed"] == 1
    assert by_store["offsite"]["errors"] == 1 and by_store["offsite"]["files"] == 0
    assert [d["within_rto"] for d in found["drills"]] == [True, True, False]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Monthly backup and continuity report: November 2026" in html and "Alerts and their resolution" in html
    assert "<script>" not in html and "\x1b" not in html and "\\x1b[31m red" in html


@pytest.mark.slow
def test_a_month_without_runs_says_so(site: Path, tmp_path: Path) -> None:
    done = rtvault(site, "report", "--month", "2026-09", "--out", tmp_path / "r.pdf")
    assert "0 runs (0 ok), 0 drills, 0 alerts" in done.stdout
    assert "no run is recorded in the journal for 2026-09: was `rtvault daemon` running?" in done.stderr
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / "r.pdf").pages)
    assert "Aucun exercice de restauration ce mois" in text and "Aucune alerte ce mois." in text


@pytest.mark.parametrize(("month", "message"), [
    ("2026-13", "month '2026-13' is not a month: give it as YYYY-MM (2026-11)"),
    ("nov", "month 'nov' is not a month: give it as YYYY-MM (2026-11)"),
    ("2099-01", "month 2099-01 has not begun: give a month up to the current one"),
])
def test_a_month_that_is_none_is_refused(site: Path, tmp_path: Path, month: str, message: str) -> None:
    done = rtvault(site, "report", "--month", month, "--out", tmp_path / "r.pdf", expect=4)
    assert done.stderr == f"rtvault: error: {message}\n"
    assert not (tmp_path / "r.pdf").exists()


def test_bad_output_and_a_broken_catalog_are_one_sentence(site: Path, tmp_path: Path) -> None:
    done = rtvault(site, "report", "--month", "2026-11", "--out", tmp_path / "r.docx", expect=4)
    assert "cannot tell the format of" in done.stderr and "give a file name ending in .pdf or .html" in done.stderr
    (tmp_path / "catalog.sqlite").write_bytes(b"not a database, " * 300)
    done = rtvault(site, "report", "--month", "2026-11", "--out", tmp_path / "r.pdf", expect=None)
    assert done.returncode not in (0, 1) and done.stderr.startswith("rtvault: error: catalog ")
    assert "internal error" not in done.stderr and not (tmp_path / "r.pdf").exists()
