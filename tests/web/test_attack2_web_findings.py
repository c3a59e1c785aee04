"""Failures found by a hostile test of the web interface's security fixes (sign-in rate limiting), each kept as
a minimal in-process reproduction (they fail on the code they were found on)."""

from __future__ import annotations

import gzip
import io
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import postgres
from kit.cli import rtvault, run_cli
from kit.config import write_config
from kit.web import PASSWORD, Site, login_token, sign_in
from rtvault.catalog import open_catalog
from rtvault.catalog.logins import MAX_USER_FAILURES
from rtvault.catalog.users import add_user, create_token
from rtvault.config import load
from rtvault.jobs.catalog import refresh
from rtvault.web.app import create_app

with warnings.catch_warnings():  # starlette asks for httpx2, not installed; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_addresses_of_one_ipv6_prefix_share_the_sign_in_limit(site: Site) -> None:
    statuses = []
    for host in range(1, MAX_USER_FAILURES + 4):
        client = site.client(address=f"2001:db8:aaaa:bbbb::{host:x}", base_url="https://rtvault.test")
        statuses.append(sign_in(client, "admin", "wrong password, guessed").status_code)
    # one attacker on one /64 (what an ISP hands a single customer) is past the per-(address, name) limit
    assert 429 in statuses, statuses



@pytest.fixture(scope="module")
def postgres_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    """An empty site whose catalog is on PostgreSQL, with one admin; the app and the admin's API token."""
    server = postgres.start_or_skip()
    try:
        root = tmp_path_factory.mktemp("pg-site")
        (root / "pinnacle").mkdir()
        config = load(write_config(root / "rtvault.toml", root="pinnacle", stores={"primary": "store"},
                                   catalog={"url": server.new_database()}))
        with open_catalog(config.catalog.url) as db:
            add_user(db, "admin", "admin", PASSWORD)
            token = create_token(db, "admin", "tests")
        yield create_app(config), token
    finally:
        server.stop()


@pytest.mark.parametrize(("path", "name"), [("/api/audit", "user"), ("/api/audit", "action"),
                                            ("/api/audit", "patient"), ("/api/audit.csv", "user"),
                                            ("/api/search", "patient_id"), ("/api/search", "modality"),
                                            ("/api/search", "archive"), ("/api/search", "status")])
def test_a_nul_byte_in_a_filter_is_a_400_on_postgresql(postgres_site, path: str, name: str) -> None:
    app, token = postgres_site
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"},  # type: ignore[arg-type]
                        raise_server_exceptions=False)
    answer = client.get(path, params={name: "a\x00b"})
    assert answer.status_code == 400, answer.text


def test_a_nul_byte_in_a_sign_in_name_is_refused_not_a_500_on_postgresql(postgres_site) -> None:
    app, _token = postgres_site
    client = TestClient(app, "https://rtvault.test", raise_server_exceptions=False,  # type: ignore[arg-type]
                        follow_redirects=False)
    answer = sign_in(client, "admin\x00", "wrong password, guessed")
    assert answer.status_code in (400, 401), answer.text


def _archive_with_one_wrong_byte(db: Path, out: Path) -> str:
    """A level-0 .tar.gz of one patient (Institution file first) with one byte of its biggest file flipped: gzip
    decodes every byte and its CRC-32 fails, so every member is "unverified". Returns the patient's path."""
    patient = sorted(db.glob("Institution_*/Mount_*/Patient_*"))[0]
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(patient.parent.parent / "Institution", arcname="Institution")
        tar.add(patient, arcname=patient.relative_to(db).as_posix())
    data = plain.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        biggest = max((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.size)
    packed = bytearray(gzip.compress(data, compresslevel=0, mtime=0))
    middle = biggest.offset_data + biggest.size // 2
    packed[bytes(packed).find(data[middle:middle + 64]) + 10] ^= 0x01
    out.write_bytes(bytes(packed))
    return patient.relative_to(db).as_posix()


def test_a_web_download_of_a_patient_with_unverified_members_is_refused_like_a_restore(tmp_path: Path) -> None:
    run_cli("demo", "generate", "--out", tmp_path / "db", "--patients", "2", "--seed", "3", "--image-mb", "0.2")
    config_file = write_config(tmp_path / "rtvault.toml", root="db", stores={"primary": "store"},
                               catalog={"url": "sqlite:///catalog.sqlite"})
    rtvault(config_file, "init")
    path = _archive_with_one_wrong_byte(tmp_path / "db", tmp_path / "damaged.tar.gz")
    rtvault(config_file, "archive", "ingest", tmp_path / "damaged.tar.gz", expect=9)  # stored, every member unverified
    config = load(config_file)
    refresh(config)
    with open_catalog(config.catalog.url) as db:
        add_user(db, "operator", "operator", PASSWORD)
        token = create_token(db, "operator", "tests")
    client = TestClient(create_app(config), headers={"Authorization": f"Bearer {token}"},  # type: ignore[arg-type]
                        raise_server_exceptions=False)
    [patient] = client.get("/api/search", params={"status": "archived"}).json()["patients"]
    assert patient["path"] == path
    answer = client.get(f"/api/patients/{patient['key']}/download")
    files = []
    if answer.status_code == 200:
        with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
            files = [m.name for m in tar.getmembers() if m.isfile()]
    # for Pinnacle a patient is whole or absent: no tar of an Institution file and no patient file
    assert answer.status_code >= 400, f"200 with {files}"


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read(site: Site) -> None:
    sent = []

    def body() -> Iterator[bytes]:
        yield b'{"version": "'
        for _ in range(64):  # 4 MiB, sent without Content-Length (Transfer-Encoding: chunked)
            sent.append(1)
            yield b"a" * 65536
        yield b'"}'

    client = site.client(base_url="https://rtvault.test")
    answer = client.post("/api/patients/0123456789abcdef/restore", content=body(),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, (answer.status_code, answer.text[:200])


@pytest.mark.parametrize("action", ["restore", "download"])
def test_a_lone_surrogate_in_a_json_body_is_a_400_and_audited(site: Site, action: str) -> None:
    client = TestClient(site.app, headers={"Authorization": f"Bearer {site.tokens['operator']}"},  # type: ignore[arg-type]
                        raise_server_exceptions=False)
    key = client.get("/api/search", params={"status": "active"}).json()["patients"][0]["key"]
    answer = client.post(f"/api/patients/{key}/{action}", content=b'{"version": "\\ud800"}',
                         headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 404), answer.text


def test_a_lone_surrogate_in_a_json_sign_in_is_refused_not_a_500(site: Site) -> None:
    client = TestClient(site.app, "https://rtvault.test", client=("192.0.2.99", 50000),  # type: ignore[arg-type]
                        raise_server_exceptions=False, follow_redirects=False)
    token = login_token(client)
    answer = client.post("/login", content=b'{"username": "admin\\ud800", "password": "wrong password, guessed", '
                         b'"login_token": "' + token.encode() + b'"}', headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 401), answer.status_code


def test_a_nul_byte_in_a_patient_key_is_a_404_on_postgresql(postgres_site) -> None:
    app, token = postgres_site
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"},  # type: ignore[arg-type]
                        raise_server_exceptions=False)
    answer = client.get("/api/patients/0123456789abcde%00/download")
    assert answer.status_code == 404, answer.text
