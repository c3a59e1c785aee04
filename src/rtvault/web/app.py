"""The web application: routes, authentication, CSRF, rendering, and the mapping of errors to statuses.

Every page has a JSON twin under /api with the same parameters: one view function serves both, the page
renders its data with a template, the twin returns it as JSON. A catalog connection is opened per request
(in a worker thread, as the catalog is synchronous) and closed after it.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from rtvault.catalog import audit
from rtvault.catalog.db import Catalog, open_catalog
from rtvault.catalog.search import Criteria
from rtvault.catalog.users import Session, User, get_session, role_allows, token_user
from rtvault.config import Config
from rtvault.errors import (
    CsrfRefused,
    Forbidden,
    InputError,
    NotFound,
    Refused,
    RtvaultError,
    Unauthorized,
    http_status,
)
from rtvault.web import views
from rtvault.web.call import Call
from rtvault.web.errors import Explained, explain, explain_status, invalid_input
from rtvault.web.i18n import DEFAULT, LANGUAGES, from_accept_language, local_time, translator
from rtvault.web.params import read_params
from rtvault.web.security import SecurityHeaders, local_path, with_security_headers

HERE = Path(__file__).parent
SESSION_COOKIE = "rtvault_session"
LANG_COOKIE = "rtvault_lang"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """A view, the role it needs, and how its data is rendered: a template, or JSON for the /api twin."""

    view: Callable[[Call], dict | Response]
    role: str
    template: str | None  # None for a view that answers a file
    api: bool
    refill: Callable[[], dict] | None = None  # a form page: its data when the input is invalid (shown again)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _among(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _proxies(request: Request) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    site = getattr(request.app.state, "site", None) if "app" in request.scope else None
    return site.proxies if site is not None else ()


def from_trusted_proxy(request: Request) -> bool:
    """Whether the request came through one of `[web] trusted_proxies` (whose X-Forwarded-* are believed)."""
    return _among(request.client.host if request.client else "", _proxies(request))


def client_address(request: Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy the last address of X-Forwarded-For that is
    not itself a trusted proxy (anyone can put anything at its start)."""
    peer = request.client.host if request.client else ""
    if not from_trusted_proxy(request):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: the proxy's own address, rather than a made-up one
        if not _among(hop, _proxies(request)):
            return hop
    return peer


def language(request: Request) -> str:
    asked = request.query_params.get("lang", "")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE, "")
    if remembered in LANGUAGES:
        return remembered
    return from_accept_language(request.headers.get("accept-language", "")) or DEFAULT


