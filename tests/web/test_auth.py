"""Signing in and out, rate limiting, credentials on the API, roles, CSRF, cookies and security headers."""

from __future__ import annotations

import pytest

from kit.web import csrf_of, sign_in

# What each role may do, through the API with a bearer token (no CSRF needed there).
ACTIONS = ("search", "view", "archives", "download", "restore", "audit")
ALLOWED = {"viewer": {"search", "view", "archives"},
           "operator": {"search", "view", "archives", "download", "restore"},
           "admin": set(ACTIONS)}


def _act(client, action: str, key: str):
    if action == "search":
        return client.get("/api/search", params={"last_name": "da silva"})
    if action == "view":
        return client.get(f"/api/patients/{key}")
    if action == "archives":
        return client.get("/api/archives")
    if action == "download":
        return client.get(f"/api/patients/{key}/download")
    if action == "restore":
        return client.post(f"/api/patients/{key}/restore", json={})
    return client.get("/api/audit")


def test_login_then_logout(site) -> None:
    client = site.client()
    assert client.get("/").headers["location"] == "/login?next=%2F"
    answer = sign_in(client, "viewer", site.password, "/archives")
    assert answer.status_code == 303 and answer.headers["location"] == "/archives"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # loopback: plain HTTP
    page = client.get("/")
    assert page.status_code == 200 and 'id="signed-in"' in page.text
    assert client.post("/logout", data={"csrf": csrf_of(client)}).headers["location"] == "/login"
    assert client.get("/").status_code == 303
    assert client.get("/api/search").status_code == 401


def test_wrong_password_is_refused_and_audited(site) -> None:
    client = site.client("127.0.0.7")
    answer = sign_in(client, "viewer", "not the password at all")
    assert answer.status_code == 401
    assert 'id="login-error"' in answer.text and "rtvault_session" not in answer.headers.get("set-cookie", "")
    failed = site.audit(action="login_failed", user="viewer")
    assert any(e["address"] == "127.0.0.7" for e in failed)


def test_login_without_the_form_token_is_refused(site) -> None:
    client = site.client()
    answer = client.post("/login", data={"username": "viewer", "password": site.password, "login_token": "forged"})
    assert answer.status_code == 403


def test_rate_limiting_answers_429(site) -> None:
    client = site.client("127.0.0.9")
    statuses = [sign_in(client, "operator", f"wrong password {i}").status_code for i in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    blocked = sign_in(client, "operator", site.password)  # even the right password, for now
    assert blocked.status_code == 429 and "Trop de tentatives" in blocked.text
    assert sign_in(site.client("127.0.0.10"), "operator", site.password).status_code == 303  # other workstations


def test_next_is_never_an_open_redirect(site) -> None:
    for wanted in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        answer = sign_in(site.client(), "viewer", site.password, wanted)
        assert answer.headers["location"] == "/", wanted


def test_cookie_is_secure_off_loopback(site) -> None:
    answer = sign_in(site.client("10.20.30.40", "https://rtvault.example"), "viewer", site.password)
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]
    plain = site.client("10.20.30.40")  # over plain HTTP the browser never sends the login form's cookie back
    assert sign_in(plain, "viewer", site.password).status_code == 403
    proxied = site.client("127.0.0.1", "https://rtvault.chu-exemple.fr")  # a reverse proxy on this machine
    assert "Secure" in sign_in(proxied, "viewer", site.password).headers["set-cookie"]


def test_api_needs_credentials(site) -> None:
    anonymous = site.client()
    key = site.key_of("da silva")
    for path in ("/api/search?last_name=x", f"/api/patients/{key}", "/api/archives", "/api/audit",
                 f"/api/patients/{key}/download"):
        answer = anonymous.get(path)
        assert answer.status_code == 401 and "error" in answer.json(), path
    assert anonymous.post(f"/api/patients/{key}/restore", json={}).status_code == 401
    forged = anonymous.get("/api/search", headers={"Authorization": "Bearer rtv_not-a-token"})
    assert forged.status_code == 401
    assert anonymous.get(f"/patients/{key}").headers["location"] == f"/login?next=%2Fpatients%2F{key}"


def test_bearer_token_works_on_the_api_only(site) -> None:
    client = site.bearer("viewer")
    assert client.get("/api/search", params={"last_name": "faure"}).json()["total"] >= 1
    assert client.get("/").status_code == 303  # pages need a browser session


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_authorization_matrix(site, role: str) -> None:
    key = site.key_of("gauthier")
    for action in ACTIONS:
        answer = _act(site.bearer(role), action, key)
        expected = 200 if action in ALLOWED[role] else 403
        assert answer.status_code == expected, (role, action, answer.text[:200])


def test_viewer_gets_403_pages_and_no_action_buttons(site) -> None:
    client = site.login("viewer")
    key = site.key_of("gauthier")
    assert client.get("/audit").status_code == 403
    assert client.get("/audit.csv").status_code == 403
    assert client.get(f"/patients/{key}/download").status_code == 403
    page = client.get(f"/patients/{key}").text
    assert "restore-form" not in page and 'class="download"' not in page
    assert 'href="/audit"' not in client.get("/").text


def test_restore_needs_the_csrf_token(site) -> None:
    client = site.login("operator")
    key = site.key_of("gauthier")
    before = set((site.root / "restores").iterdir())
    assert client.post(f"/patients/{key}/restore", data={}).status_code == 403
    assert client.post(f"/patients/{key}/restore", data={"csrf": "wrong"}).status_code == 403
    assert client.post(f"/api/patients/{key}/restore", json={}).status_code == 403
    assert client.post(f"/api/patients/{key}/restore", json={}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert set((site.root / "restores").iterdir()) == before
    token = csrf_of(client, f"/patients/{key}")
    assert client.post(f"/patients/{key}/restore", data={"csrf": token}).status_code == 200
    assert client.post(f"/api/patients/{key}/restore", json={}, headers={"X-CSRF-Token": token}).status_code == 200
    assert len(set((site.root / "restores").iterdir()) - before) == 2


def test_logout_needs_the_csrf_token(site) -> None:
    client = site.login("viewer")
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_security_headers(site) -> None:
    client = site.login("viewer")
    page = client.get(f"/patients/{site.key_of('faure')}")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert client.get("/static/style.css").status_code == 200


def test_login_form_sizes_are_capped_before_hashing(site) -> None:
    from rtvault.catalog import open_catalog
    from rtvault.catalog.users import MAX_PASSWORD_BYTES, add_user
    from rtvault.errors import InputError

    longest = "é" * (MAX_PASSWORD_BYTES // 2)  # 1024 bytes in UTF-8: the longest password accepted
    with open_catalog(site.config.catalog.url) as db:
        add_user(db, "longpass", "viewer", longest)
        with pytest.raises(InputError, match="at most 1024 bytes"):
            add_user(db, "toolong", "viewer", longest + "x")
    form = site.client().get("/login").text
    assert 'maxlength="100"' in form and 'maxlength="1024"' in form
    client = site.client("127.0.0.11")
    assert sign_in(client, "longpass", longest).status_code == 303
    refused = site.client("127.0.0.12")
    assert sign_in(refused, "longpass", longest + "x").status_code == 401  # refused before Argon2 runs
    assert sign_in(refused, "v" * 101, site.password).status_code == 401
    failures = [e for e in site.audit(action="login_failed") if e["address"] == "127.0.0.12"]
    assert len(failures) == 2 and all(len(e["user"]) <= 100 for e in failures)
