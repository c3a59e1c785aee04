"""Received DICOM objects downloaded from the patient page in Chromium, as an operator lives it: objects imported
with `rtvault dicom import`, the patient found by its MRN, "Télécharger tous les objets DICOM reçus" clicked, the
zip saved: each object in it byte for byte as stored, under a DICOMDIR pydicom reads; then one study alone."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from pydicom.data import get_testdata_file

from kit.browser import PASSWORDS, stop, wait_until_up
from kit.cli import run_cli
from kit.config import write_config
from kit.files import free_port
from rtvault.dicom.received import dataset_of, describe, part10

pytestmark = pytest.mark.slow  # a served deployment and Chromium

MRN = "RT-BROWSER-1"
SAMPLES = ("CT_small.dcm", "rtplan.dcm", "rtstruct.dcm")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A store and a catalog, three objects imported for MRN, an operator; `rtvault serve` on a free port. Gives
    the address and, per SOP instance UID, the bytes stored."""
    home = tmp_path_factory.mktemp("dicom-browser")
    port = free_port()
    config = write_config(home / "rtvault.toml", stores={"primary": home / "store"},
                          catalog={"url": "sqlite:///catalog.sqlite"},
                          web={"host": "127.0.0.1", "port": port, "secure_cookies": False})
    medium, stored = home / "medium", {}
    medium.mkdir()
    for name in SAMPLES:
        dataset = pydicom.dcmread(get_testdata_file(name), force=True)
        dataset.PatientID = MRN
        dataset.save_as(medium / name, enforce_file_format=True)
        data = (medium / name).read_bytes()
        tags = describe(data)
        body, syntax = dataset_of(data)
        stored[tags["SOPInstanceUID"]] = part10(body, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)
    run_cli("init", config=config, cwd=home)
    run_cli("dicom", "import", medium, config=config, cwd=home)
    run_cli("user", "add", "operator", "--role", "operator", config=config, cwd=home,
            stdin=PASSWORDS["operator"] + "\n")
    env = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "serve"], cwd=home,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process, log)
        yield url, stored
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(locale="fr-FR", accept_downloads=True)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def referenced(zip_path: Path, into: Path) -> dict[str, bytes]:
    """SOP instance UID → bytes of each file the zip's DICOMDIR references."""
    zipfile.ZipFile(zip_path).extractall(into)
    return {record.ReferencedSOPInstanceUIDInFile: into.joinpath(*record.ReferencedFileID).read_bytes()
            for record in pydicom.dcmread(into / "DICOMDIR").DirectoryRecordSequence if "ReferencedFileID" in record}


def test_an_operator_downloads_the_received_objects_from_the_patient_page(
        context: BrowserContext, served: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    url, stored = served
    page = context.new_page()
    page.goto(url + "/login")
    page.get_by_label("Identifiant").fill("operator")
    page.get_by_label("Mot de passe").fill(PASSWORDS["operator"])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#signed-in")).to_contain_text("operator")
    page.goto(f"{url}/?mrn={MRN}")
    page.locator("a.patient-link").first.click()
    expect(page.locator("#dicom")).to_be_visible()

    with page.expect_download() as started:
        page.get_by_role("link", name="Télécharger tous les objets DICOM reçus (3, zip avec DICOMDIR)").click()
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(saved)
    assert saved.name.endswith("-dicom.zip")
    assert referenced(saved, tmp_path / "all") == stored  # byte for byte, each one indexed

    study_links = page.get_by_role("link", name="Télécharger cette étude (zip)")
    expect(study_links.first).to_be_visible()
    with page.expect_download() as started:
        study_links.first.click()
    one_study = tmp_path / "study.zip"
    started.value.save_as(one_study)
    found = referenced(one_study, tmp_path / "study")
    assert found and set(found) < set(stored)
    assert all(found[uid] == stored[uid] for uid in found)
    assert "MANQUANT-MISSING.txt" not in zipfile.ZipFile(io.BytesIO(one_study.read_bytes())).namelist()
