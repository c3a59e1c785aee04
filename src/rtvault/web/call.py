"""What a view gets: the request's parameters, the catalog connection, the signed-in user, and audit."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from rtvault.catalog import audit
from rtvault.catalog.db import Catalog
from rtvault.catalog.users import Session, User
from rtvault.config import Config
from rtvault.errors import InputError
from rtvault.jobs.actions import WebActions
from rtvault.web.params import Upload
from rtvault.web.viewer import Viewer


@dataclass
class Call:
    """One authenticated request, as the views see it (query parameters and form or JSON body merged)."""

    config: Config
    db: Catalog
    user: User
    session: Session | None  # None when the request came with an API token
    address: str
    params: dict[str, str]
    path_params: dict[str, str]
    api: bool
    method: str = "GET"
    actions: WebActions | None = None  # the server's journal of actions (None: the audit table only)
    uploads: dict[str, Upload] = field(default_factory=dict)  # the files a multipart form sent, by field
    viewer: Viewer = field(default_factory=Viewer)  # the server's scenes and images (its own per Call otherwise)

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default).strip()

    def number(self, name: str, default: int, *, least: int = 1, most: int = 10_000) -> int:
        text = self.get(name)
        if not text:
            return default
        # ASCII digits only: `isdigit` also accepts ², which `int` refuses (an HTTP 500 before).
        if not (text.isascii() and text.isdigit() and len(text) <= 9) or not least <= int(text) <= most:
            raise InputError(f"{name} must be a whole number from {least} to {most}, got {text!r}")
        return int(text)

    def audit(self, action: str, *, patient: str = "", detail: dict | str = "", result: str = "ok") -> None:
        """One action of this request, into the journal of actions and the audit trail."""
        record = self.actions.record if self.actions is not None else functools.partial(audit.record)
        record(self.db, user=self.user.name, address=self.address, action=action, patient=patient, detail=detail,
               result=result)
