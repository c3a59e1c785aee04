"""A burst of simultaneous wrong passwords against a real uvicorn server, on SQLite and on PostgreSQL: at most
the limit are checked (401), every other one is refused (429), and the audit trail records the lockout once."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from kit import postgres
from kit.config import write_config
from rtvault.catalog import open_catalog
from rtvault.catalog.audit import entries
from rtvault.catalog.logins import MAX_USER_FAILURES
from rtvault.catalog.users import add_user
from rtvault.config import load
from rtvault.web.app import create_app

BURST = 24



@pytest.fixture(scope="module")
def postgres_url() -> Iterator[object]:
    server = postgres.start_or_skip()
    yield server.new_database
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A real server of a site with one operator; its base URL."""
    url = (f"sqlite:///{tmp_path / 'catalog.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url")())
    (tmp_path / "pinnacle").mkdir()
    config = load(write_config(tmp_path / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                               catalog={"url": url}))
    with open_catalog(url) as db:
        add_user(db, "operator", "operator", "correct horse battery staple")
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server never started"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield url, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_a_burst_of_wrong_passwords_gets_at_most_the_limit_checked(served) -> None:
    url, base = served
    forms = []
    for _ in range(BURST):  # each attempt with its own sign-in form, as separate browsers would
        client = httpx.Client(base_url=base, follow_redirects=False)
        token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text).group(1)
        forms.append((client, token))
    start = threading.Barrier(BURST)
    statuses: list[int] = []

    def attempt(client: httpx.Client, token: str) -> None:
        start.wait()
        answer = client.post("/login", data={"username": "operator", "password": "not the password",
                                             "login_token": token}, timeout=120)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=attempt, args=form) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for client, _token in forms:
        client.close()
    assert sorted(statuses) == [401] * MAX_USER_FAILURES + [429] * (BURST - MAX_USER_FAILURES)
    with open_catalog(url) as db:
        failed = entries(db, action="login_failed")[0]
    assert [e.result for e in failed].count("wrong user name or password") == MAX_USER_FAILURES
    assert [e.result for e in failed].count("too many attempts") == 1  # the rest are counted, not one row each
