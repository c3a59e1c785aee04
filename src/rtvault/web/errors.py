"""The web's refusals and the HTTP status of any error, both from `rtvault.errors` (the one table)."""

from __future__ import annotations

from rtvault.errors import CsrfRefused, Forbidden, TooLarge, TooManyAttempts, Unauthorized, http_status

__all__ = ["CsrfRefused", "Forbidden", "TooLarge", "TooManyAttempts", "Unauthorized", "http_status"]
