"""Issue 15's "done when", as a new user lives it from the README, every part real: a demo database backed up,
a patient deleted from Pinnacle and so archived by the next backup, the web interface served by `rtvault serve`,
and in a headless Chromium the archived patient searched, opened, and seen in the viewer (CT slices moved with
the keyboard and, without JavaScript, with the links; coronal and sagittal; the dose as a wash and as lines; the
DVH chart and the plan summary read); then the patient exported as DICOM-RT from its archive by the command
line, every file through dciodvfy without an error and into a real Orthanc, which lists the patient's CT,
RTSTRUCT, RTPLAN and RTDOSE; and the export is in the journal of actions. Screenshots are kept in the test's
temporary directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from kit.browser import stop, wait_until_up
from kit.cli import run_cli
from kit.dicom import OrthancServer, dciodvfy_errors
from kit.files import free_port

pytestmark = pytest.mark.slow

PASSWORD = "histoire-de-patient-2026"
CONFIG = '[source.pinnacle]\nroot = "pinnacle"\n\n[stores.primary]\npath = "store"\n'  # the README's, as typed
SVG = "{http://www.w3.org/2000/svg}"


def _rtvault(home: Path, *args: str | Path, expect: int = 0, stdin: str | None = None) -> str:
    """`rtvault ARGS` typed in the working directory (its ./rtvault.toml), as the README's sessions do."""
    return run_cli(*args, cwd=home, expect=expect, stdin=stdin).stdout


def _json(home: Path, *args: str | Path, expect: int = 0) -> dict:
    return json.loads(_rtvault(home, *args, "--json", expect=expect))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, dict]]:
    """The README's quick start and archive story: a demo database backed up, one patient with plans deleted
    from Pinnacle and archived by the next backup, a web user, and `rtvault serve` on a free loopback port.
    Yields the working directory, the server's address and the archived patient as `inspect` saw it."""
    home = tmp_path / "site"
    home.mkdir()
    _rtvault(home, "demo", "generate", "--out", "pinnacle", "--patients", "5", "--seed", "7", "--image-mb", "0.3")
    (home / "rtvault.toml").write_text(CONFIG, encoding="utf-8")
    _rtvault(home, "init")
    _rtvault(home, "backup")
    patients = _json(home, "inspect", "pinnacle")["patients"]
    chosen = next(p for p in patients if len(p["plans"]) >= 2)  # a patient with several plans and trials
    shutil.rmtree(home / "pinnacle" / chosen["path"])  # deleted from Pinnacle
    assert "archived 1 patient(s) gone from Pinnacle" in _rtvault(home, "backup")
    assert chosen["last_name"] in _rtvault(home, "archive", "list").upper()
    _rtvault(home, "user", "add", "physicienne", "--role", "viewer", stdin=PASSWORD + "\n")

    port = free_port()
    log = tmp_path / "serve.log"
    environment = {key: value for key, value in os.environ.items() if key != "RTVAULT_CONFIG"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "rtvault", "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=home, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield home, url, chosen
    finally:
        stop(process)
    served_log = log.read_text(errors="replace")
    assert "Traceback" not in served_log and " 500 " not in served_log, served_log


def _image(page: Page) -> tuple[str, np.ndarray]:
    """The slice image once the browser has decoded it: its address and its pixels (RGB)."""
    page.wait_for_function("() => { const i = document.getElementById('slice-image');"
                           " return i.complete && i.naturalWidth > 0; }")
    source = page.locator("#slice-image").get_attribute("src")
    shot = page.locator("#slice-image").screenshot()
    return source, _pixels(shot)


def _pixels(png: bytes) -> np.ndarray:
    from io import BytesIO

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def _coloured(pixels: np.ndarray) -> int:
    """How many pixels are clearly coloured (the CT is grey: contours and dose are not)."""
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())


def _shot(page: Page, where: Path, name: str) -> np.ndarray:
    """A full-page screenshot kept in the test's directory, checked not blank."""
    path = where / f"{len(list(where.glob('*.png'))) + 1:02d}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    pixels = _pixels(path.read_bytes())
    assert pixels.std() > 20, f"{path} looks blank"
    return pixels


def _sign_in_and_open(page: Page, url: str, last_name: str, from_archive: bool = False) -> tuple[str, str]:
    """Sign in, search the patient by name, open it, read its MRN and key off its page, open its viewer (its
    newest version, or the copy in its archive)."""
    page.goto(url + "/")
    page.get_by_label("Identifiant").fill("physicienne")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#signed-in")).to_contain_text("physicienne")
    page.get_by_label("Nom", exact=True).fill(last_name.lower())
    page.get_by_role("button", name="Rechercher").click()
    row = page.locator("tr", has=page.locator("a.patient-link", has_text=last_name))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("archivé")
    row.locator("a.patient-link").click()
    expect(page.locator("#patient-name")).to_contain_text(last_name)
    mrn = page.locator("#mrn").inner_text().strip()
    key = page.url.rstrip("/").rsplit("/", 1)[-1]
    if from_archive:
        archive = page.locator(".versions li", has_text="archive")
        expect(archive).to_have_count(1)
        archive.get_by_role("link", name="visualiser cette copie").click()
        expect(page.locator("#viewer-source")).to_contain_text("lue depuis archive ")
    else:
        page.get_by_role("link", name="Visualiser le scanner, les contours et la dose").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Visualisation")
    return mrn, key


