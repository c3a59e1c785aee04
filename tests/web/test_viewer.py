"""The patient seen in the browser (`/patients/{key}/view`): the CT of a backed-up demo patient drawn on the server
in three planes with its contours in their colours and the dose, the dose legend in Gy, the links that move
through the slices without JavaScript, the DVH chart and table, the plan summary, an archived patient read from
its archive, hostile parameters, and the audit trail."""

from __future__ import annotations

import io
import re
from html import unescape

import numpy as np
import pytest
from PIL import Image

from kit.web import Site
from rtvault.pinnacle.colours import rgb
from rtvault.web.i18n import EN, FR


def _png(answer) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


def _pixels(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.count_nonzero(np.all(image == np.array(colour, dtype=np.uint8), axis=-1)))


@pytest.fixture(scope="module")
def patient(site: Site) -> dict:
    """A demo patient with a dose, as the viewer's JSON twin describes it."""
    key = site.key_of("GAUTHIER")
    data = site.bearer("viewer").get(f"/api/patients/{key}/view").json()
    assert data["trial"] and data["rois"] and data["reference_gy"], data
    return {"key": key, **data}


def test_the_page_shows_the_ct_the_dose_legend_the_plan_and_the_dvh(site: Site, patient: dict) -> None:
    client = site.login("viewer")
    page = client.get(f"/patients/{patient['key']}/view", params={"lang": "en"})
    assert page.status_code == 200
    html = unescape(page.text)
    assert 'id="slice-image"' in html and "/view/slice.png?" in html
    legend = re.search(r'<ul class="plain legend" id="dose-legend".*?</ul>', html, re.S).group(0)
    reference = patient["reference_gy"]
    assert f"100 % — {reference:.2f} Gy" in legend and f"50 % — {reference / 2:.2f} Gy" in legend
    assert f"100 % = {reference:g} Gy" in html
    beams = re.search(r'<table class="beams".*?</table>', html, re.S).group(0)
    for beam in patient["trial"]["beams"]:
        assert beam["name"] in beams and beam["energy"] in beams and str(beam["mu"]) in beams
    assert str(patient["trial"]["prescriptions"][0]["fractions"]) in html
    table = re.search(r'<table class="dvh".*?</table>', html, re.S).group(0)
    assert all(roi["name"] in table for roi in patient["rois"] if roi["drawn"])
    assert EN["viewer_keys"] in html and 'src="/static/viewer.js"' in html
    assert client.get(f"/patients/{patient['key']}/view", params={"lang": "fr"}).text.count(FR["viewer_legend"]) == 1


def test_links_move_through_the_slices_without_javascript(site: Site, patient: dict) -> None:
    client = site.login("viewer")
    key, first = patient["key"], patient["drawing"]["slice"]
    html = unescape(client.get(f"/patients/{key}/view").text)
    following = re.search(r'<a data-step="1" rel="next" href="([^"]+)"', html).group(1)
    assert f"plane=axial&slice={first + 1}&window=soft&dose=wash" in following
    moved = unescape(client.get(following).text)
    assert f'data-slice="{first + 1}"' in moved and f"slice={first + 1}&" in re.search(
        r'id="slice-image" src="([^"]+)"', moved).group(1)
    assert re.search(r'<a data-step="-1" rel="prev" href="[^"]+slice=' + str(first) + "&", moved)
    coronal = unescape(client.get(re.search(r'<a href="([^"]+plane=coronal[^"]*)"', moved).group(1)).text)
    assert f'data-count="{patient["slices"]["coronal"]}"' in coronal
    # the form: any slice, plane, window and dose, by GET
    lung = client.get(f"/patients/{key}/view", params={"plane": "sagittal", "slice": "3", "window": "lung",
                                                       "dose": "lines"})
    assert lung.status_code == 200 and 'data-slice="3"' in lung.text
    assert "plane=sagittal&amp;slice=3&amp;window=lung&amp;dose=lines" in lung.text
    assert 'rel="prev"' not in client.get(f"/patients/{key}/view", params={"slice": "1"}).text


