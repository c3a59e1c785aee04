"""`rtvault procedure`: the site's printed operating and emergency procedures (docs/design.md, "Printed
procedures").

What the paper says comes from this site's configuration (its file, stores, source root, restore folder, centre
and contacts) and from what was measured (the last restore drill in the run journal, the removable disks in the
catalog). The catalog is read, never required: a procedure is printed most when something is broken, so a
catalog that cannot be opened costs only the figures, and says so on the page. What the configuration lacks
(`[site]` name and contacts, the source root, the restore folder) is printed as a field to complete by hand and
named in the report. HTML and PDF made by jobs/printed.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rtvault.config import Config
from rtvault.errors import InputError
from rtvault.jobs import printed
from rtvault.jobs.procedure_facts import Facts, gather
from rtvault.jobs.procedure_sections import document
from rtvault.report import Line, Report

ROLES = ("physicist", "operator", "admin")
LANGUAGES = ("fr", "en")


def roles_of(role: str | None) -> tuple[str, ...]:
    if role is None:
        return ROLES
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: give one of {', '.join(ROLES)} (or none for every role)")
    return (role,)


def render_html(facts: Facts, lang: str, roles: tuple[str, ...]) -> str:
    """The procedure as one HTML document (every value from the site escaped)."""
    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r}: give fr or en")
    return document(facts, lang, roles)


@dataclass(frozen=True)
class ProcedureReport(Report):
    out: Path
    lang: str
    roles: tuple[str, ...]
    missing: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), "lang": self.lang, "roles": list(self.roles), "missing": list(self.missing)}

    def lines(self) -> Iterable[Line]:
        yield Line(f"wrote the procedures ({self.lang}, {', '.join(self.roles)}) to {self.out}")
        for note in self.notes():
            yield Line(note, err=True)

    def notes(self) -> Iterable[str]:
        if self.missing:
            yield (f"to be completed: {', '.join(self.missing)} not set in the configuration: the procedure prints "
                   "blank fields to fill in by hand; set them and run `rtvault procedure` again")


def procedure(config: Config, out: Path, lang: str = "fr", role: str | None = None,
              now: datetime | None = None) -> ProcedureReport:
    """Write this site's procedures to `out` (`.pdf` or `.html`, from the extension) in `lang` for `role` (None:
    every role in one document)."""
    printed.check_out(out)
    roles = roles_of(role)
    facts = gather(config, now)
    printed.write(out, render_html(facts, lang, roles))
    return ProcedureReport(out, lang, roles, tuple(facts.missing()))


def write_procedure(config: Config, out: Path, lang: str = "fr", role: str | None = None) -> Path:
    """The library call (for the daemon's regeneration): write the procedures, return where."""
    return procedure(config, out, lang, role).out
