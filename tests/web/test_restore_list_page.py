"""The list restore of the web interface, as an operator uses it from a browser without JavaScript: a CSV
file sent from the form, each patient found restored into a new folder of [web] restore_dir, the report shown
and downloadable as CSV, every restore in the audit trail; refused to viewers and without the form's token."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kit.files import files_of, free_port
from kit.web import PASSWORD, XSS_NAME, Site, csrf_of
from rtvault.jobs.restore_list import REPORTS
from rtvault.web.params import MAX_UPLOAD


def _everyone(site: Site) -> list[dict]:
    found = site.bearer("viewer").get("/api/search", params={"status": "active,archived,deleted", "per_page": "50"})
    return found.json()["patients"]


def _folders(site: Site) -> set[Path]:
    return {p for p in (site.root / "restores").iterdir() if p.name != REPORTS}


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _send(client, csv: bytes, name: str = "liste.csv", lang: str = "fr", token: str | None = None):
    token = csrf_of(client, "/restore-list") if token is None else token
    return client.post(f"/restore-list?lang={lang}", data={"csrf": token}, files={"csv": (name, csv, "text/csv")})


def test_an_operator_restores_a_list_and_downloads_the_report(site: Site) -> None:
    active = [p for p in _everyone(site) if p["status"] == "active" and p["birth_date"]]
    hostile = next(p for p in _everyone(site) if p["last_name"] == XSS_NAME)
    named = active[0]
    day, month, year = named["birth_date"][8:], named["birth_date"][5:7], named["birth_date"][:4]
    rows = [f"{active[1]['mrn']};;;", f";{named['last_name'].lower()};{day}/{month}/{year};", "0000000000;;;",
            f"{active[1]['mrn']};;;", f"{hostile['mrn']};;;"]
    # "Prénom" makes the file Latin-1 whatever the names chosen (an empty first name column)
    csv = ("IPP;Nom;Date de naissance;Prénom\n" + "\n".join(rows) + "\n").encode("latin-1")
    client = site.login("operator", "127.0.0.61")
    before = _folders(site)

    page = _send(client, csv)

    assert page.status_code == 200, page.text
    shown = _text(page.text)
    assert "3 patient(s) restauré(s) sur 4" in shown and "introuvable" in shown and "doublon" in shown
    assert "lu en windows-1252" in shown  # the list was Latin-1: said
    assert XSS_NAME not in page.text and html.escape(XSS_NAME) in page.text
    made = _folders(site) - before
    assert len(made) == 3 and all(folder.stat().st_mode & 0o777 == 0o700 for folder in made)
    # (a folder of that name made within the same minute by another test of the site: "-2" added)
    folder = next((f for f in made if re.search(rf"-{named['key']}(-\d+)?$", f.name)), None)
    assert folder is not None, (named["key"], sorted(f.name for f in made))
    restored = {rel: value for rel, value in files_of(folder).items() if rel != "Institution"}
    assert restored and all(rel.startswith(named["path"] + "/") for rel in restored)
    assert (folder / "Institution").is_file()

    link = re.search(r'id="list-report-csv" href="(/restore-list/[^"]+\.csv)"', page.text)
    assert link, "the report is downloadable"
    sheet = client.get(link.group(1))
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    lines = sheet.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("line;outcome;") and len(lines) == 6  # the list's own separator
    assert [line.split(";")[1] for line in lines[1:]] == ["restored", "restored", "not_found", "duplicate",
                                                           "restored"]

    mine = [e for e in site.audit(user="operator") if e["address"] == "127.0.0.61"]
    restores = [e for e in mine if e["action"] == "restore"]
    assert {e["patient"] for e in restores} == {named["key"], active[1]["key"], hostile["key"]}
    assert all(e["detail"]["list"] == "liste.csv" and e["detail"]["directory"] for e in restores)
    [listed] = [e for e in mine if e["action"] == "restore_list"]
    assert listed["detail"]["restored"] == 3 and listed["detail"]["not_found"] == 1 and listed["result"] != "ok"
    assert any(e["action"] == "restore_list_report" for e in mine)


def test_the_form_works_without_javascript_in_both_languages(site: Site) -> None:
    client = site.login("operator")
    for lang, title, button in (("fr", "Restaurer une liste de patients", "Restaurer les patients de la liste"),
                                ("en", "Restore a list of patients", "Restore the patients of the list")):
        page = client.get(f"/restore-list?lang={lang}")
        assert page.status_code == 200 and title in page.text and button in page.text
        assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
        assert 'name="csrf"' in page.text and "<script" not in page.text
        assert 'href="/restore-list"' in page.text  # in the navigation
    assert 'href="/restore-list"' not in site.login("viewer").get("/").text


def test_viewers_and_forged_forms_restore_nothing(site: Site) -> None:
    csv = f"mrn\n{_everyone(site)[0]['mrn']}\n".encode()
    before = _folders(site)
    viewer = site.login("viewer")
    assert viewer.get("/restore-list").status_code == 403
    assert _send(viewer, csv, token=csrf_of(viewer)).status_code == 403
    operator = site.login("operator")
    assert _send(operator, csv, token="forged").status_code == 403
    assert site.bearer("viewer").post("/api/restore-list", files={"csv": ("l.csv", csv)}).status_code == 403
    assert _folders(site) == before


def test_a_file_that_is_no_list_shows_the_form_again_and_restores_nothing(site: Site) -> None:
    client = site.login("operator")
    before = _folders(site)
    for csv, name, said in ((b"Patient;Service\nDupont;RT\n", "liste.csv", "found 'Patient', 'Service'"),
                            (b"", "liste.csv", "liste.csv is empty"),
                            (b"", "", "choose the CSV file"),  # the form sent without choosing a file
                            (b"PK\x03\x04\x00\x00binary", "liste.xlsx", "is not a text file")):
        page = _send(client, csv, name, lang="en")
        assert page.status_code == 400, page.text
        assert "This file cannot be read as a list of patients; nothing was restored." in page.text
        assert said in html.unescape(page.text) and 'id="restore-list-form"' in page.text
    too_big = _send(client, b"mrn\n" + b"1\n" * (MAX_UPLOAD // 2))
    assert too_big.status_code == 413
    assert _folders(site) == before


def test_the_api_twin_answers_the_report_and_its_csv(site: Site) -> None:
    patient = _everyone(site)[1]
    client = site.bearer("operator")
    answer = client.post("/api/restore-list", files={"csv": ("list.csv", f"mrn\n{patient['mrn']}\n9\n".encode())})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert list(data["report"])[:3] == ["restored", "not_found", "ambiguous"] and data["complete"] is False
    assert [e["key"] for e in data["report"]["restored"]] == [patient["key"]]
    assert data["report"]["not_found"] == [{"line": 3, "asked": {"mrn": "9"},
                                            "reason": "no patient in the catalog has this MRN"}]
    assert data["report_csv"] == f"/api/restore-list/{data['report_id']}.csv"
    assert client.get(data["report_csv"]).status_code == 200
    as_text = client.post("/api/restore-list", json={"csv": f"IPP\n{patient['mrn']}\n"})  # the list as a field
    assert as_text.status_code == 200 and as_text.json()["complete"] is True
    for wrong in ("20261124T093112-00000000", "..%2F..%2Fetc%2Fpasswd", "x"):
        assert client.get(f"/api/restore-list/{wrong}.csv").status_code == 404


@pytest.mark.slow
def test_a_list_restored_through_a_real_server(site: Site) -> None:
    """`rtvault serve` as deployed: sign in, send the list from the form, download the report."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config.file), "serve",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None and "rtvault web interface on" in server.stdout.readline()
        patient = _everyone(site)[2]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:
            for _ in range(200):
                try:
                    login = browser.get("/login")
                    break
                except httpx.TransportError:
                    subprocess.run(["sleep", "0.1"], check=True)
            token = re.search(r'name="login_token" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
            browser.post("/login", data={"username": "operator", "password": PASSWORD, "next": "/",
                                         "login_token": token})
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/restore-list").text).group(1)  # type: ignore[union-attr]
            page = browser.post("/restore-list?lang=en", data={"csrf": csrf},
                                files={"csv": ("list.csv", f"MRN\n{patient['mrn']}\n".encode())})
            assert page.status_code == 200 and "1 of 1 patient(s) restored" in _text(page.text)
            link = re.search(r'href="(/restore-list/[^"]+\.csv)"', page.text).group(1)  # type: ignore[union-attr]
            sheet = browser.get(link).content.decode("utf-8-sig").splitlines()
            assert sheet[1].split(",")[1:3] == ["restored", patient["mrn"]]
            report = browser.post("/api/restore-list", data={"csrf": csrf}, files={"csv": ("l.csv", b"nom\nx\n")})
            assert report.status_code == 400 and "no column names the patients" in json.dumps(report.json())
    finally:
        server.terminate()
        server.wait(timeout=20)