def test_the_axial_slice_through_the_target_shows_its_contour_in_its_colour(site: Site, patient: dict) -> None:
    client, key = site.bearer("viewer"), patient["key"]
    target = next(r for r in patient["rois"] if r["name"].startswith("PTV"))
    colour = tuple(int(target["colour"][i:i + 2], 16) for i in (1, 3, 5))
    found = {}
    for number in range(1, patient["slices"]["axial"] + 1):
        image = _png(client.get(f"/api/patients/{key}/view/slice.png", params={"slice": number, "dose": "none"}))
        found[number] = _pixels(image, colour)
    through = [n for n, count in found.items() if count > 50]
    assert through and len(through) < len(found), found  # the target is on some slices, not all
    body = next(r for r in patient["rois"] if r["type"] == "EXTERNAL")
    washed = _png(client.get(f"/api/patients/{key}/view/slice.png", params={"slice": through[0]}))
    assert _pixels(washed, colour) > 50 and _pixels(washed, rgb("skyblue")) > 200, body
    bare = _png(client.get(f"/api/patients/{key}/view/slice.png", params={"slice": through[0], "dose": "none"}))
    assert washed.shape == bare.shape == (512, 512, 3) and not np.array_equal(washed, bare)  # the dose is drawn


def test_every_plane_and_window_is_drawn_and_kept(site: Site, patient: dict) -> None:
    client, key = site.bearer("viewer"), patient["key"]
    images = {}
    for plane in ("axial", "coronal", "sagittal"):
        for window in ("soft", "lung", "bone"):
            images[plane, window] = _png(client.get(f"/api/patients/{key}/view/slice.png",
                                                    params={"plane": plane, "window": window, "dose": "lines"}))
    assert images["axial", "soft"].shape[1] == 512
    assert images["coronal", "soft"].shape != images["axial", "soft"].shape  # a few cm of slices, not 50 cm
    assert not np.array_equal(images["axial", "soft"], images["axial", "lung"])
    assert not np.array_equal(images["axial", "lung"], images["axial", "bone"])
    again = client.get(f"/api/patients/{key}/view/slice.png", params={"plane": "coronal", "dose": "lines"}).content
    assert np.array_equal(_png_bytes(again), images["coronal", "soft"])


