"""The web's own refusals, and the one table that turns any `RtvaultError` into an HTTP status."""

from __future__ import annotations

from rtvault.catalog.db import CatalogError
from rtvault.catalog.users import DirectoryUnavailable
from rtvault.errors import ConfigError, InputError, RtvaultError, StoreError
from rtvault.jobs.deliver import NotFound


class WebError(RtvaultError):
    """A request refused by the web layer itself."""


class Unauthorized(WebError):
    """No valid session or token: HTML pages redirect to the sign-in page, the API answers 401."""


class Forbidden(WebError):
    """The user's role is too small for what was asked."""


class CsrfRefused(WebError):
    """A state-changing request without the session's CSRF token."""


class TooManyAttempts(WebError):
    """Login rate limiting."""


class TooLarge(WebError):
    """A request body beyond what any form of ours sends."""


# Most specific first: the first class an error is an instance of gives its status.
STATUSES: tuple[tuple[type[RtvaultError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (CsrfRefused, 403),
    (TooManyAttempts, 429),
    (TooLarge, 413),
    (NotFound, 404),
    (InputError, 400),
    (DirectoryUnavailable, 503),
    (CatalogError, 503),
    (ConfigError, 500),
    (StoreError, 500),
)


def status_of(error: RtvaultError) -> int:
    return next((status for kind, status in STATUSES if isinstance(error, kind)), 500)
