"""Error pages as a French hospital user reads them: a translated heading and sentence per kind of error, the
library's detail after it, the signed-in header kept, the security headers even on an unexpected error."""

from __future__ import annotations

import html
import logging
import re
import warnings

import pytest
from starlette.requests import Request
from starlette.routing import Route

from kit.web import sign_in
from rtvault import errors
from rtvault.errors import HTTP_STATUSES, InputError, NotFound, http_status
from rtvault.web.app import create_app, endpoint
from rtvault.web.i18n import EN
from rtvault.web.site import Page

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MISSING = "0123456789abcdef"


def _heading(page: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", page, re.S).group(1).strip()  # type: ignore[union-attr]


def _text(answer) -> str:
    return html.unescape(answer.text)


def test_unknown_patient_page_is_french_with_the_header(site) -> None:
    client = site.login("viewer")
    page = client.get(f"/patients/{MISSING}")
    assert page.status_code == 404 and _heading(page.text) == "Patient inconnu"
    assert "Aucun patient du catalogue" in _text(page) and f"no patient '{MISSING}' in the catalog" in _text(page)
    assert 'id="signed-in"' in page.text and 'id="logout-form"' in page.text and 'href="/archives"' in page.text
    english = client.get(f"/patients/{MISSING}", params={"lang": "en"})
    assert _heading(english.text) == "Unknown patient" and "Signed in" in english.text


def test_forbidden_page_names_the_role_needed_and_the_users(site) -> None:
    page = site.login("operator").get("/audit")
    assert page.status_code == 403 and _heading(page.text) == "Rôle insuffisant"
    assert "demande le rôle administrateur ; vous avez le rôle opérateur" in _text(page)
    assert "this needs the admin role; you have the operator role" in page.text
    api = site.bearer("viewer").get("/api/audit").json()["error"]
    assert api == {"message": "this needs the admin role; you have the viewer role", "status": 403,
                   "kind": "forbidden"}


def test_unknown_address_keeps_the_header(site) -> None:
    client = site.login("viewer")
    page = client.get("/nulle-part")
    assert page.status_code == 404 and _heading(page.text) == "Page introuvable" and 'id="signed-in"' in page.text
    assert site.client().get("/nulle-part").status_code == 404  # signed out: the same page, no header
    assert client.get("/api/nulle-part").json()["error"]["status"] == 404


def test_every_status_of_the_table_has_a_translated_page(site) -> None:
    from rtvault.web.i18n import EN, FR

    assert http_status(NotFound("x")) == 404 and http_status(InputError("x")) == 400
    assert http_status(ValueError("a bug")) == 500
    kinds = {kind for _, _, kind in HTTP_STATUSES if kind != "not_found"}
    kinds |= {"not_found_patient", "not_found_version", "not_found_location", "not_found_dicom", "internal", "no_page",
              "method"}
    for kind in kinds:
        for table in (FR, EN):
            assert f"error_title_{kind}" in table and f"error_text_{kind}" in table, kind


# What a browser or an API client gets for each class: written out, not read from the table under test.
HTTP_ANSWERS: list[tuple[Exception, int, str]] = [
    (errors.Forbidden("admin", "viewer"), 403, "forbidden"),
    (errors.CsrfRefused("the form's security token is missing"), 403, "csrf"),
    (errors.TooManyAttempts("too many attempts"), 429, "too_many"),
    (errors.TooLarge("the body is too large"), 413, "too_large"),
    (errors.NotFound("no version 'x'", what="version"), 404, "not_found_version"),
    (errors.InputError("born: 'x' is not a year"), 400, "invalid"),
    (errors.LockBusy("the store is locked"), 409, "busy"),
    (errors.DirectoryUnavailable("the directory does not answer"), 503, "directory"),
    (errors.Unavailable("the server does not answer"), 503, "unavailable"),
    (errors.CatalogUnavailable("cannot reach the catalog database"), 503, "unavailable"),
    (errors.SourceRefused("source /p is empty: is the Pinnacle share mounted?"), 503, "source"),
    (errors.CatalogError("the catalog database refused a statement: database is locked"), 500, "catalog"),
    (errors.ConfigError("rtvault.toml", ["no store configured"]), 500, "config"),
    (errors.StoreError("the store is damaged"), 500, "store"),
    (errors.Unreadable("none of the 2 received DICOM objects can be read"), 503, "unreadable"),
    (errors.PartialResult("2 files not restored"), 500, "partial"),
    (RuntimeError("a bug"), 500, "internal"),
]


@pytest.mark.parametrize(("error", "status", "kind"), HTTP_ANSWERS, ids=lambda v: type(v).__name__
                         if isinstance(v, Exception) else str(v))
def test_every_error_is_answered_with_the_status_of_the_table(site, error, status, kind) -> None:
    def fails(_call: object) -> dict:
        raise error

    app = create_app(site.config)
    for path, api in (("/fails", False), ("/api/fails", True)):
        page = Page(fails, "viewer", "search.html" if not api else None, api=api)
        app.router.routes.append(Route(path, endpoint(app.state.site, page)))
    client = TestClient(app, "http://127.0.0.1", raise_server_exceptions=False, follow_redirects=False,
                        client=("127.0.0.1", 50000))
    assert sign_in(client, "viewer", site.password).status_code == 303
    answer = client.get("/api/fails").json()["error"]
    assert (answer["status"], answer["kind"]) == (status, kind)
    page = client.get("/fails", headers={"Accept-Language": "en"})
    assert page.status_code == status and _heading(page.text) == EN[f"error_title_{kind}"]


def test_the_sign_in_page_answers_with_the_table_too(site) -> None:
    client = site.client()
    form = client.get("/login")
    refused = client.post("/login", data={"username": "viewer", "password": "wrong", "login_token": "forged"})
    assert form.status_code == 200 and refused.status_code == http_status(errors.CsrfRefused) == 403
    token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"username": "viewer", "password": "wrong", "login_token": token})
    assert wrong.status_code == http_status(errors.Unauthorized) == 401


