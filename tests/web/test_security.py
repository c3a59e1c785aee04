"""The security items of issue 10 on the shared synthetic site: input that used to answer 500, HEAD on a
download, refusals in the audit trail, redirects, cookies behind a proxy, CSRF tokens."""

from __future__ import annotations

import dataclasses
import grp
import os
import stat
import warnings
from pathlib import Path

import pytest

from kit.web import csrf_of, sign_in
from rtvault.config import load
from rtvault.errors import ConfigError
from rtvault.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.mark.parametrize(("path", "name", "value"), [
    ("/api/search", "page", "²"), ("/api/search", "per_page", "³"), ("/api/audit", "page", "²"),
    ("/api/audit", "per_page", "٣")
])
def test_numbers_that_int_refuses_are_a_400_naming_the_field(site, path: str, name: str, value: str) -> None:
    answer = site.bearer("admin").get(path, params={"last_name": "faure", name: value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(f"{name} must be a whole number")


@pytest.mark.parametrize("until", ["9999-12-31", "9999-12-31T23:00:00-05:00"])
def test_an_until_past_the_last_date_is_a_400_naming_the_field(site, until: str) -> None:
    answer = site.bearer("admin").get("/api/audit", params={"until": until})
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("until ")
    page = site.login("admin").get("/audit", params={"until": until})
    assert page.status_code == 400 and "out of range" in page.text


def test_head_on_a_download_builds_nothing_and_records_nothing(site) -> None:
    client = site.login("operator", "127.0.0.61")
    key = site.key_of("gauthier")
    before = len(site.audit(action="download", patient=key))
    head = client.head(f"/patients/{key}/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/x-tar"
    assert head.headers["content-disposition"].startswith("attachment;") and key in head.headers["content-disposition"]
    assert "content-length" not in head.headers  # unknown until the tar is built: not a misleading 0
    assert client.head("/patients/0123456789abcdef/download").status_code == 404
    assert len(site.audit(action="download", patient=key)) == before
    got = client.get(f"/patients/{key}/download")
    assert got.status_code == 200 and len(got.content) > 10_000
    assert len(site.audit(action="download", patient=key)) == before + 1


def test_refusals_are_audited(site) -> None:
    key = site.key_of("gauthier")
    viewer = site.login("viewer", "127.0.0.62")
    assert viewer.get("/audit").status_code == 403
    assert site.bearer("viewer").get(f"/api/patients/{key}/download").status_code == 403
    operator = site.login("operator", "127.0.0.62")
    assert operator.post(f"/patients/{key}/restore", data={"csrf": "forged"}).status_code == 403
    assert operator.post("/logout", data={"csrf": "forged"}).status_code == 403
    refused = site.audit(action="refused")
    role = [e for e in refused if e["user"] == "viewer" and e["address"] == "127.0.0.62"]
    assert role and role[-1]["detail"] == {"method": "GET", "path": "/audit", "needed": "admin"}
    assert "admin role" in role[-1]["result"]
    api = [e for e in refused if e["user"] == "viewer" and e["patient"] == key]
    assert api and api[0]["detail"]["path"] == f"/api/patients/{key}/download"
    csrf = [e for e in refused if e["user"] == "operator" and e["address"] == "127.0.0.62"]
    assert {e["detail"]["path"] for e in csrf} == {f"/patients/{key}/restore", "/logout"}
    assert all("security token" in e["result"] for e in csrf)


def _restore(app, site) -> Path:
    client = TestClient(app, headers={"Authorization": f"Bearer {site.tokens['operator']}"})
    before = set((site.root / "restores").iterdir())
    old = os.umask(0o022)
    try:
        answer = client.post(f"/api/patients/{site.key_of('faure')}/restore", json={})
    finally:
        os.umask(old)
    assert answer.status_code == 200, answer.text
    made = set((site.root / "restores").iterdir()) - before
    assert len(made) == 1
    return made.pop()


def test_a_restore_folder_is_closed_to_other_users(site) -> None:
    folder = _restore(site.app, site)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (folder / "Institution").is_file()  # what is restored inside keeps its own modes


def test_a_restore_folder_is_readable_by_the_configured_group(site) -> None:
    # Another group than the process's own when it may use one (root may use any), to see the folder given to it.
    usable = [g.gr_gid for g in grp.getgrall()] if os.geteuid() == 0 else os.getgroups()
    group = grp.getgrgid(next((gid for gid in usable if gid != os.getegid()), os.getegid()))
    web = dataclasses.replace(site.config.web, restore_group=group.gr_name)
    folder = _restore(create_app(dataclasses.replace(site.config, web=web)), site)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750 and folder.stat().st_gid == group.gr_gid


def test_an_unknown_restore_group_is_a_configuration_error(site, tmp_path) -> None:
    toml = (site.root / "rtvault.toml").read_text(encoding="utf-8")
    (tmp_path / "rtvault.toml").write_text(toml + 'restore_group = "no-such-group-here"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"restore_group.*names no group"):
        load(tmp_path / "rtvault.toml")


def test_slash_redirects_are_relative_and_never_name_the_host(site) -> None:
    client = site.login("viewer")
    for asked, location in (("/archives/", "/archives"), ("/archives/?damaged=1", "/archives?damaged=1"),
                            ("/api/search/?last_name=faure", "/api/search?last_name=faure")):
        answer = client.get(asked, headers={"Host": "evil.example"})
        assert answer.status_code == 307 and answer.headers["location"] == location, asked
    assert client.get("http://127.0.0.1//evil.example/").status_code == 404
    assert client.get("/nulle-part/").status_code == 404
    assert client.get("/static/nulle-part.css").status_code == 404  # no redirect to .../ and back


def _proxied(site, **web) -> object:
    config = dataclasses.replace(site.config, web=dataclasses.replace(site.config.web, **web))
    return create_app(config)


def _cookie_after_sign_in(app, site, address: str = "127.0.0.1", headers: dict | None = None):
    # The browser talks HTTPS to the proxy, which forwards to http://127.0.0.1:8080 keeping that Host.
    client = TestClient(app, "https://127.0.0.1:8080", client=(address, 50000), follow_redirects=False,
                        headers=headers or {})
    answer = sign_in(client, "viewer", site.password)
    assert answer.status_code == 303, answer.text
    return answer.headers["set-cookie"]


def test_public_url_decides_the_secure_flag_behind_a_local_proxy(site) -> None:
    assert "Secure" not in _cookie_after_sign_in(site.app, site)
    assert "Secure" in _cookie_after_sign_in(_proxied(site, public_url="https://rtvault.chu-exemple.fr"), site)


def test_forwarded_headers_count_only_from_trusted_proxies(site) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1, 203.0.113.77"}
    assert "Secure" not in _cookie_after_sign_in(site.app, site, headers=forwarded)  # anyone can send them
    trusting = _proxied(site, trusted_proxies=("127.0.0.0/8",))
    assert "Secure" in _cookie_after_sign_in(trusting, site, headers=forwarded)
    logins = [e for e in site.audit(action="login", user="viewer")]
    assert logins[0]["address"] == "203.0.113.77"  # the client the proxy saw, not the proxy, not a forged start
    plain = {"X-Forwarded-Proto": "http"}
    assert "Secure" not in _cookie_after_sign_in(trusting, site, "127.0.0.1", headers=plain)


def test_the_csrf_token_is_never_taken_from_the_query_string(site) -> None:
    client = site.login("operator")
    key = site.key_of("gauthier")
    token = csrf_of(client, f"/patients/{key}")
    assert client.post(f"/patients/{key}/restore?csrf={token}", data={}).status_code == 403
    assert client.post(f"/logout?csrf={token}").status_code == 403
    assert client.post(f"/patients/{key}/restore", data={"csrf": token}).status_code == 200
