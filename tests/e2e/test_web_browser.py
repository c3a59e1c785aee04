"""The web interface driven in a real headless Chromium, as a new user would: log in, search, open a patient,
download and restore versions, read the audit trail; languages, roles, keyboard use and hostile patient names.

Screenshots of every step land in test-artifacts/screenshots/ (kept by CI as artifacts).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Screenshots, chromium, deployment, shots  # noqa: F401  (fixtures)


@pytest.fixture
def context(chromium: object) -> Iterator[object]:  # noqa: F811
    """A fresh browser profile (no cookies) per test, French as the browser's language."""
    ctx = chromium.new_context(locale="fr-FR", accept_downloads=True,  # type: ignore[attr-defined]
                               viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_chromium_renders_a_loopback_page(context: object, shots: Screenshots, tmp_path: Path) -> None:  # noqa: F811
    """The browser itself works (so a failure below is the web interface's, not the test bench's)."""
    (tmp_path / "index.html").write_text("<title>banc</title><h1>Bonjour, Chromium</h1>", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = context.new_page()  # type: ignore[attr-defined]
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        assert page.get_by_role("heading").inner_text() == "Bonjour, Chromium"
        assert shots.take(page, "loopback").stat().st_size > 1000
    finally:
        server.shutdown()
        server.server_close()
