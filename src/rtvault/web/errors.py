"""How an error reads on a page: its HTTP status and kind (from `rtvault.errors.HTTP_STATUSES`, the one table),
a heading and one sentence in the user's language naming what went wrong and what to do, then the library's
own (English) detail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rtvault.errors import Forbidden, InputError, NotFound, error_kind, http_status

# Starlette's own refusals (an unknown address, a wrong method) carry only a status.
STATUS_KINDS = {404: "no_page", 405: "method", 500: "internal"}


@dataclass(frozen=True)
class Explained:
    status: int
    kind: str
    title: str
    sentence: str
    detail: str  # the library's message; empty for an unexpected error (its traceback is in the server's log)


def kind_of(error: Exception) -> str:
    kind = error_kind(error)
    return f"not_found_{error.what}" if isinstance(error, NotFound) else kind


def explain(error: Exception, t: Callable[..., str]) -> Explained:
    kind = kind_of(error)
    values = {}
    if isinstance(error, Forbidden):
        values = {"needed": t(f"role_{error.needed}"), "actual": t(f"role_{error.actual}")}
    detail = "" if kind == "internal" else str(error)
    return Explained(http_status(error), kind, t(f"error_title_{kind}"), t(f"error_text_{kind}", **values), detail)


def explain_status(status: int, t: Callable[..., str]) -> Explained:
    kind = STATUS_KINDS.get(status, "internal")
    return Explained(status, kind, t(f"error_title_{kind}"), t(f"error_text_{kind}"), "")


def invalid_input(error: InputError, fields: list[str]) -> dict[str, str]:
    """Which form field an invalid value came from (the library names it first: `born: '19x5' is not...`),
    "" when none, and the library's detail."""
    named = str(error).partition(":")[0].strip().replace(" ", "_")
    return {"field": named if named in fields else "", "detail": str(error)}
