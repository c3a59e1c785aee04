"""What a request carries, read once and checked before any view sees it: query parameters, and a POST's form
or JSON fields, as text, and the files a form uploads (a list of patients to restore), as bytes; a body refused
past MAX_BODY (MAX_UPLOAD for a page taking a file); no NUL or unpaired surrogate in any text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from rtvault.errors import InputError, NotFound, TooLarge

MAX_BODY = 64 * 1024  # our forms and JSON bodies are a few hundred bytes
MAX_UPLOAD = 2 * 1024 * 1024  # a CSV list of patients: a hundred rows are a few kilobytes
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


async def _body(request: Request, most: int) -> bytes:
    """The request body, refused (413) as soon as it passes `most` bytes, whether it announced its length or
    came in chunks; kept on the request, where Starlette's own form and JSON readers find it."""
    if int(request.headers.get("content-length") or 0) > most:
        raise TooLarge(f"request body over {most} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > most:
            raise TooLarge(f"request body over {most} bytes")
    request._body = bytes(body)  # Starlette reads a body once; form() and json() use this copy
    return request._body


@dataclass(frozen=True)
class Upload:
    """A file a form sent: its name as the browser gave it (the last part of it only) and its bytes."""

    filename: str
    content: bytes


async def read_params(request: Request) -> dict[str, str]:
    """Query parameters, and for a POST its form or JSON object's fields, all as text (see `read_request`)."""
    return (await read_request(request))[0]


async def read_request(request: Request, most: int = MAX_BODY) -> tuple[dict[str, str], dict[str, Upload]]:
    """Query parameters, and for a POST its form or JSON object's fields, all as text; and the files a
    multipart form uploaded. A token (CSRF, sign-in form) counts only from the body (or a header): one in the
    query string would end up in logs and history."""
    params = {k: v for k, v in request.query_params.items() if k not in TOKEN_FIELDS}
    uploads: dict[str, Upload] = {}
    if request.method != "POST":
        return _usable(params, request.path_params), uploads
    await _body(request, most)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise InputError("the request body must be a JSON object")
    else:
        try:
            body = await request.form(max_files=1)
        except HTTPException as error:  # Starlette's multipart parser refusing the body
            raise InputError(f"the form could not be read: {error.detail}") from None
    for name, value in body.items():
        if isinstance(value, UploadFile):
            shown = _UNUSABLE.sub("?", PurePosixPath((value.filename or "").replace("\\", "/")).name[:100])
            uploads[name] = Upload(shown, await value.read())
        else:
            params[name] = value if isinstance(value, str) else "" if value is None else str(value)
    return _usable(params, request.path_params), uploads