def _crash(_call: object) -> dict:
    raise RuntimeError("simulated bug in a view")


async def _raw_crash(_request: Request) -> None:
    raise RuntimeError("simulated bug outside the views")


def test_unexpected_error_is_a_french_page_with_the_security_headers(site, caplog) -> None:
    app = create_app(site.config)
    site_object = app.state.site
    app.router.routes.append(Route("/crash", endpoint(site_object, Page(_crash, "viewer", "search.html", api=False))))
    app.router.routes.append(Route("/raw-crash", _raw_crash))
    client = TestClient(app, "http://127.0.0.1", raise_server_exceptions=False, follow_redirects=False,
                        client=("127.0.0.1", 50000))
    assert sign_in(client, "viewer", site.password).status_code == 303
    with caplog.at_level(logging.ERROR):
        page = client.get("/crash")
    assert page.status_code == 500 and _heading(page.text) == "Erreur inattendue"
    assert "simulated bug" not in page.text and 'id="signed-in"' in page.text
    assert "simulated bug in a view" in caplog.text and "Traceback" in caplog.text
    raw = client.get("/raw-crash", headers={"Accept-Language": "en"})
    for answer in (page, raw):
        assert answer.headers["content-security-policy"].startswith("default-src 'self'"), answer.url
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
    assert raw.status_code == 500 and _heading(raw.text) == "Unexpected error"


def test_invalid_search_value_keeps_the_form_and_marks_the_field(site) -> None:
    client = site.login("viewer")
    page = client.get("/", params={"last_name": "lefevre", "born": "abc"})
    text = _text(page)
    assert page.status_code == 400 and 'id="search-form"' in text and 'id="signed-in"' in text
    assert 'id="last_name" name="last_name" value="lefevre"' in text and 'value="abc"' in text
    born = re.search(r'<input id="born"[^>]*>', text).group(0)  # type: ignore[union-attr]
    assert 'aria-invalid="true"' in born and 'aria-describedby="born-error born-help"' in born
    alert = re.search(r'<p class="error field-error" id="born-error" role="alert">(.*?)</p>', text, re.S)
    assert alert and "valeur non comprise" in alert.group(1) and "1950-1960" in alert.group(1)
    assert "is not a year" in alert.group(1)  # the library's detail after the French sentence
    hidden = _text(client.get("/", params={"modified_after": "hier"}))  # a field inside "Plus de criteres"
    assert "<details open>" in hidden and 'id="modified_after-error"' in hidden
    assert 'id="search-error"' in _text(client.get("/", params={"last_name": "a", "page": "0"}))
    assert site.bearer("viewer").get("/api/search", params={"born": "abc"}).json()["error"]["kind"] == "invalid"
