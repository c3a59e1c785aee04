"""The web application: the app factory and its routes (the PAGES table: every page and its JSON twin).

Every page has a JSON twin under /api with the same parameters: one view function serves both, the page
renders its data with a template, the twin returns it as JSON. How each request is authenticated, run and
rendered is `web/site.py`; signing in and out is `web/login.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from rtvault.catalog import open_catalog
from rtvault.config import Config
from rtvault.errors import RtvaultError
from rtvault.web import viewer_views, views
from rtvault.web.errors import explain_status
from rtvault.web.i18n import translator
from rtvault.web.login import login_routes
from rtvault.web.metrics import metrics_route
from rtvault.web.params import MAX_BODY, MAX_UPLOAD, read_request
from rtvault.web.security import SecurityHeaders, local_path, with_security_headers
from rtvault.web.site import HERE, Page, Site, language, remember_language


def endpoint(site: Site, page: Page) -> Callable:
    async def run(request: Request) -> Response:
        lang = language(request)
        try:
            params, uploads = await read_request(request, page.most)
        except RtvaultError as error:
            return site.error(request, error, lang, page.api)
        return remember_language(request, await run_in_threadpool(site.handle, request, page, params, lang, uploads))

    return run


# Pages whose form comes back, the user's values kept and the faulty field marked, when a value is invalid.
FORMS: dict[Callable, Callable[[], dict]] = {views.search_patients: views.no_search,
                                             views.restore_list: views.no_restore_list}
UPLOADS = {views.restore_list}  # pages taking a file: their body may reach MAX_UPLOAD
PAGES: list[tuple[str, str, Callable, str, str | None, tuple[str, ...]]] = [
    ("/", "/api/search", views.search_patients, "viewer", "search.html", ("GET",)),
    ("/patients/{key}", "/api/patients/{key}", views.show_patient, "viewer", "patient.html", ("GET",)),
    ("/patients/{key}/view", "/api/patients/{key}/view", viewer_views.patient_view, "viewer", "viewer.html",
     ("GET",)),
    ("/patients/{key}/view/slice.png", "/api/patients/{key}/view/slice.png", viewer_views.view_slice, "viewer", None,
     ("GET",)),
    ("/patients/{key}/view/dvh.svg", "/api/patients/{key}/view/dvh", viewer_views.view_dvh, "viewer", None,
     ("GET",)),
    ("/patients/{key}/download", "/api/patients/{key}/download", views.download, "operator", None, ("GET", "POST")),
    ("/patients/{key}/dicom.zip", "/api/patients/{key}/dicom.zip", views.dicom_download, "operator", None,
     ("GET",)),
    ("/patients/{key}/restore", "/api/patients/{key}/restore", views.restore, "operator", "restored.html", ("POST",)),
    ("/restore-list", "/api/restore-list", views.restore_list, "operator", "restore_list.html", ("GET", "POST")),
    ("/restore-list/{report}.csv", "/api/restore-list/{report}.csv", views.restore_list_csv, "operator", None,
     ("GET",)),
    ("/archives", "/api/archives", views.archives, "viewer", "archives.html", ("GET",)),
    ("/dashboard", "/api/dashboard", views.dashboard, "operator", "dashboard.html", ("GET",)),
    ("/dashboard/chart/{name}.svg", "/api/dashboard/chart/{name}", views.dashboard_chart, "operator", None, ("GET",)),
    ("/reconcile", "/api/reconcile", views.reconcile_lists, "operator", "reconcile.html", ("GET",)),
    ("/reconcile.csv", "/api/reconcile.csv", views.reconcile_csv, "operator", None, ("GET",)),
    ("/audit", "/api/audit", views.audit, "admin", "audit.html", ("GET",)),
    ("/audit.csv", "/api/audit.csv", views.audit_csv, "admin", None, ("GET",)),
]


def slash_twin(app: Starlette, request: Request) -> str | None:
    """The path with its final slash added or removed, when that is an address of ours, as a relative URL with
    the query: Starlette's own redirect copies the Host header into Location."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")
    if path == "/" or "?" in path:
        return None
    twin = path.rstrip("/") if path.endswith("/") else path + "/"
    if local_path(twin) != twin:  # never //host: a relative URL naming another site
        return None

    def ours(scope: dict) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in app.router.routes)

    # Only when the path itself is no address of ours (not a file missing under /static, say).
    twin_path = request.url.path.rstrip("/") if path.endswith("/") else request.url.path + "/"
    if ours(request.scope) or not ours({**request.scope, "path": twin_path}):
        return None
    return twin + (f"?{request.url.query}" if request.url.query else "")


def create_app(config: Config, zone: tzinfo | None = None) -> Starlette:
    """The ASGI application serving `config`'s catalog; the catalog's schema is brought up to date once here.
    Times are shown in `zone`, by default the server's local time zone."""
    open_catalog(config.catalog.url).close()
    site = Site(config, zone)
    routes: list[BaseRoute] = [*login_routes(site), metrics_route(site)]
    for path, api_path, view, role, template, methods in PAGES:
        most = MAX_UPLOAD if view in UPLOADS else MAX_BODY
        page = Page(view, role, template, api=False, refill=FORMS.get(view), most=most)
        routes.append(Route(path, endpoint(site, page), methods=list(methods)))
        routes.append(Route(api_path, endpoint(site, Page(view, role, None, api=True, most=most)),
                            methods=list(methods)))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))

    async def refused(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (no such address, wrong method), with the signed-in header; an address
        that exists with (or without) a final slash is redirected there, by a relative URL."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        twin = slash_twin(app, request) if status == 404 else None
        if twin:
            return RedirectResponse(twin, status_code=307)
        user, session = await run_in_threadpool(site.signed_in, request)
        lang = language(request)
        return site.explained(request, explain_status(status, translator(lang)), lang,
                              request.url.path.startswith("/api/"), user, session)

    async def crashed(request: Request, exc: Exception) -> Response:
        """A bug outside the views (the views answer their own): Starlette logs the traceback and sends this
        from outside the middleware, hence the security headers added here."""
        lang = language(request)
        answer = site.explained(request, explain_status(500, translator(lang)), lang,
                                request.url.path.startswith("/api/"))
        return with_security_headers(answer)

    app = Starlette(routes=routes, exception_handlers={HTTPException: refused, Exception: crashed})
    app.router.redirect_slashes = False  # Starlette's redirect names the Host header's site: see slash_twin
    app.add_middleware(SecurityHeaders)
    app.state.site = site
    return app
