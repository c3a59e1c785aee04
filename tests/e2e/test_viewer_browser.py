"""The patient viewer in a real headless Chromium, as a viewer opens a patient after the nightly backup: the CT
slice drawn by the server (a PNG the browser decoded), the dose legend, the DVH chart, the plan; the arrow keys
move through the slices (the small script), and the links do the same without it; screenshots kept as artifacts
(test-artifacts/screenshots/)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from kit.browser import PASSWORDS, STORY_PATIENT, Deployment, Screenshots

pytestmark = pytest.mark.slow


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(locale="fr-FR", viewport={"width": 1280, "height": 1000})
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def _open_viewer(context: BrowserContext, site: Deployment, **options: bool) -> object:
    page = context.new_page(**options)  # type: ignore[arg-type]
    page.goto(site.url + "/login")
    page.get_by_label("Identifiant").fill("viewer")
    page.get_by_label("Mot de passe").fill(PASSWORDS["viewer"])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#signed-in")).to_contain_text("viewer")
    page.get_by_label("Nom", exact=True).fill("lefevre")
    page.get_by_role("button", name="Rechercher").click()
    page.locator("a.patient-link", has_text=STORY_PATIENT).click()
    page.get_by_role("link", name="Visualiser le scanner, les contours et la dose").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Visualisation")
    return page


def _decoded(page: object) -> list:
    image = page.locator("#slice-image")  # type: ignore[attr-defined]
    page.wait_for_function("() => { const i = document.getElementById('slice-image');"  # type: ignore[attr-defined]
                           " return i.complete && i.naturalWidth > 0; }")
    return image.evaluate("img => [img.complete, img.naturalWidth, img.getAttribute('src')]")


def test_a_viewer_scrolls_through_the_ct_with_the_keyboard(context: BrowserContext, deployment: Deployment,
                                                          shots: Screenshots) -> None:
    page = _open_viewer(context, deployment)
    complete, width, source = _decoded(page)
    assert complete and width == 512 and "plane=axial" in source
    expect(page.locator("#dose-legend li")).to_have_count(8)
    expect(page.locator("#dose-legend")).to_contain_text("Gy")
    expect(page.locator("#beams tbody tr").first).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#dvh-chart img')].every(i => i.naturalWidth > 0)")
    shots.take(page, "axial")
    start = int(page.locator("#slice").get_attribute("data-slice"))
    page.locator("body").press("ArrowDown" if start > 1 else "ArrowUp")
    moved = start - 1 if start > 1 else start + 1
    expect(page.locator("#slice")).to_have_attribute("data-slice", str(moved))
    expect(page.locator("#slice-label")).to_contain_text(f"coupe {moved} /")
    complete, width, source = _decoded(page)
    assert complete and width == 512 and f"slice={moved}&" in source
    assert f"slice={moved}" in page.url  # the address follows: a reload shows the same slice
    page.locator("body").press("PageUp")
    count = int(page.locator("#slice").get_attribute("data-count"))
    expect(page.locator("#slice")).to_have_attribute("data-slice", str(min(moved + 10, count)))
    expect(page.locator("#slice-label")).to_contain_text(f"coupe {min(moved + 10, count)} / {count}")
    expect(page.locator('a[data-step="-1"]')).to_have_attribute("href", re.compile(
        rf"slice={min(moved + 10, count) - 1}&"))
    shots.take(page, "keyboard")
    page.get_by_role("link", name="Coronal").click()
    expect(page.locator("#slice-label")).to_contain_text("Coronal")
    assert _decoded(page)[0]
    page.get_by_role("link", name="Poumon").click()
    expect(page.locator("#window")).to_have_value("lung")
    shots.take(page, "coronal-lung")


def test_without_javascript_the_links_move_through_the_slices(chromium: Browser, deployment: Deployment,
                                                              shots: Screenshots) -> None:
    context = chromium.new_context(locale="fr-FR", java_script_enabled=False)
    try:
        page = _open_viewer(context, deployment)
        start = int(page.locator("#slice").get_attribute("data-slice"))
        page.locator('a[data-step="1"]').click()
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(start + 1))
        page.locator("#slice-number").fill("1")
        page.get_by_role("button", name="Afficher").click()
        expect(page.locator("#slice")).to_have_attribute("data-slice", "1")
        page.locator("body").press("ArrowUp")  # no script: the keys do nothing
        expect(page.locator("#slice")).to_have_attribute("data-slice", "1")
        shots.take(page, "no-javascript")
    finally:
        context.close()
