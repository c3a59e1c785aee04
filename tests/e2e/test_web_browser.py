"""The web interface driven in a real headless Chromium, as a new user would: log in, search, open a patient,
download and restore versions, read the audit trail; languages, roles, keyboard use and hostile patient names.

Screenshots of every step land in test-artifacts/screenshots/ (kept by CI as artifacts).
"""

from __future__ import annotations

import csv
import functools
import http.server
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import PASSWORDS, STORY_PATIENT, Deployment, Screenshots, chromium, deployment, shots  # noqa: F401
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:  # noqa: F811
    """A fresh browser profile (no cookies) per test, French as the browser's language."""
    ctx = chromium.new_context(locale="fr-FR", accept_downloads=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_chromium_renders_a_loopback_page(context: BrowserContext, shots: Screenshots, tmp_path: Path) -> None:  # noqa: F811
    """The browser itself works (so a failure below is the web interface's, not the test bench's)."""
    (tmp_path / "index.html").write_text("<title>banc</title><h1>Bonjour, Chromium</h1>", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        assert page.get_by_role("heading").inner_text() == "Bonjour, Chromium"
        assert shots.take(page, "loopback").stat().st_size > 1000
    finally:
        server.shutdown()
        server.server_close()


# --- helpers ---------------------------------------------------------------------------------------------------

def log_in(page: Page, site: Deployment, user: str) -> None:
    """The login form, filled as a person does (French labels, the default language)."""
    page.goto(site.url + "/login")
    page.get_by_label("Identifiant").fill(user)
    page.get_by_label("Mot de passe").fill(PASSWORDS[user])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#signed-in")).to_contain_text(user)


def search_last_name(page: Page, text: str) -> None:
    page.get_by_label("Nom", exact=True).fill(text)
    page.get_by_role("button", name="Rechercher").click()
    expect(page.locator("#results-title")).to_contain_text("trouvé")


def version_rows(page: Page) -> Locator:
    return page.locator("table.versions tbody tr")


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def audit_rows(page: Page, action: str, user: str) -> Locator:
    return page.locator(f"table.audit tbody tr.action-{action}").filter(
        has=page.get_by_role("cell", name=user, exact=True))


# --- the user story of issue 5 ---------------------------------------------------------------------------------

def test_user_story(
        context: BrowserContext, deployment: Deployment, shots: Screenshots, tmp_path: Path) -> None:  # noqa: F811
    """Issue 5's "done when": an operator logs in (French, the default), searches `lefevre`, finds the patient
    with its two versions, downloads one and restores the other; then an admin sees all of it in the audit."""
    page = context.new_page()
    page.goto(deployment.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    shots.take(page, "login")

    log_in(page, deployment, "operator")
    shots.take(page, "search-form")
    search_last_name(page, "lefevre")
    found = page.locator("a.patient-link", has_text=STORY_PATIENT)
    expect(found).to_have_count(1)
    shots.take(page, "results")

    found.click()
    expect(page.locator("#patient-name")).to_contain_text(STORY_PATIENT)
    expect(version_rows(page)).to_have_count(2)
    expect(page.locator("table.versions").get_by_text("sauvegarde")).to_have_count(2)  # one snapshot per version
    shots.take(page, "patient")
    key = page.url.split("?")[0].rsplit("/", 1)[-1]

    with page.expect_download() as started:
        version_rows(page).nth(0).get_by_role("button", name="Télécharger").click()
    tar_path = tmp_path / started.value.suggested_filename
    started.value.save_as(tar_path)
    names = tar_names(tar_path)
    assert "Institution" in names, names
    assert any(re.fullmatch(r"Institution_1/Mount_0/Patient_\d+/Patient", name) for name in names), names
    shots.take(page, "downloaded")

    before = set(deployment.restore_dir.iterdir())
    version_rows(page).nth(1).get_by_role("button", name="Restaurer").click()
    expect(page.locator("#restored")).to_be_visible()
    shots.take(page, "restored")
    restored = set(deployment.restore_dir.iterdir()) - before
    assert len(restored) == 1, restored
    assert list(restored.pop().rglob("Patient")), "the restored directory holds no Patient file"

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/login"))
    shots.take(page, "logged-out")
    page.goto(deployment.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))  # the session is gone, not just the page

    log_in(page, deployment, "admin")
    page.get_by_role("link", name="Journal d'audit").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    for action in ("login", "search", "view", "download", "restore"):
        expect(audit_rows(page, action, "operator").first).to_be_visible()
    expect(audit_rows(page, "search", "operator").first).to_contain_text("lefevre")
    for action in ("view", "download", "restore"):
        expect(audit_rows(page, action, "operator").first).to_contain_text(key)
    shots.take(page, "audit")

    with page.expect_download() as started:
        page.get_by_role("link", name="Exporter en CSV").click()
    csv_path = tmp_path / "audit.csv"
    started.value.save_as(csv_path)
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    done = {(row.get("user") or row.get("username"), row["action"]) for row in rows}
    assert {("operator", a) for a in ("login", "search", "view", "download", "restore")} <= done, done
