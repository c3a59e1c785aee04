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
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from kit.browser import HOSTILE_FIRST, HOSTILE_MRN, HOSTILE_NAME, PASSWORDS, STORY_PATIENT, Deployment, Screenshots

# One browser and one served deployment for the whole module (e2e/conftest.py); screenshots named after each test.


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, French as the browser's language."""
    ctx = chromium.new_context(locale="fr-FR", accept_downloads=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_chromium_renders_a_loopback_page(context: BrowserContext, shots: Screenshots, tmp_path: Path) -> None:
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
        context: BrowserContext, deployment: Deployment, shots: Screenshots, tmp_path: Path) -> None:
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
    expect(page.locator("table.versions ul.plain").get_by_text("sauvegarde")).to_have_count(2)  # one per version
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


# --- access, languages, roles ----------------------------------------------------------------------------------

def test_unauthenticated_visit_lands_on_login_then_returns(context: BrowserContext, deployment: Deployment,
                                                           shots: Screenshots) -> None:
    """Every page asks for a login first; after it, the user is back on the page asked for."""
    page = context.new_page()
    page.goto(deployment.url + "/")
    expect(page).to_have_url(re.compile(r"/login\b"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    page.goto(deployment.url + "/archives")
    expect(page).to_have_url(re.compile(r"/login\b"))
    shots.take(page, "login")
    page.get_by_label("Identifiant").fill("viewer")
    page.get_by_label("Mot de passe").fill(PASSWORDS["viewer"])
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(re.compile(r"/archives$"))
    shots.take(page, "archives")


def test_login_form_is_labelled_and_says_when_it_fails(context: BrowserContext, deployment: Deployment,
                                                       shots: Screenshots) -> None:
    page = context.new_page()
    page.goto(deployment.url + "/login")
    name, password = page.get_by_label("Identifiant"), page.get_by_label("Mot de passe")
    expect(name).to_be_focused()  # autofocus: a user types at once
    expect(password).to_have_attribute("type", "password")
    name.fill("operator")
    password.fill("not-the-password")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("incorrect")
    expect(page.get_by_label("Mot de passe")).to_have_value("")  # a wrong password is not sent back
    shots.take(page, "refused")


def test_english_switch_changes_the_labels_and_is_remembered(context: BrowserContext,
                                                             deployment: Deployment, shots: Screenshots) -> None:
    page = context.new_page()
    log_in(page, deployment, "viewer")
    expect(page.get_by_label("Nom", exact=True)).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_label("Last name")).to_be_visible()
    expect(page.get_by_role("button", name="Search")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shots.take(page, "english")
    page.get_by_label("Last name").fill("lefevre")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results-title")).to_contain_text("found")  # still English on the next page
    page.get_by_role("link", name="Français").click()
    expect(page.get_by_label("Nom", exact=True)).to_have_value("lefevre")  # the search is kept
    expect(page.locator("html")).to_have_attribute("lang", "fr")


def test_browser_language_english_is_honoured(chromium: Browser, deployment: Deployment) -> None:
    ctx = chromium.new_context(locale="en-GB")
    try:
        page = ctx.new_page()
        page.goto(deployment.url + "/login")
        expect(page.get_by_label("User name")).to_be_visible()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    finally:
        ctx.close()


def test_viewer_sees_no_download_or_restore_and_is_refused_them(context: BrowserContext,
                                                                deployment: Deployment, shots: Screenshots) -> None:
    page = context.new_page()
    log_in(page, deployment, "viewer")
    search_last_name(page, "lefevre")
    page.locator("a.patient-link", has_text=STORY_PATIENT).click()
    expect(version_rows(page)).to_have_count(2)
    expect(page.get_by_role("button", name="Télécharger")).to_have_count(0)
    expect(page.get_by_role("button", name="Restaurer")).to_have_count(0)
    expect(page.get_by_role("link", name="Journal d'audit")).to_have_count(0)
    shots.take(page, "patient")
    key = page.url.split("?")[0].rsplit("/", 1)[-1]
    version = (version_rows(page).first.get_attribute("id") or "").removeprefix("version-")
    refused = page.goto(f"{deployment.url}/patients/{key}/download?version={version}")
    assert refused is not None and refused.status == 403
    expect(page.get_by_role("alert")).to_be_visible()
    shots.take(page, "download-refused")
    refused = page.goto(deployment.url + "/audit")
    assert refused is not None and refused.status == 403
    page.goto(deployment.url + "/")
    csrf = page.locator("#logout-form input[name=csrf]").input_value()  # a well-formed request, but a viewer's
    before = set(deployment.restore_dir.iterdir())
    answer = page.request.post(f"{deployment.url}/patients/{key}/restore", form={"version": version, "csrf": csrf})
    assert answer.status == 403, answer.status
    assert set(deployment.restore_dir.iterdir()) == before


def test_archived_patient_is_found_from_the_form_and_from_the_archives_page(
        context: BrowserContext, deployment: Deployment, shots: Screenshots) -> None:
    """The patient the clinical day deleted is archived: the status criterion finds it, its page shows the
    archive beside its snapshot and a retention date, and the archives page leads back to it."""
    page = context.new_page()
    log_in(page, deployment, "viewer")
    page.get_by_label("Statut").select_option(label="archivé")
    page.get_by_role("button", name="Rechercher").click()
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("archive")
    name = rows.locator("a.patient-link").inner_text()
    rows.locator("a.patient-link").click()
    locations = page.locator("table.versions")
    expect(locations).to_contain_text("archive")
    expect(locations).to_contain_text("sauvegarde")
    expect(page.locator("#keep-until")).to_have_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    shots.take(page, "patient")
    page.get_by_role("link", name="Archives").click()
    archive = page.locator("table.archives tbody tr")
    expect(archive).to_have_count(1)
    expect(archive).to_contain_text("intacte")
    shots.take(page, "archives")
    archive.get_by_role("link").click()
    expect(page.locator("a.patient-link")).to_have_text([name])


def test_restore_from_the_archive_of_the_archived_patient(context: BrowserContext, deployment: Deployment,
                                                         shots: Screenshots) -> None:
    """An operator chooses the archive (not the backup) as the place to read the archived patient from: the
    new folder holds the patient and the Institution file Pinnacle needs."""
    page = context.new_page()
    log_in(page, deployment, "operator")
    page.get_by_label("Statut").select_option(label="archivé")
    page.get_by_role("button", name="Rechercher").click()
    page.locator("table.results a.patient-link").click()
    row = version_rows(page).filter(has=page.locator('option[value*=":archive:"]')).first
    archive = row.locator('option[value*=":archive:"]').first.get_attribute("value") or ""
    assert re.fullmatch(r"primary:archive:\S+", archive), archive
    row.get_by_label("Lire depuis").select_option(value=archive)
    shots.take(page, "archive-chosen")
    before = set(deployment.restore_dir.iterdir())
    row.get_by_role("button", name="Restaurer").click()
    expect(page.locator("#restored")).to_contain_text("archive")
    shots.take(page, "restored")
    made = set(deployment.restore_dir.iterdir()) - before
    assert len(made) == 1, made
    folder = made.pop()
    assert (folder / "Institution").is_file() and list(folder.glob("Institution_*/Mount_*/Patient_*/Patient"))


def test_usable_without_javascript(chromium: Browser, deployment: Deployment) -> None:
    """Server-rendered pages: with JavaScript off, an operator still logs in, searches and restores."""
    ctx = chromium.new_context(locale="fr-FR", java_script_enabled=False)
    try:
        page = ctx.new_page()
        log_in(page, deployment, "operator")
        search_last_name(page, "lefevre")
        page.locator("a.patient-link", has_text=STORY_PATIENT).click()
        before = set(deployment.restore_dir.iterdir())
        version_rows(page).first.get_by_role("button", name="Restaurer").click()
        expect(page.locator("#restored")).to_be_visible()
        assert len(set(deployment.restore_dir.iterdir()) - before) == 1
    finally:
        ctx.close()


# --- keyboard, hostile data ------------------------------------------------------------------------------------

def tab_to(page: Page, selector: str, most: int = 30) -> None:
    """Press Tab until an element matching the selector has the focus, as a keyboard user does."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus in {most} Tab presses")


def focus_is_visible(page: Page) -> bool:
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && s.outlineWidth !== '0px' || s.boxShadow !== 'none'; }""")


def test_keyboard_only(context: BrowserContext, deployment: Deployment, shots: Screenshots) -> None:
    """Log in, search and open the patient without the mouse: autofocus, Tab, typing and Enter."""
    page = context.new_page()
    page.goto(deployment.url + "/")
    expect(page.get_by_label("Identifiant")).to_be_focused()  # autofocus lands a moment after "load"
    page.keyboard.type("operator")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS["operator"])
    page.keyboard.press("Enter")
    expect(page.locator("#signed-in")).to_contain_text("operator")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()  # the skip link comes first
    tab_to(page, "#last_name")
    assert focus_is_visible(page), "the focused search field shows no focus ring"
    page.keyboard.type("lefevre")
    page.keyboard.press("Enter")
    expect(page.locator("a.patient-link", has_text=STORY_PATIENT)).to_be_visible()
    tab_to(page, "a.patient-link")
    assert focus_is_visible(page), "the focused result link shows no focus ring"
    shots.take(page, "results")
    page.keyboard.press("Enter")
    expect(page.locator("#patient-name")).to_contain_text(STORY_PATIENT)


def test_patient_named_with_markup_is_shown_as_text(context: BrowserContext, deployment: Deployment,
                                                    shots: Screenshots) -> None:
    """A patient file may hold `<script>` in a name: it must read as text, and nothing may run."""
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, deployment, "operator")
    page.get_by_label("IPP / n° de dossier").fill(HOSTILE_MRN)
    page.get_by_role("button", name="Rechercher").click()
    link = page.locator("a.patient-link")
    expect(link).to_have_count(1)
    expect(link).to_contain_text(HOSTILE_NAME)
    shots.take(page, "results")
    link.click()
    expect(page.locator("#patient-name")).to_contain_text(HOSTILE_NAME)
    expect(page.locator("#patient-name")).to_contain_text(HOSTILE_FIRST)
    assert page.locator("main script, main img").count() == 0
    assert HOSTILE_NAME in page.title()
    shots.take(page, "patient")
    page.goto(deployment.url + "/")
    page.get_by_label("Nom", exact=True).fill(HOSTILE_NAME)  # markup typed into the form comes back as text
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_label("Nom", exact=True)).to_have_value(HOSTILE_NAME)
    assert page.locator("main script, main img").count() == 0
    shots.take(page, "typed-markup")
    assert dialogs == []
