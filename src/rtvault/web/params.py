"""What a request carries, read once and checked before any view sees it: query parameters, and a POST's form
or JSON fields, as text; a body refused past MAX_BODY; no NUL or unpaired surrogate anywhere."""

from __future__ import annotations

import re

from starlette.requests import Request

from rtvault.errors import InputError, NotFound, TooLarge

MAX_BODY = 64 * 1024  # our forms and JSON bodies are a few hundred bytes
TOKEN_FIELDS = ("csrf", "login_token")

# No value we take holds a NUL (PostgreSQL refuses it in text) or an unpaired surrogate (no encoding has it).
_UNUSABLE = re.compile("[\x00\ud800-\udfff]")


def _usable(params: dict[str, str], path_params: dict[str, object]) -> dict[str, str]:
    for name, value in path_params.items():
        if isinstance(value, str) and _UNUSABLE.search(value):
            raise NotFound(f"no such {name}: it holds a character no name has", what=name)
    for name, value in params.items():
        if _UNUSABLE.search(name) or _UNUSABLE.search(value):
            raise InputError(f"{_UNUSABLE.sub('?', name)} holds a character that is not allowed (NUL or an "
                             "unpaired surrogate)")
    return params


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes MAX_BODY, whether it announced its length or came
    in chunks; kept on the request, where Starlette's own form and JSON readers find it."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise TooLarge(f"request body over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge(f"request body over {MAX_BODY} bytes")
    request._body = bytes(body)  # Starlette reads a body once; form() and json() use this copy
    return request._body


async def read_params(request: Request) -> dict[str, str]:
    """Query parameters, and for a POST its form or JSON object's fields, all as text. A token (CSRF, sign-in
    form) counts only from the body (or a header): one in the query string would end up in logs and history."""
    params = {k: v for k, v in request.query_params.items() if k not in TOKEN_FIELDS}
    if request.method != "POST":
        return _usable(params, request.path_params)
    await _body(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise InputError("the request body must be a JSON object")
    else:
        body = await request.form()
    params.update({k: v if isinstance(v, str) else "" if v is None else str(v) for k, v in body.items()})
    return _usable(params, request.path_params)
