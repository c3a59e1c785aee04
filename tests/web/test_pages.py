"""What a user sees and gets: search, the patient page, downloads, restores, archives, the audit trail,
escaping of hostile names, languages, and requests that must not reach the filesystem."""

from __future__ import annotations

import dataclasses
import io
import re
import tarfile
import unicodedata
import warnings

from kit.web import csrf_of
from rtvault.catalog.search import Criteria
from rtvault.web.app import create_app
from rtvault.web.i18n import EN, FR

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _fold(text: str) -> str:
    """Lowercase ASCII letters only, accents dropped: what a hurried user types."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def test_accent_free_search_finds_the_accented_patient(site) -> None:
    everyone = site.bearer("viewer").get("/api/search", params={"status": "active,archived,deleted"}).json()
    accented = [p for p in everyone["patients"] if not p["last_name"].isascii() and "<" not in p["last_name"]]
    assert accented, "the synthetic data should hold accented names"
    client = site.login("viewer")
    for patient in accented:
        typed = _fold(patient["last_name"])
        found = client.get("/api/search", params={"last_name": typed}).json()
        assert patient["key"] in [p["key"] for p in found["patients"]], (typed, patient["last_name"])
    page = client.get("/", params={"last_name": "lefevre"})
    assert page.status_code == 200 and "DURAND-LEFÈVRE" in page.text and 'id="results-title"' in page.text


def test_search_json_shape_and_pagination(site) -> None:
    client = site.bearer("viewer")
    first = client.get("/api/search", params={"status": "active,archived,deleted", "per_page": "3"}).json()
    assert first["total"] == 9 and len(first["patients"]) == 3 and first["page"] == 1
    patient = first["patients"][0]
    for name in ("mrn", "patient_id", "path", "last_name", "first_name", "birth_date", "status", "locations"):
        assert name in patient
    third = client.get("/api/search", params={"status": "active,archived,deleted", "per_page": "3", "page": "3"})
    keys = {p["key"] for p in first["patients"]} & {p["key"] for p in third.json()["patients"]}
    assert not keys
    assert client.get("/api/search", params={"born": "19x5"}).status_code == 400
    assert client.get("/api/search", params={"page": "0", "last_name": "a"}).status_code == 400


def test_patient_page_shows_versions_locations_and_copies(site) -> None:
    client = site.login("operator")
    key = site.key_of("de la fontaine")  # deleted on day 1: one snapshot and an archive
    detail = client.get(f"/api/patients/{key}").json()
    assert detail["status"] == "archived" and detail["keep_until"] and detail["copies"] == 1
    kinds = {loc["kind"] for v in detail["versions"] for loc in v["locations"]}
    assert kinds == {"snapshot", "archive"}
    assert detail["plans"] and detail["image_sets"]
    page = client.get(f"/patients/{key}")
    assert page.status_code == 200
    assert "DE LA FONTAINE" in page.text and detail["keep_until"] in page.text
    assert page.text.count("restore-form") == len(detail["versions"])
    assert "Télécharger" in page.text and "Restaurer" in page.text
    machines = [", ".join(v["machines"]) for v in detail["versions"]]  # the machines each version's plans name
    assert all(machines) and all(f'<td class="machines">{m}</td>' in page.text for m in machines)
    assert "Appareils de traitement" in page.text


def test_hostile_patient_name_is_shown_as_text(site) -> None:
    client = site.login("viewer")
    found = client.get("/api/search", params={"last_name": "script"}).json()["patients"]
    assert [p["last_name"] for p in found] == ["<script>alert(1)</script>"]
    for path in ("/?last_name=script", f"/patients/{found[0]['key']}"):
        text = client.get(path).text
        assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    echoed = client.get("/", params={"first_name": '"><script>alert(2)</script>'}).text
    assert "<script>alert(2)" not in echoed


def test_download_gives_a_pinnacle_tar_of_the_version(site) -> None:
    client = site.login("operator")
    key = site.key_of("gauthier")
    path = client.get(f"/api/patients/{key}").json()["path"]
    answer = client.get(f"/patients/{key}/download")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-tar"
    assert f"GAUTHIER-{key}" in answer.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        names = tar.getnames()
        patient_file = tar.extractfile(f"{path}/Patient").read()  # type: ignore[union-attr]
    assert "Institution" in names and all(n == "Institution" or n.startswith(path) for n in names)
    assert path.startswith("Institution_1/Mount_0/Patient_")
    assert patient_file == (site.root / "pinnacle" / path / "Patient").read_bytes()  # the newest version


def test_restore_writes_a_new_directory_under_restore_dir(site) -> None:
    client = site.login("operator")
    key = site.key_of("de la fontaine")
    detail = client.get(f"/api/patients/{key}").json()
    archive = next(loc for v in detail["versions"] for loc in v["locations"] if loc["kind"] == "archive")
    token = csrf_of(client, f"/patients/{key}")
    before = set((site.root / "restores").iterdir())
    answer = client.post(f"/api/patients/{key}/restore", headers={"X-CSRF-Token": token},
                         json={"version": detail["versions"][0]["version"], "location": archive["location"]})
    assert answer.status_code == 200, answer.text
    made = set((site.root / "restores").iterdir()) - before
    assert len(made) == 1
    directory = made.pop()
    assert answer.json()["directory"] == str(directory) and directory.name.endswith(f"-DE-LA-FONTAINE-{key}")
    assert (directory / detail["path"] / "Patient").is_file() and (directory / "Institution").is_file()
    page = client.post(f"/patients/{key}/restore", data={"csrf": token})
    assert page.status_code == 200 and 'id="restored"' in page.text


def test_restore_without_restore_dir_is_refused_clearly(site) -> None:
    config = dataclasses.replace(site.config, web=dataclasses.replace(site.config.web, restore_dir=None))
    client = TestClient(create_app(config), headers={"Authorization": f"Bearer {site.tokens['operator']}"})
    answer = client.post(f"/api/patients/{site.key_of('faure')}/restore", json={})
    assert answer.status_code == 400 and "restore_dir" in answer.json()["error"]["message"]


def test_request_values_never_reach_the_filesystem(site) -> None:
    client = site.bearer("operator")
    key = site.key_of("faure")
    for path in ("/api/patients/..%2F..%2Fetc", "/api/patients/0123456789abcdef",
                 "/api/patients/0123456789abcdef/download"):
        assert client.get(path).status_code == 404, path
    for version in ("../../../etc/passwd", "0" * 16):
        assert client.get(f"/api/patients/{key}/download", params={"version": version}).status_code == 404
    assert client.post(f"/api/patients/{key}/restore", json={"location": "999999"}).status_code == 404


def test_archives_page_lists_the_archive(site) -> None:
    client = site.login("viewer")
    listed = client.get("/api/archives").json()["archives"]
    assert len(listed) == 1 and listed[0]["patients"] == 1 and not listed[0]["damaged"]
    assert client.get("/api/archives", params={"damaged": "1"}).json()["archives"] == []
    assert listed[0]["file"] in client.get("/archives").text


def test_every_action_is_in_the_audit_trail(site) -> None:
    client = site.login("admin", "127.0.0.42")
    key = site.key_of("da silva")
    client.get("/", params={"last_name": "da silva", "born": "1930-1940"})
    client.get(f"/patients/{key}")
    client.get(f"/patients/{key}/download")
    client.post(f"/patients/{key}/restore", data={"csrf": csrf_of(client)})
    client.post("/logout", data={"csrf": csrf_of(client)})
    mine = {e["action"]: e for e in site.audit(user="admin") if e["address"] == "127.0.0.42"}
    assert {"login", "search", "view", "download", "restore", "logout"} <= set(mine)
    assert mine["search"]["detail"] == {"last_name": "da silva", "born": "1930-1940"}
    assert mine["view"]["patient"] == key and mine["download"]["result"] == "ok"
    assert mine["restore"]["result"] == "ok" and mine["restore"]["detail"]["directory"]
    refused = site.bearer("operator").get("/api/patients/0123456789abcdef/download")
    assert refused.status_code == 404
    failed = site.audit(user="operator", action="download", patient="0123456789abcdef")
    assert failed and failed[0]["result"] != "ok"


def test_audit_page_and_csv_for_admins(site) -> None:
    client = site.login("admin")
    page = client.get("/audit", params={"action": "login"})
    assert page.status_code == 200 and 'class="action-login"' in page.text
    csv_text = client.get("/audit.csv", params={"action": "login"}).text
    assert csv_text.startswith("id,time,user,address,action") and ",login," in csv_text
    assert ",search," not in csv_text


def test_french_by_default_english_on_request(site) -> None:
    client = site.login("viewer")
    assert "Rechercher" in client.get("/").text
    english = client.get("/", params={"lang": "en"})
    assert "Search" in english.text and 'lang="en"' in english.text
    assert "rtvault_lang=en" in english.headers["set-cookie"]
    assert 'lang="en"' in client.get("/").text  # remembered
    browser = site.client()
    assert "Sign in" in browser.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "Se connecter" in browser.get("/login", headers={"Accept-Language": "de-DE,fr;q=0.5"}).text


def test_every_string_exists_in_both_languages() -> None:
    french = {k for k in FR if not k.startswith("help_")}
    assert french == set(EN)
    assert {f"help_{name}" for name in Criteria.names()} <= set(FR)


def test_restore_from_a_snapshot_writes_the_filtered_institution_file(site) -> None:
    client = site.bearer("operator")
    key = site.key_of("gauthier")
    detail = client.get(f"/api/patients/{key}").json()
    snapshot = next(loc for loc in detail["versions"][0]["locations"] if loc["kind"] == "snapshot")
    answer = client.post(f"/api/patients/{key}/restore", json={"location": snapshot["location"]})
    assert answer.status_code == 200, answer.text
    directory = site.root / "restores" / answer.json()["directory"].rsplit("/", 1)[-1]
    institution = (directory / "Institution").read_text(encoding="latin-1")
    assert sorted(p.name for p in directory.iterdir()) == ["Institution", "Institution_1"]
    assert re.findall(r'PatientPath = "([^"]*)"', institution) == [detail["path"]]  # that patient only
    assert (directory / detail["path"] / "Patient").is_file()


def test_locations_are_named_stably_and_checked_against_the_catalog(site) -> None:
    client = site.bearer("operator")
    key = site.key_of("de la fontaine")
    version = client.get(f"/api/patients/{key}").json()["versions"][0]
    names = [loc["location"] for loc in version["locations"]]
    assert names == [f"{loc['store']}:{loc['kind']}:{loc['ref']}" for loc in version["locations"]]
    assert {name.split(":")[1] for name in names} == {"snapshot", "archive"}
    for forged in ("1", "primary:archive:0000", "../primary:snapshot:latest", "elsewhere:snapshot:" + names[0]):
        asked = {"version": version["version"], "location": forged}
        answer = client.get(f"/api/patients/{key}/download", params=asked)
        assert answer.status_code == 404 and answer.json()["error"]["kind"] == "not_found_location", forged


def test_audit_page_offers_every_recorded_action_and_names_patients(site) -> None:
    from rtvault.catalog import audit as audit_trail
    from rtvault.catalog import open_catalog

    with open_catalog(site.config.catalog.url) as db:
        audit_trail.record(db, user="admin", address="cli", action="token_create", detail="tests")
        audit_trail.record(db, user="admin", address="cli", action="view", patient="fedcba9876543210")  # forgotten
    client = site.login("admin")
    key = site.key_of("gauthier")
    client.get(f"/patients/{key}")
    page = client.get("/audit").text
    options = set(re.findall(r'<option value="([a-z_]+)"', page))
    assert {"login", "view", "token_create"} <= options
    assert re.search(rf'>GAUTHIER [^<]*</a> <small><code>{key}</code>', page)
    assert "<code>fedcba9876543210</code>" in page and 'href="/patients/fedcba9876543210"' not in page


def test_a_full_temporary_area_answers_unavailable_and_leaves_nothing(site, tmp_path, monkeypatch) -> None:
    """The server's temporary area full (a small tmpfs): the download is answered 503 with a sentence naming the
    area and who can fix it, never a 500; nothing half written is left; once space is freed it works."""
    import tempfile

    from kit.faults import fill, small_disk

    client = site.login("operator")
    key = site.key_of("gauthier")
    with small_disk(tmp_path / "tmp", "16m") as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        filler = fill(disk)
        answer = client.get(f"/api/patients/{key}/download")
        assert answer.status_code == 503, answer.text
        said = answer.json()["error"]["message"]
        assert f"temporary area {disk}" in said and "administrator" in said, said
        assert [p.name for p in disk.iterdir()] == ["filler"]
        filler.unlink()
        (disk / "ballast").write_bytes(b"\0" * ((16 << 20) - 8192))  # room for the folder, not for the tar
        answer = client.get(f"/api/patients/{key}/download")
        assert answer.status_code == 503 and "temporary area" in answer.json()["error"]["message"], answer.text
        assert sorted(p.name for p in disk.iterdir()) == ["ballast"]
        (disk / "ballast").unlink()
        assert client.get(f"/api/patients/{key}/download").status_code == 200
