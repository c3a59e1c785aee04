"""Response headers that every answer carries, and the check that keeps `?next=` on this site."""

from __future__ import annotations

import re

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Scripts and styles from /static only (the viewer's keyboard script; never inline), no framing, no referrer leaking a
# patient key.
_ALWAYS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
_NO_STORE = (b"cache-control", b"no-store")
_LOCAL = re.compile(r"/(?![/\\])[^\s\\]*")


def local_path(wanted: str) -> str:
    """`wanted` when it is a path on this site (no scheme, no host, no `//`), else `/`: no open redirect."""
    return wanted if _LOCAL.fullmatch(wanted or "") else "/"


def with_security_headers(response: Response) -> Response:
    """`response` with the headers the middleware adds, for an answer sent from outside it (a crash)."""
    for name, value in (*_ALWAYS, _NO_STORE):
        response.headers[name.decode()] = value.decode()
    return response


class SecurityHeaders:
    """Adds the security headers; everything but static files is `no-store` (pages show health data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += _ALWAYS
                headers.append((b"cache-control", b"max-age=3600") if static else _NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
