"""`/dashboard` and `/api/dashboard` on the session's synthetic site, with backup and drill runs in the run journal,
disk samples of its store and the alerts' state file of a daemon: the JSON's fields, who may read it, the page in
French and English, and its four charts, parsed as SVG, holding the series they should."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.web import Site
from rtvault.catalog import open_catalog
from rtvault.jobs.alert_state import AlertState, CheckState, save, state_file
from rtvault.jobs.health import Status, evaluate
from rtvault.jobs.health_space import sample_key
from rtvault.utc import iso
from rtvault.web.app import create_app

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime.now(UTC).replace(microsecond=0)
GB = 10**9


def _run(number: int, job: str, start: datetime, seconds: float, result: str, summary: object) -> tuple:
    record = {"kind": "run", "job": job, "duration_s": seconds, "result": result, "summary": summary,
              "counts": {k: v for k, v in (summary or {}).items() if isinstance(v, int)}}
    return (f"d/{number}", job, "schedule", iso(start), iso(start + timedelta(seconds=seconds)), result,
            "" if result == "ok" else "rtvault backup: the source is not mounted", "host", json.dumps(record))


def _drills(seconds: float, estimate: float) -> dict:
    return {"drills": [{"store": "primary", "kind": "patient", "key": "Institution_1/Mount_0/Patient_1",
                        "bytes": 5_000_000, "seconds": seconds, "mb_per_s": 5.0, "full_estimate_s": estimate,
                        "result": "ok", "error": ""},
                       {"store": "primary", "kind": "archive", "key": "a b", "bytes": 1, "seconds": seconds * 2,
                        "mb_per_s": 1.0, "full_estimate_s": None, "result": "ok", "error": ""}]}


def _svg(client: object, name: str, lang: str = "en") -> ET.Element:
    answer = client.get(f"/dashboard/chart/{name}.svg", params={"lang": lang})  # type: ignore[attr-defined]
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(answer.content)
    assert root.tag == f"{SVG}svg"
    assert not list(root.iter(f"{SVG}script"))
    return root


def _ids(root: ET.Element) -> set[str]:
    return {element.get("id", "") for element in root.iter()}


def _texts(root: ET.Element) -> str:
    return " ".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


def test_without_runs_or_samples_the_charts_say_so(site: Site, tmp_path: Path) -> None:
    """The site before any daemon: no sample, no run; the charts are still SVG, with a sentence. (First in the
    module: the `journal` fixture's runs and samples stay until its end.)"""
    client = site.login("operator")
    for name, words in (("size", "No store measured yet"), ("backup", "No backup in the run journal"),
                        ("drill", "No restore drill yet")):
        assert words in _texts(_svg(client, name))
    assert site.bearer("operator").get("/api/dashboard").json()["stores"][0]["full_in_days"] is None


@pytest.fixture(scope="module")
def journal(site: Site) -> Iterator[None]:
    """Three backups (the last failed, with no summary), two drills, and a week of disk samples of `primary`
    whose free space shrinks by 10 GB a day (so a forecast); all removed after."""
    rows = [_run(1, "backup", NOW - timedelta(hours=3), 42.5, "ok", {"bytes_added": 120_000_000, "patients": 8}),
            _run(2, "backup", NOW - timedelta(hours=2), 12.0, "ok", {"bytes_added": 3_000_000, "patients": 8}),
            _run(3, "backup", NOW - timedelta(hours=1), 1.5, "failed", None),
            _run(4, "drill", NOW - timedelta(days=8), 30.0, "ok", _drills(20.0, 900.0)),
            _run(5, "drill", NOW - timedelta(days=1), 30.0, "ok", _drills(25.0, 1000.0))]
    primary = sample_key(site.config, "primary")  # the catalog knows stores by id
    samples = [(primary, iso(NOW - timedelta(days=day)), 1000 * GB, (500 + 10 * day) * GB, (100 - day) * GB)
               for day in range(7, 0, -1)]
    with open_catalog(site.config.catalog.url) as db:
        db.many("INSERT INTO runs (id, job, trigger, started, ended, result, error, host, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.many("INSERT INTO store_samples (store, time, total_bytes, free_bytes, store_bytes) "
                "VALUES (?, ?, ?, ?, ?)", samples)
    yield
    with open_catalog(site.config.catalog.url) as db:
        db.execute("DELETE FROM runs WHERE id LIKE 'd/%'")
        db.execute("DELETE FROM store_samples WHERE store = ?", (sample_key(site.config, "primary"),))


@pytest.fixture(scope="module")
def daemon_site(site: Site, journal: None, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The site with a daemon's state folder holding alerts.json: `verify:primary` with its current status
    since a known time, `daemon` with a status it no longer has."""
    state_dir = tmp_path_factory.mktemp("dashboard-state")
    config = dataclasses.replace(site.config, daemon=dataclasses.replace(site.config.daemon, state_dir=state_dir))
    current = {c.name: c.status for c in evaluate(config).checks}
    other = Status.OK if current["daemon"] is not Status.OK else Status.WARNING
    save(state_file(state_dir), AlertState({"verify:primary": CheckState(current["verify:primary"],
                                                                         datetime(2026, 3, 1, 8, 0, tzinfo=UTC)),
                                            "daemon": CheckState(other, datetime(2026, 3, 2, tzinfo=UTC))}))
    return dataclasses.replace(site, config=config, app=create_app(config))


def test_the_api_gives_checks_since_when_jobs_stores_and_patients(daemon_site: Site) -> None:
    answer = daemon_site.bearer("operator").get("/api/dashboard")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["status"] in ("OK", "WARNING", "CRITICAL", "UNKNOWN") and data["time"].endswith("Z")
    checks = {c["name"]: c for c in data["checks"]}
    assert {"backup:pinnacle", "verify:primary", "space:primary", "daemon", "copies", "jobs", "drill"} <= set(checks)
    assert checks["verify:primary"]["since"] == "2026-03-01T08:00:00Z"
    assert checks["daemon"]["since"] is None  # the daemon last saw another status: since when is not known
    assert checks["space:primary"]["kind"] == "space" and checks["space:primary"]["subject"] == "primary"
    jobs = {j["job"]: j for j in data["jobs"]}
    assert jobs["backup"]["result"] == "failed" and jobs["backup"]["duration_s"] == 1.5
    assert "not mounted" in jobs["backup"]["error"]
    assert jobs["drill"]["result"] == "ok" and jobs["drill"]["started"] == iso(NOW - timedelta(days=1))
    assert jobs["verify"] == {"job": "verify", "scheduled": True, "started": "", "ended": "", "duration_s": None,
                              "result": "", "trigger": "", "error": ""}  # scheduled, never run
    [store] = data["stores"]
    assert store["name"] == "primary" and store["kind"] == "directory" and store["copy_of"] == ""
    assert store["size_bytes"] == 99 * GB and store["sized"] == iso(NOW - timedelta(days=1))
    assert store["free_bytes"] > 0 and store["disk_bytes"] >= store["free_bytes"]
    assert 40 < store["full_in_days"] < 52  # 510 GB free at the last sample, 10 GB less a day
    assert set(store["checks"]) == {"verify", "space"}  # no copy_of: no replication check
    assert store["status"] in ("OK", "WARNING", "CRITICAL", "UNKNOWN")
    with open_catalog(daemon_site.config.catalog.url) as db:
        assert data["patients"] == dict(db.execute("SELECT status, COUNT(*) FROM patients GROUP BY status"))
    assert data["targets"] == {"rpo_s": daemon_site.config.health.backup_max_age_s, "rto_patient_s": 600.0,
                               "rto_full_s": 1800.0}
    assert data["charts"]["size"] == {"svg": "/dashboard/chart/size.svg", "data": "/api/dashboard/chart/size"}


@pytest.mark.parametrize("path", ["/api/dashboard", "/api/dashboard/chart/size", "/api/dashboard/chart/drill"])
def test_a_viewer_is_refused_operator_and_admin_read_it(site: Site, journal: None, path: str) -> None:
    refused = site.bearer("viewer").get(path)
    assert refused.status_code == 403 and "operator" in refused.json()["error"]["message"]
    assert site.bearer("admin").get(path).status_code == 200
    assert site.client().get(path).status_code == 401  # no token, no session


def test_the_page_and_its_charts_are_refused_to_a_viewer_and_to_nobody(site: Site) -> None:
    viewer = site.login("viewer")
    assert viewer.get("/dashboard").status_code == 403
    assert viewer.get("/dashboard/chart/size.svg").status_code == 403
    assert 'href="/dashboard"' not in viewer.get("/").text  # not in a viewer's navigation
    anonymous = site.client().get("/dashboard/chart/size.svg")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("lang", "words"), [
    ("fr", ["Tableau de bord", "Contrôles de santé", "Dernière exécution de chaque tâche", "jamais exécutée",
            "Supports de stockage", "Perte de données maximale (RPO)", "échec", "Patients par statut"]),
    ("en", ["Dashboard", "Health checks", "Last run of each job", "never run", "Stores",
            "Recovery point objective (RPO)", "failed", "Patients by status"])])
def test_the_page_in_french_and_english(daemon_site: Site, lang: str, words: list[str]) -> None:
    client = daemon_site.login("operator")
    page = client.get("/dashboard", params={"lang": lang})
    assert page.status_code == 200, page.text
    for word in words:
        assert word in page.text, word
    assert f'<html lang="{lang}">' in page.text and 'aria-current="page">' in page.text
    for name in ("size", "backup", "drill", "patients"):
        assert f'src="/dashboard/chart/{name}.svg?lang={lang}"' in page.text
    assert "<code>verify:primary</code>" in page.text and "not mounted" in page.text
    assert "<script" not in page.text  # the hostile patient's name is nowhere here; no script at all


def test_the_charts_are_svg_holding_their_series(daemon_site: Site) -> None:
    client = daemon_site.login("operator")
    size = _svg(client, "size")
    assert {"size:primary", "used:primary", "forecast:primary"} <= _ids(size)
    assert "Store size and the day the disk is full" in _texts(size) and "primary: full about" in _texts(size)
    backup = _svg(client, "backup")
    assert {"backup:bytes_added", "backup:duration"} <= _ids(backup)
    bars = [e for e in backup.iter() if e.get("id", "").startswith("patch_")]
    assert bars  # one bar per run is drawn
    drill = _svg(client, "drill", "fr")
    assert {"drill:patient", "drill:archive", "drill:full_estimate", "rto:patient", "rto:full"} <= _ids(drill)
    assert "RTO patient (10 min)" in _texts(drill) and "RTO complet (30 min)" in _texts(drill)
    patients = _svg(client, "patients", "fr")
    assert {"patients:active", "patients:archived"} <= _ids(patients)
    assert "actif" in _texts(patients) and "archivé" in _texts(patients)


def test_the_chart_data_is_its_json_twin(daemon_site: Site) -> None:
    operator = daemon_site.bearer("operator")
    backup = operator.get("/api/dashboard/chart/backup").json()["runs"]
    assert [(r["duration_s"], r["bytes_added"], r["result"]) for r in backup] == [
        (42.5, 120_000_000, "ok"), (12.0, 3_000_000, "ok"), (1.5, None, "failed")]  # oldest first
    drill = operator.get("/api/dashboard/chart/drill").json()
    assert [(d["kind"], d["seconds"]) for d in drill["drills"]] == [
        ("patient", 20.0), ("archive", 40.0), ("patient", 25.0), ("archive", 50.0)]
    assert drill["rto_full_s"] == 1800.0
    size = operator.get("/api/dashboard/chart/size").json()["stores"]["primary"]
    assert len(size["points"]) == 7 and size["points"][-1]["used_bytes"] == 490 * GB
    assert size["full_on"] > iso(NOW)


def test_an_unknown_chart_is_404_naming_the_charts(site: Site) -> None:
    answer = site.bearer("operator").get("/api/dashboard/chart/secrets")
    assert answer.status_code == 404 and "size, backup, drill, patients" in answer.json()["error"]["message"]
    assert site.login("operator").get("/dashboard/chart/..%2Fconfig.svg").status_code == 404


def test_a_damaged_alerts_state_only_loses_since_when(site: Site, tmp_path: Path) -> None:
    (tmp_path / "alerts.json").write_text("{not json", encoding="utf-8")
    config = dataclasses.replace(site.config, daemon=dataclasses.replace(site.config.daemon, state_dir=tmp_path))
    app = create_app(config)
    client = type(site.bearer("operator"))(app, headers={"Authorization": f"Bearer {site.tokens['operator']}"})
    data = client.get("/api/dashboard").json()
    assert data["checks"] and all(c["since"] is None for c in data["checks"])


@pytest.mark.parametrize(("lang", "words"), [("fr", ["Destructions légales en attente", "sur le disque usb-b"]),
                                             ("en", ["Legal destructions pending", "on disk usb-b"])])
def test_a_copy_pending_destruction_is_shown_until_removed(site: Site, lang: str, words: list[str]) -> None:
    archive = "ab" * 32
    with open_catalog(site.config.catalog.url) as db:
        db.execute("INSERT INTO destructions (archive, decided, by_user, reason, certificate) VALUES (?, ?, ?, ?, ?)",
                   (archive, iso(NOW), "root", "retention over", "{}"))
        db.execute("INSERT INTO destruction_copies (archive, kind, place, removed, note) VALUES (?, ?, ?, ?, ?)",
                   (archive, "volume", "usb-b", None, "volume usb-b is not mounted"))
    try:
        client = site.login("operator")
        page = client.get("/dashboard", params={"lang": lang}).text
        assert all(word in page for word in words) and archive[:12] in page and "is not mounted" in page
        shown = site.bearer("operator").get("/api/dashboard").json()["pending_destruction"]
        assert [(p["archive"], p["kind"], p["place"]) for p in shown] == [(archive, "volume", "usb-b")]
    finally:
        with open_catalog(site.config.catalog.url) as db:
            db.execute("DELETE FROM destruction_copies WHERE archive = ?", (archive,))
            db.execute("DELETE FROM destructions WHERE archive = ?", (archive,))
    assert "destruction-title" not in site.login("operator").get("/dashboard").text
