"""Times read in the server's local time zone, to the minute, with the zone named, on every page."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from zoneinfo import ZoneInfo

from kit.web import sign_in
from rtvault.web.app import create_app
from rtvault.web.i18n import local_time

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PARIS = ZoneInfo("Europe/Paris")


def test_catalog_times_are_shown_in_the_zone_with_its_name() -> None:
    assert local_time("2026-11-24T07:44:18Z", PARIS) == "2026-11-24 08:44 CET"
    assert local_time("2026-07-01T10:00:00.853671Z", PARIS) == "2026-07-01 12:00 CEST"
    assert local_time("2044-12-18", PARIS) == "2044-12-18"  # a date stays a date
    assert local_time("", PARIS) == "" and local_time(None, PARIS) == ""


def test_the_servers_local_zone_is_the_default() -> None:
    code = "from rtvault.web.i18n import local_time; print(local_time('2026-11-24T07:44:18Z'))"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TZ": "Europe/Paris"},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "2026-11-24 08:44 CET"


def test_every_page_shows_local_times(site) -> None:
    client = TestClient(create_app(site.config, zone=PARIS), "http://127.0.0.1", client=("127.0.0.1", 50000))
    assert sign_in(client, "admin", site.password).status_code == 200  # followed to the search page
    key = site.key_of("de la fontaine")
    detail = client.get(f"/api/patients/{key}").json()
    page = client.get(f"/patients/{key}").text
    for value in (detail["last_modified"], detail["archived_at"], detail["versions"][0]["locations"][0]["time"]):
        assert local_time(value, PARIS) in page, value
    archive = client.get("/api/archives").json()["archives"][0]
    assert local_time(archive["time"], PARIS) in client.get("/archives").text
    found = client.get("/", params={"last_name": "de la fontaine"}).text
    assert " CET" in found or " CEST" in found
    entry = client.get("/api/audit", params={"per_page": "1"}).json()["entries"][0]
    audit = client.get("/audit").text
    assert local_time(entry["time"], PARIS) in audit and entry["time"] not in audit
