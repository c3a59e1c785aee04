"""`/reconcile`, its twin `/api/reconcile` and `/reconcile.csv` on a site of their own (kit.reconcile: a database two
years idle, a primary store and its offsite copy): the three lists as the command gives them, the page in French
and English with no script, who may read it, each reading audited, and an unmounted source answered 503."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from kit.files import set_last_name
from kit.reconcile import ReconcileSite, age
from kit.web import PASSWORD, ROLES, XSS_NAME, Site
from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, create_token
from rtvault.web.app import create_app

NEW = "Institution_1/Mount_0/Patient_999999"


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReconcileSite, Site]:
    """Every patient safe to delete (one of them named `<script>...`) but one changed since its archive was made;
    a new patient never captured; a user per role."""
    site = ReconcileSite.made(tmp_path_factory.mktemp("reconcile-web"))
    hostile, changed, copied = site.paths()[:3]
    set_last_name(site.root / hostile / "Patient", XSS_NAME)
    age(site.root / hostile)
    site.backup()
    site.made_safe()
    os.chmod(site.root / changed / "Patient", 0o600)
    shutil.copytree(site.root / copied, site.root / NEW)
    tokens = {}
    with open_catalog(site.config.catalog.url) as db:
        for role in ROLES:
            add_user(db, role, role, PASSWORD)
            tokens[role] = create_token(db, role, "tests")
    return site, Site(site.base, site.config, create_app(site.config), tokens)


def test_the_api_twin_is_the_command_s_json(reconciled: tuple[ReconcileSite, Site]) -> None:
    site, web = reconciled
    answer = web.bearer("operator").get("/api/reconcile").json()
    assert answer == site.reconcile().to_json()
    assert [e["path"] for e in answer["never_captured"]] == [NEW]
    changed = site.paths()[1]  # its Patient file's mode changed since the archive was made
    assert sorted(e["path"] for e in answer["safe_to_delete"]) == [p for p in site.paths() if p not in (changed, NEW)]
    assert web.audit(action="reconcile")[0]["detail"] == {"never_captured": 1, "under_copied": 0,
                                                          "safe_to_delete": len(site.paths()) - 2}


@pytest.mark.parametrize(("lang", "words"), [
    ("fr", ["Réconciliation avec Pinnacle", "Supprimables de Pinnacle", "Dans Pinnacle, jamais sauvegardés",
            "Archivés sans deux copies vérifiées", "Inactifs, pas encore supprimables", "Aucun patient."]),
    ("en", ["Reconciliation with Pinnacle", "Safe to delete from Pinnacle", "In Pinnacle, never backed up",
            "Archived without two verified copies", "Idle, not safe to delete yet", "No patient."]),
])
def test_the_page_in_french_and_english_without_script(reconciled: tuple[ReconcileSite, Site], lang: str,
                                                       words: list[str]) -> None:
    site, web = reconciled
    page = web.login("operator").get("/reconcile", params={"lang": lang})
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
    for word in words:
        assert word in page.text, word
    assert "<script" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="/reconcile" aria-current="page"' in page.text and 'href="/reconcile.csv"' in page.text
    safe_key = site.reconcile().to_json()["safe_to_delete"][0]["key"]
    assert f'href="/patients/{safe_key}"' in page.text


def test_the_csv_download(reconciled: tuple[ReconcileSite, Site]) -> None:
    site, web = reconciled
    answer = web.login("admin").get("/reconcile.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "rtvault-reconcile.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {row["list"] for row in rows} == {"never_captured", "safe_to_delete"}
    assert answer.text == site.reconcile().csv()


def test_a_viewer_is_refused_and_sees_no_link(reconciled: tuple[ReconcileSite, Site]) -> None:
    _site, web = reconciled
    viewer = web.login("viewer")
    for path in ("/reconcile", "/reconcile.csv"):
        assert viewer.get(path).status_code == 403
    assert web.bearer("viewer").get("/api/reconcile").status_code == 403
    assert 'href="/reconcile"' not in viewer.get("/").text
    assert web.client().get("/api/reconcile").status_code == 401


def test_an_unmounted_source_is_a_503_naming_it(reconciled: tuple[ReconcileSite, Site], tmp_path: Path) -> None:
    site, web = reconciled
    hidden = tmp_path / "elsewhere"
    site.root.rename(hidden)
    try:
        answer = web.bearer("operator").get("/api/reconcile")
        page = web.login("operator").get("/reconcile", params={"lang": "fr"})
    finally:
        hidden.rename(site.root)
    assert answer.status_code == 503 and answer.json()["error"]["kind"] == "source"
    assert str(site.root) in answer.json()["error"]["message"]
    assert page.status_code == 503 and "Base Pinnacle inaccessible" in page.text
