"""Fixtures of the browser tests (test_web_browser.py): one headless Chromium and one served deployment per
module, and screenshots named after each test. The deployment and its helpers are in kit/browser.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kit.browser import CHROMIUM, CHROMIUM_ARGS, Deployment, Screenshots, prepare, stop, wait_until_up
from kit.files import free_port


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium for the module (a fresh context per test keeps tests apart)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    """Screenshots named after the test (`test_user_story` -> `user-story-01-login.png`)."""
    return Screenshots(re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_")).strip("-"))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The prepared deployment, served by `rtvault serve` on a free loopback port for the whole module."""
    port = free_port()
    deployment = prepare(tmp_path_factory.mktemp("web") / "site", port)
    log = deployment.home / "serve.log"
    env = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(deployment.config), "serve",
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=deployment.home, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deployment.url = f"http://127.0.0.1:{port}"
        wait_until_up(deployment.url, process, log)
        yield deployment
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")
