"""What every request of the web interface goes through: the site (configuration, templates), who the client
is (address, language, session or token), its role and CSRF token checked, its view run and rendered, and its
errors answered with the status and page of `rtvault.errors.HTTP_STATUSES`.

A catalog connection is opened per request (in a worker thread, as the catalog is synchronous) and closed
after it.
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
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from rtvault.catalog.db import Catalog
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
from rtvault.jobs.actions import WebActions
from rtvault.web.call import Call
from rtvault.web.errors import Explained, explain, invalid_input
from rtvault.web.i18n import DEFAULT, LANGUAGES, from_accept_language, local_time, translator
from rtvault.web.params import MAX_BODY, Upload
from rtvault.web.viewer import Viewer

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
    most: int = MAX_BODY  # the largest request body it takes (MAX_UPLOAD for a page taking a file)


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
        self.actions = WebActions(config)  # every audited action, into the journal (through the spool)
        self.viewer = Viewer()  # the patient viewer's scenes and images, kept in memory (web/viewer.py)

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

    def handle(self, request: Request, page: Page, params: dict[str, str], lang: str,
               uploads: dict[str, Upload] | None = None) -> Response:
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
                            dict(request.path_params), api, request.method, self.actions, uploads or {}, self.viewer)
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
    actions_of(request).record(db, user=user, address=client_address(request), action="refused",
                               patient=request.path_params.get("key", ""), detail=detail, result=str(error))


def actions_of(request: Request) -> WebActions:
    """The server's journal of actions (the app's Site's)."""
    return request.app.state.site.actions


def check_csrf(request: Request, params: dict[str, str], session: Session) -> None:
    supplied = request.headers.get("x-csrf-token") or params.get("csrf", "")
    if not hmac.compare_digest(supplied.encode(), session.csrf.encode()):
        raise CsrfRefused("the form's security token is missing or wrong: reload the page and try again")


def remember_language(request: Request, response: Response) -> Response:
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400, httponly=True,
                            samesite="lax")
    return response