def _slice(page: Page) -> int:
    return int(page.locator("#slice").get_attribute("data-slice"))


def _dvh_curves(page: Page) -> tuple[dict[str, int], str]:
    """The DVH chart the page shows, fetched with the page's session: each curve's ROI name and its number of
    points, and the chart's text (its legend, axes and title)."""
    source = page.locator("#dvh-chart img").evaluate("img => img.src")  # the address the browser loaded
    answer = page.request.get(source)
    assert answer.ok, answer.status
    svg = ElementTree.fromstring(answer.body())
    curves = {}
    for group in svg.iter(f"{SVG}g"):
        gid = group.get("id") or ""
        if gid.startswith("dvh:") and gid != "dvh:prescription":
            path = next(group.iter(f"{SVG}path"))
            curves[gid.removeprefix("dvh:")] = len(re.findall(r"[ML]", path.get("d", "")))
    text = " ".join("".join(t.itertext()) for t in svg.iter(f"{SVG}text"))
    return curves, text


def _table(page: Page, selector: str) -> list[list[str]]:
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()]
            for row in page.locator(f"{selector} tbody tr").all()]


def test_an_archived_patient_seen_in_the_browser_exported_as_dicom_rt_and_taken_by_orthanc(
        served: tuple[Path, str, dict], chromium: Browser, orthanc: OrthancServer, tmp_path: Path) -> None:
    home, url, chosen = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    last_name = chosen["last_name"]

    # The viewer, with JavaScript, opened on the copy in the patient's archive: axial through the prescription.
    context = chromium.new_context(locale="fr-FR", viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        mrn, key = _sign_in_and_open(page, url, last_name, from_archive=True)
        assert re.fullmatch(r"[0-9a-f]{16}", key) and mrn
        expect(page.locator("#viewer-problems")).to_have_count(0)
        source, axial = _image(page)
        assert "plane=axial" in source and axial.std() > 10
        expect(page.locator("#dose-legend li")).to_have_count(8)
        expect(page.locator("#dose-legend")).to_contain_text("Gy")
        wash_axial = _coloured(axial)
        _shot(page, shots, "axial-wash")

        # The keyboard moves through the axial slices without reloading the page.
        start, count = _slice(page), int(page.locator("#slice").get_attribute("data-count"))
        assert 1 <= start <= count and count > 5
        step = "ArrowDown" if start > 1 else "ArrowUp"
        moved = start - 1 if start > 1 else start + 1
        page.locator("body").press(step)
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(moved))
        expect(page.locator("#slice-label")).to_contain_text(f"coupe {moved} / {count}")
        source, _ = _image(page)
        assert f"slice={moved}&" in source
        page.locator("body").press("Home")
        expect(page.locator("#slice")).to_have_attribute("data-slice", "1")
        page.locator("body").press("End")
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(count))
        page.locator("body").press("PageDown")
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(max(count - 10, 1)))
        _shot(page, shots, "axial-keyboard")

        # Coronal and sagittal, then the dose as isodose lines and hidden, read on the pixels.
        for plane in ("Coronal", "Sagittal"):
            page.locator("p.choices a", has_text=plane).click()
            expect(page.locator("#slice-label")).to_contain_text(plane)
            source, pixels = _image(page)
            assert f"plane={plane.lower()}" in source and pixels.std() > 10
            assert _coloured(pixels) > 500, f"{plane}: no contour nor dose drawn"
            _shot(page, shots, plane.lower())
        page.locator("p.choices a", has_text="Axial").click()
        page.locator("#goto #slice-number").fill(str(start))
        page.locator("#goto select#dose").select_option("wash")
        page.get_by_role("button", name="Afficher").click()
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(start))
        _, again = _image(page)
        page.locator("p.choices a", has_text="Isodoses").click()
        expect(page.locator("#dose")).to_have_value("lines")
        _, lines = _image(page)
        _shot(page, shots, "axial-lines")
        page.locator("p.choices a", has_text="Masquée").click()
        expect(page.locator("#dose")).to_have_value("none")
        _, hidden = _image(page)
        _shot(page, shots, "axial-no-dose")
        assert _coloured(again) == wash_axial  # the same slice, the same drawing
        assert _coloured(hidden) < _coloured(lines) < wash_axial, (_coloured(hidden), _coloured(lines), wash_axial)
        assert wash_axial > 5 * max(_coloured(hidden), 1)  # the wash colours a large area: the dose is there

        # The plan summary and the DVH: one curve per ROI, named.
        prescriptions = _table(page, "#prescriptions")
        beams = _table(page, "#beams")
        assert prescriptions and all(re.search(r"\d", row[1]) for row in prescriptions), prescriptions
        assert beams and all(re.fullmatch(r"\d+(\.\d+)?", row[8]) for row in beams), beams
        page.wait_for_function("() => [...document.querySelectorAll('#dvh-chart img')].every(i => i.naturalWidth > 0)")
        dvh_rows = [row[0] for row in _table(page, "#dvh-table")]
        curves, legend = _dvh_curves(page)
        assert dvh_rows and sorted(curves) == sorted(dvh_rows), (curves, dvh_rows)
        assert all(name in legend for name in curves), (curves, legend)
        assert all(points >= 2 for points in curves.values()) and max(curves.values()) > 10, curves
        roi_names = set(page.locator("#roi-legend li").all_inner_texts())
        assert all(any(name in shown for shown in roi_names) for name in dvh_rows)
        _shot(page, shots, "plan-and-dvh")
        viewed = {"beams": beams, "dvh": dvh_rows, "trial": page.locator("#viewer-source").inner_text()}
    finally:
        context.close()

    # Without JavaScript, the links move through the slices and the form goes to one.
    plain = chromium.new_context(locale="fr-FR", java_script_enabled=False)
    plain.set_default_timeout(20_000)
    try:
        page = plain.new_page()
        _sign_in_and_open(page, url, last_name)
        start = _slice(page)
        page.locator('a[rel="next"]' if start < count else 'a[rel="prev"]').click()
        expect(page.locator("#slice")).to_have_attribute("data-slice", str(start + 1 if start < count else start - 1))
        expect(page.locator("#viewer-source")).to_contain_text("lue depuis sauvegarde ")  # the newest version's copy
        page.locator("#slice-number").fill("2")
        page.get_by_role("button", name="Afficher").click()
        expect(page.locator("#slice")).to_have_attribute("data-slice", "2")
        page.locator("body").press("ArrowUp")  # no script: the keys do nothing
        expect(page.locator("#slice")).to_have_attribute("data-slice", "2")
        page.locator("p.choices a", has_text="Sagittal").click()
        expect(page.locator("#slice-label")).to_contain_text("Sagittal")
        _shot(page, shots, "no-javascript")
    finally:
        plain.close()

    # The export, by the MRN read on the patient page, from the archive.
    out = tmp_path / "dicom"
    exported = _json(home, "export", "dicom", "--patient", mrn, "--from-archive", "--to", out)
    assert exported["source"]["kind"] == "archive" and exported["missing"] == [] and exported["problems"] == []
    assert exported["patient"] == chosen["path"]
    written = exported["written"]
    assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "DICOMDIR"} <= set(written)
    files = [out / f["path"] for f in exported["files"]]
    assert sorted(files) == sorted(p for p in out.rglob("*") if p.is_file())
    errors = {str(f.relative_to(out)): e for f in files if (e := dciodvfy_errors(f))}
    assert errors == {}

    # The exported plan says what the viewer said: the same beams (Pinnacle's name is the DICOM description, its
    # field id the DICOM name) and MU, the same ROIs.
    read = [pydicom.dcmread(f) for f in files if f.name != "DICOMDIR"]
    structures = {roi.ROIName for ds in read if ds.Modality == "RTSTRUCT" for roi in ds.StructureSetROISequence}
    assert set(viewed["dvh"]) <= structures, (viewed["dvh"], structures)
    plans = [ds for ds in read if ds.Modality == "RTPLAN"]
    shown = sorted((row[0], round(float(row[8]), 1)) for row in viewed["beams"])
    in_dicom = [sorted((beam.BeamDescription, round(float(ref.BeamMeterset), 1))
                       for beam, ref in zip(ds.BeamSequence, ds.FractionGroupSequence[0].ReferencedBeamSequence,
                                            strict=True))
                for ds in plans]
    assert shown in in_dicom, (shown, in_dicom)

    # Orthanc takes every object and lists the patient with its four series' kinds.
    orthanc.clear()
    for file in files:
        if file.name != "DICOMDIR":  # the media's index, not an object a PACS stores
            assert orthanc.upload(file).status == "Success", file
    patients = httpx.get(f"{orthanc.url}/patients", params={"expand": "1"}, timeout=30).json()
    assert len(patients) == 1 and patients[0]["MainDicomTags"]["PatientID"] == mrn, patients
    series = httpx.get(f"{orthanc.url}/patients/{patients[0]['ID']}/series", timeout=30).json()
    instances = Counter()
    for one in series:
        instances[one["MainDicomTags"]["Modality"]] += len(one["Instances"])
    assert instances == Counter({m: n for m, n in written.items() if m != "DICOMDIR"}), (instances, written)

    # The journal records the export (and the viewing), and its chain is whole.
    trail = _json(home, "audit", "--action", "export_dicom")["entries"]
    assert len(trail) == 1 and trail[0]["result"] == "ok", trail
    assert mrn in json.dumps(trail[0]) and str(out) in json.dumps(trail[0]), trail
    views = _json(home, "audit", "--action", "view", "--patient", key)["entries"]
    assert views and all(v["user"] == "physicienne" for v in views), views
    assert "intact" in _rtvault(home, "journal", "verify")
    assert sorted(p.name for p in shots.glob("*.png"))  # kept for a person to look at