class Site:
    """The configuration, the templates, and how every request is authenticated, run and rendered."""

    def __init__(self, config: Config, zone: tzinfo | None = None) -> None:
        self.config = config
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined,
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.filters["local_time"] = functools.partial(local_time, zone=zone)
        self.proxies = tuple(ipaddress.ip_network(item, strict=False) for item in config.web.trusted_proxies)

    def catalog(self) -> Catalog:
        return Catalog(self.config.catalog.url)

    def secure_cookie(self, request: Request) -> bool:
        """Secure (HTTPS only) unless turned off. With `[web] public_url`, its scheme decides; else a trusted
        proxy's X-Forwarded-Proto does; else Secure unless the browser is on this machine and talks to a
        loopback address (the plain-HTTP demo)."""
        if not self.config.web.secure_cookies:
            return False
        if self.config.web.public_url:
            return self.config.web.public_url.lower().startswith("https://")
        proto = request.headers.get("x-forwarded-proto", "")
        if proto and from_trusted_proxy(request):
            return proto.split(",")[0].strip().lower() == "https"
        return not (is_loopback(client_address(request)) and is_loopback(request.url.hostname or ""))

    # --- rendering -----------------------------------------------------------------------------------------

    def render(self, request: Request, template: str, lang: str, *, status: int = 200, user: User | None = None,
               session: Session | None = None, **context: object) -> HTMLResponse:
        def lang_url(wanted: str) -> str:
            return str(request.url.include_query_params(lang=wanted).replace(scheme="", netloc=""))

        def can(role: str) -> bool:
            return user is not None and role_allows(user.role, role)

        query = {k: v for k, v in request.query_params.items() if k not in ("page", "lang")}

        def page_query(page: int) -> str:
            return urlencode({**query, "page": page})

        html = self.templates.get_template(template).render(
            t=translator(lang), lang=lang, user=user, csrf=session.csrf if session else "", here=request.url.path,
            lang_url=lang_url, can=can, labels=Criteria.labels(), query=dict(request.query_params),
            page_query=page_query, filter_query=urlencode(query), **{"invalid": None, **context})
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, error: Exception, lang: str, api: bool, user: User | None = None,
              session: Session | None = None) -> Response:
        """The answer to a refused or failed request: a redirect to sign in, a JSON error, or a page with the
        signed-in header, a translated heading and sentence, and the library's detail."""
        if isinstance(error, Unauthorized) and not api:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(wanted, safe='')}", status_code=303)
        if not isinstance(error, RtvaultError):
            log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
        return self.explained(request, explain(error, translator(lang)), lang, api, user, session)

    def explained(self, request: Request, explained: Explained, lang: str, api: bool, user: User | None = None,
                  session: Session | None = None) -> Response:
        if api:
            message = explained.detail or explained.title
            return JSONResponse({"error": {"message": message, "status": explained.status, "kind": explained.kind}},
                                status_code=explained.status)
        return self.render(request, "error.html", lang, status=explained.status, user=user, session=session,
                           error=explained)

    def signed_in(self, request: Request) -> tuple[User | None, Session | None]:
        """The session's user for a page outside the authenticated views (an unknown address): the header
        still shows who is signed in; nobody when the catalog itself fails."""
        try:
            with self.catalog() as db:
                session = get_session(db, request.cookies.get(SESSION_COOKIE, ""))
        except Exception:  # the error page must render even when the catalog is what failed
            return None, None
        return (session.user, session) if session else (None, None)

    # --- authenticated pages -------------------------------------------------------------------------------

    def credentials(self, db: Catalog, request: Request, api: bool) -> tuple[User, Session | None]:
        """The user of a session cookie, or (on /api only) of an `Authorization: Bearer` token."""
        header = request.headers.get("authorization", "")
        if api and header:
            scheme, _, token = header.partition(" ")
            user = token_user(db, token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise Unauthorized("the API token is missing, wrong or revoked (see `rtvault token create`)")
            return user, None
        session = get_session(db, request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            raise Unauthorized("sign in first (session missing or expired), or send an API token")
        return session.user, session

    def handle(self, request: Request, page: Page, params: dict[str, str], lang: str) -> Response:
        api, user, session = page.api, None, None
        try:
            with self.catalog() as db:
                user, session = self.credentials(db, request, api)
                try:
                    if not role_allows(user.role, page.role):
                        raise Forbidden(page.role, user.role)
                    if request.method == "POST" and session is not None:
                        check_csrf(request, params, session)
                except Refused as error:
                    record_refusal(db, request, user.name, error, needed=page.role)
                    raise
                call = Call(self.config, db, user, session, client_address(request), params,
                            dict(request.path_params), api, request.method)
                result = page.view(call)
                if isinstance(result, Response):
                    return result
                if api:
                    return JSONResponse(result)
                return self.render(request, page.template or "", lang, user=user, session=session, data=result)
        except InputError as error:
            if api or page.refill is None or isinstance(error, NotFound):
                return self.error(request, error, lang, api, user, session)
            return self.render(request, page.template or "", lang, status=http_status(error), user=user,
                               session=session, data=page.refill(), invalid=invalid_input(error, Criteria.names()))
        except Exception as error:  # an unexpected one too: answered with a page, its traceback logged
            return self.error(request, error, lang, api, user, session)


def record_refusal(db: Catalog, request: Request, user: str, error: Refused, *, needed: str = "") -> None:
    """A signed-in user refused (role too small, bad CSRF token): one audit row naming what was asked."""
    detail = {"method": request.method, "path": request.url.path}
    if isinstance(error, Forbidden):
        detail["needed"] = needed
    audit.record(db, user=user, address=client_address(request), action="refused",
                 patient=request.path_params.get("key", ""), detail=detail, result=str(error))


def check_csrf(request: Request, params: dict[str, str], session: Session) -> None:
    supplied = request.headers.get("x-csrf-token") or params.get("csrf", "")
    if not hmac.compare_digest(supplied.encode(), session.csrf.encode()):
        raise CsrfRefused("the form's security token is missing or wrong: reload the page and try again")


def endpoint(site: Site, page: Page) -> Callable:
    async def run(request: Request) -> Response:
        lang = language(request)
        try:
            params = await read_params(request)
        except RtvaultError as error:
            return site.error(request, error, lang, page.api)
        return remember_language(request, await run_in_threadpool(site.handle, request, page, params, lang))

    return run


def remember_language(request: Request, response: Response) -> Response:
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400, httponly=True,
                            samesite="lax")
    return response


# Pages whose form comes back, the user's values kept and the faulty field marked, when a value is invalid.
FORMS: dict[Callable, Callable[[], dict]] = {views.search_patients: views.no_search}
PAGES: list[tuple[str, str, Callable, str, str | None, tuple[str, ...]]] = [
    ("/", "/api/search", views.search_patients, "viewer", "search.html", ("GET",)),
    ("/patients/{key}", "/api/patients/{key}", views.show_patient, "viewer", "patient.html", ("GET",)),
    ("/patients/{key}/download", "/api/patients/{key}/download", views.download, "operator", None, ("GET", "POST")),
    ("/patients/{key}/restore", "/api/patients/{key}/restore", views.restore, "operator", "restored.html", ("POST",)),
    ("/archives", "/api/archives", views.archives, "viewer", "archives.html", ("GET",)),
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
    from rtvault.web.login import login_routes

    routes: list[BaseRoute] = [*login_routes(site)]
    for path, api_path, view, role, template, methods in PAGES:
        page = Page(view, role, template, api=False, refill=FORMS.get(view))
        routes.append(Route(path, endpoint(site, page), methods=list(methods)))
        routes.append(Route(api_path, endpoint(site, Page(view, role, None, api=True)), methods=list(methods)))
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