def _png_bytes(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_dvh_chart_and_its_data(site: Site, patient: dict) -> None:
    key = patient["key"]
    svg = site.login("viewer").get(f"/patients/{key}/view/dvh.svg", params={"lang": "en"})
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "Cumulative DVH" in svg.text and "<script" not in svg.text
    data = site.bearer("viewer").get(f"/api/patients/{key}/view/dvh").json()
    body = next(r for r in data["rois"] if r["name"] == "BODY")
    assert f'id="dvh:{body["name"]}"' in svg.text
    for roi in data["rois"]:
        assert roi["percent"][0] == pytest.approx(100.0) and roi["percent"][-1] == 0.0
        assert all(a >= b for a, b in zip(roi["percent"], roi["percent"][1:], strict=False))  # cumulative
        assert roi["min_gy"] <= roi["d95_gy"] <= roi["mean_gy"] <= roi["max_gy"]
    assert body["max_gy"] >= data["reference_gy"] * 0.95  # the prescription point lies in the body
    assert body["volume_cc"] > max(r["volume_cc"] for r in data["rois"] if r["name"] != "BODY")


def test_an_archived_patient_is_seen_from_its_archive(site: Site) -> None:
    client = site.bearer("viewer")
    archived = [p for p in client.get("/api/search", params={"status": "archived"}).json()["patients"]]
    assert archived
    detail = client.get(f"/api/patients/{archived[0]['key']}").json()
    location = next(loc["location"] for v in detail["versions"] for loc in v["locations"] if loc["kind"] == "archive")
    version = next(v["version"] for v in detail["versions"] if any(loc["location"] == location
                                                                   for loc in v["locations"]))
    data = client.get(f"/api/patients/{archived[0]['key']}/view",
                      params={"version": version, "location": location}).json()
    assert data["source"].startswith("archive ") and data["location"] == location and data["links"], data
    image = _png(client.get(data["links"]["image"].replace("/patients/", "/api/patients/", 1)))
    assert image.shape[1] == 512 and image.mean() > 5


def test_the_patient_page_links_each_copy_of_each_version_to_the_viewer(site: Site) -> None:
    """A viewer chooses, by a link on the patient page, which copy to see (the archive rather than the snapshot
    it was made from): no address to type."""
    client = site.login("viewer")
    key = site.bearer("viewer").get("/api/search", params={"status": "archived"}).json()["patients"][0]["key"]
    detail = site.bearer("viewer").get(f"/api/patients/{key}").json()
    page = unescape(client.get(f"/patients/{key}").text)
    links = re.findall(r'<a class="view-location" href="([^"]+)">([^<]+)</a>', page)
    copies = [(v["version"], loc) for v in detail["versions"] for loc in v["locations"]]
    assert len(links) == len(copies) and {text for _, text in links} == {FR["viewer_open_location"]}
    for (version, location), (href, _) in zip(copies, links, strict=True):
        assert href.startswith(f"/patients/{key}/view?") and f"version={version}" in href
        shown = unescape(client.get(href).text)
        source = re.search(r'<p class="hint" id="viewer-source">([^<]+)', shown).group(1)
        kind = "archive" if location["kind"] == "archive" else "sauvegarde"
        assert f"Version {version}, lue depuis {kind} {location['ref']} du stockage " in source, (location, source)
        assert " in store " not in source  # the French page says it all in French
    assert any(loc["kind"] == "archive" for _, loc in copies)
    english = unescape(client.get(f"/patients/{key}", params={"lang": "en"}).text)
    assert f'">{EN["viewer_open_location"]}</a>' in english


def test_hostile_or_impossible_parameters_are_refused_with_their_field(site: Site, patient: dict) -> None:
    client, key = site.bearer("viewer"), patient["key"]
    for params, status, word in (({"plane": "oblique"}, 400, "plane"), ({"slice": "0"}, 400, "slice"),
                                 ({"slice": "99999"}, 400, "slice"), ({"slice": "²"}, 400, "slice"),
                                 ({"window": "x"}, 400, "window"), ({"dose": "<b>"}, 400, "dose"),
                                 ({"plan": "987"}, 404, "plan"), ({"trial": "nope"}, 404, "trial"),
                                 ({"version": "0" * 16}, 404, "version")):
        for path in (f"/api/patients/{key}/view", f"/api/patients/{key}/view/slice.png"):
            answer = client.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text)
            assert word in answer.json()["error"]["message"], answer.text
    assert client.get("/api/patients/0123456789abcdef/view/slice.png").status_code == 404


def test_the_view_is_audited_and_an_operator_and_admin_see_it_too(site: Site, patient: dict) -> None:
    for role in ("viewer", "operator", "admin"):
        assert site.login(role).get(f"/patients/{patient['key']}/view").status_code == 200
    views = [e for e in site.audit(action="view", patient=patient["key"]) if isinstance(e["detail"], dict)
             and e["detail"].get("viewer")]
    assert {e["user"] for e in views} >= {"viewer", "operator", "admin"}
    assert all(e["detail"]["version"] == patient["version"] and e["detail"]["source"].startswith("snapshot ")
               for e in views)
    assert site.client().get(f"/patients/{patient['key']}/view").status_code == 303  # signed out: sign in first
    assert site.client().get(f"/patients/{patient['key']}/view/slice.png").status_code == 303
