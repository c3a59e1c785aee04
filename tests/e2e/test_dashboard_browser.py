"""The dashboard in a real headless Chromium, as an operator opens it after the first restore drill: the
health, the jobs, the store, and the four charts drawn by the server (each an SVG image the browser decoded);
screenshots kept as artifacts (test-artifacts/screenshots/ and the test's tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from kit.browser import PASSWORDS, Deployment, Screenshots
from rtvault.catalog import open_catalog
from rtvault.config import load
from rtvault.jobs.health_space import sample_stores

pytestmark = pytest.mark.slow


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def drilled(deployment: Deployment) -> Deployment:
    """A real `rtvault drill` (recorded in the run journal) and one disk sample of the store."""
    deployment.rtvault("drill")
    config = load(deployment.config)
    with open_catalog(config.catalog.url) as db:
        assert sample_stores(config, db, datetime.now(UTC)) == ["primary"]
    return deployment


def _log_in(context: BrowserContext, site: Deployment, user: str) -> object:
    page = context.new_page()
    page.goto(site.url + "/login?next=/dashboard")
    page.get_by_label("Identifiant").fill(user)
    page.get_by_label("Mot de passe").fill(PASSWORDS[user])
    page.get_by_role("button", name="Se connecter").click()
    return page


def test_an_operator_sees_the_drill_against_the_rto(context: BrowserContext, drilled: Deployment,
                                                    shots: Screenshots, tmp_path: Path) -> None:
    page = _log_in(context, drilled, "operator")
    expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Tableau de bord")).to_have_attribute("aria-current", "page")
    expect(page.locator("table.checks")).to_contain_text("drill")
    jobs = page.locator("table.jobs")
    expect(jobs.locator("tr", has_text="drill")).to_contain_text("réussie")
    expect(jobs.locator("tr", has_text="verify")).to_contain_text("jamais exécutée")
    expect(page.locator("table.stores")).to_contain_text("primary")
    expect(page.locator("#targets")).to_contain_text("10 min")
    for name in ("size", "backup", "drill", "patients"):
        image = page.locator(f"#chart-{name} img")
        expect(image).to_be_visible()
        page.wait_for_load_state("load")
        assert image.evaluate("img => [img.complete, img.naturalWidth]") == [True, 691], name  # an SVG drawn
    shots.take(page, "fr")
    page.screenshot(path=str(tmp_path / "dashboard-fr.png"), full_page=True)
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator("#chart-drill img")).to_have_attribute("src", "/dashboard/chart/drill.svg?lang=en")
    drill = page.request.get(drilled.url + "/dashboard/chart/drill.svg?lang=en").text()
    assert "patient RTO (10 min)" in drill and 'id="drill:patient"' in drill
    shots.take(page, "en")
    page.screenshot(path=str(tmp_path / "dashboard-en.png"), full_page=True)
    assert (tmp_path / "dashboard-en.png").stat().st_size > 20_000


def test_a_viewer_has_no_dashboard(context: BrowserContext, drilled: Deployment) -> None:
    page = _log_in(context, drilled, "viewer")
    expect(page.locator("h1")).not_to_have_text("Tableau de bord")
    expect(page.get_by_role("link", name="Tableau de bord")).to_have_count(0)
