"""Signing in and out: the only pages open without a session.

The sign-in form carries a one-time token also set as a cookie (a login-CSRF guard); attempts are counted per
address and user name before the password is checked (catalog/logins.py), and past the limit the page
answers 429. Every sign-in, failure and sign-out is
recorded in the audit trail.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rtvault.catalog.logins import MAX_TYPED_NAME, begin_attempt, succeeded, take_back
from rtvault.catalog.users import (
    MAX_PASSWORD_BYTES,
    authenticate,
    create_session,
    end_session,
    get_session,
)
from rtvault.errors import (
    CsrfRefused,
    DirectoryUnavailable,
    RtvaultError,
    TooManyAttempts,
    Unauthorized,
    http_status,
)
from rtvault.web.params import read_params
from rtvault.web.security import local_path
from rtvault.web.site import (
    SESSION_COOKIE,
    Site,
    actions_of,
    check_csrf,
    client_address,
    language,
    record_refusal,
    remember_language,
)

LOGIN_COOKIE = "rtvault_login"


def _form(site: Site, request: Request, lang: str, next_path: str, *, error: str = "", status: int = 200,
          username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = site.render(request, "login.html", lang, status=status, next_path=next_path, error=error,
                           login_token=token, username=username)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=site.secure_cookie(request))
    return response


def show_form(site: Site, request: Request, lang: str) -> Response:
    next_path = local_path(request.query_params.get("next", "/"))
    with site.catalog() as db:
        if get_session(db, request.cookies.get(SESSION_COOKIE, "")) is not None:
            return RedirectResponse(next_path, status_code=303)
    return _form(site, request, lang, next_path)


def sign_in(site: Site, request: Request, params: dict[str, str], lang: str) -> Response:
    name, password = params.get("username", "").strip(), params.get("password", "")
    # Beyond these sizes no account can match: refused before Argon2 runs, the name cut for the records.
    oversized = len(name) > MAX_TYPED_NAME or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES
    name = name[:MAX_TYPED_NAME]
    next_path, address = local_path(params.get("next", "/")), client_address(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), params.get("login_token", "").encode()):
        return _form(site, request, lang, next_path, error="login_expired", status=http_status(CsrfRefused),
                     username=name)
    with site.catalog() as db:
        attempt = begin_attempt(db, address, name)  # counted as a failure until the password proves right
        if not attempt.allowed:
            if attempt.first_refusal:  # the next ones are counted, and recorded as one row when it is over
                actions_of(request).record(db, user=name, address=address, action="login_failed",
                                           result="too many attempts")
            return _form(site, request, lang, next_path, error="too_many", status=http_status(TooManyAttempts),
                         username=name)
        try:
            user = None if oversized else authenticate(db, site.config.web.ldap, name, password)
        except DirectoryUnavailable as error:
            take_back(db, attempt)
            actions_of(request).record(db, user=name, address=address, action="login_failed", result=str(error))
            return _form(site, request, lang, next_path, error="error_text_directory",
                         status=http_status(DirectoryUnavailable), username=name)
        if user is None:
            actions_of(request).record(db, user=name, address=address, action="login_failed",
                                       result="wrong user name or password")
            return _form(site, request, lang, next_path, error="login_failed", status=http_status(Unauthorized),
                         username=name)
        succeeded(db, address, name)
        cookie, _session = create_session(db, user.name, address, site.config.web.session_hours)
        actions_of(request).record(db, user=user.name, address=address, action="login")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=site.config.web.session_hours * 3600, httponly=True,
                        samesite="strict", secure=site.secure_cookie(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def sign_out(site: Site, request: Request, params: dict[str, str], lang: str) -> Response:
    cookie, session = request.cookies.get(SESSION_COOKIE, ""), None
    try:
        with site.catalog() as db:
            session = get_session(db, cookie)
            if session is not None:
                try:
                    check_csrf(request, params, session)
                except CsrfRefused as error:
                    record_refusal(db, request, session.user.name, error)
                    raise
                end_session(db, cookie)
                actions_of(request).record(db, user=session.user.name, address=client_address(request), action="logout")
    except RtvaultError as error:  # a forged sign-out: the user is still signed in, the page says so
        return site.error(request, error, lang, api=False, user=session.user if session else None, session=session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_routes(site: Site) -> list[BaseRoute]:
    async def login(request: Request) -> Response:
        lang = language(request)
        if request.method == "GET":
            response = await run_in_threadpool(show_form, site, request, lang)
        else:
            try:
                params = await read_params(request)
            except RtvaultError as error:
                return site.error(request, error, lang, api=False)
            response = await run_in_threadpool(sign_in, site, request, params, lang)
        return remember_language(request, response)

    async def logout(request: Request) -> Response:
        lang = language(request)
        try:
            params = await read_params(request)
        except RtvaultError as error:
            return site.error(request, error, lang, api=False)
        return await run_in_threadpool(sign_out, site, request, params, lang)

    return [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"])]
