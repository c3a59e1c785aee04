"""What `rtvault reconcile` finds (jobs/reconcile.py does the finding): its three lists of patients, as a report
for a person, as JSON (`{"never_captured", "under_copied", "safe_to_delete"}`, each entry with the patient's
`key`, `name` and `mrn`) and as CSV (one row per patient, or per archive of an under-copied patient)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rtvault.catalog.audit import spreadsheet_cell
from rtvault.errors import ExitCode
from rtvault.report import Line, Report, Verdict

SHOWN = 20  # entries of each list shown to a person; the JSON and the CSV list them all
LISTS = ("never_captured", "under_copied", "safe_to_delete")
CSV_COLUMNS = ("list", "source", "key", "name", "mrn", "path", "last_modified", "status", "snapshot", "archive", "file",
               "copies", "verified", "offsite")


@dataclass(frozen=True)
class Who:
    """A patient as every list names it: the catalog key (for a patient never captured, the key the catalog will
    give it), the name (last then first), the MRN and the Pinnacle path."""

    key: str
    name: str
    mrn: str
    path: str
    source: str = ""  # the configured source the patient is in ("" for an archived patient: in no source now)

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {"key": self.key, "name": self.name, "mrn": self.mrn, "path": self.path}
        return {**found, "source": self.source} if self.source else found

    def shown(self) -> str:
        where = f"{self.source}: " if self.source and self.source != "pinnacle" else ""
        return f"{where}{self.path}  {self.name or '(no name)'}  MRN {self.mrn or '-'}"


@dataclass(frozen=True)
class NeverCaptured:
    """A patient in the Pinnacle source that no snapshot holds."""

    who: Who
    patient_id: str
    last_modified: str | None  # the newest change of its files, in the source
    files: int
    bytes: int

    def to_json(self) -> dict[str, object]:
        return {**self.who.to_json(), "patient_id": self.patient_id, "last_modified": self.last_modified,
                "files": self.files, "bytes": self.bytes}

    def rows(self) -> list[dict[str, object]]:
        return [{**self.who.to_json(), "last_modified": self.last_modified}]

    def line(self) -> str:
        return f"{self.who.shown()}  changed {self.last_modified or 'never'}, {self.files} files"


@dataclass(frozen=True)
class Held:
    """One archive of a patient and where it is: every store and disk (`volume:<label>`) holding it, and those
    whose copy counts as verified."""

    archive: str
    file: str
    copies: tuple[str, ...]
    verified: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"archive": self.archive, "file": self.file, "copies": list(self.copies),
                "verified": list(self.verified)}

    def shown(self) -> str:
        return (f"archive {self.archive[:12]} ({self.file}) on {', '.join(self.copies)}; verified: "
                f"{', '.join(self.verified) or 'none'}")


@dataclass(frozen=True)
class UnderCopied:
    """An archived patient with an archive on fewer than two verified copies."""

    who: Who
    status: str  # the catalog's: active, archived or deleted
    archives: tuple[Held, ...]  # those on fewer than two verified copies

    def to_json(self) -> dict[str, object]:
        return {**self.who.to_json(), "status": self.status, "archives": [a.to_json() for a in self.archives]}

    def rows(self) -> list[dict[str, object]]:
        return [{**self.who.to_json(), "status": self.status, "archive": a.archive, "file": a.file,
                 "copies": " ".join(a.copies), "verified": " ".join(a.verified)} for a in self.archives]

    def line(self) -> str:
        return f"{self.who.shown()}  ({self.status}): " + "; ".join(a.shown() for a in self.archives)


@dataclass(frozen=True)
class SafeToDelete:
    """A patient unchanged in Pinnacle for [reconcile] idle_months, exactly as its latest snapshot holds it, whose
    version is archived as a Pinnacle tar on two verified copies or more, one of them offsite or a removable disk."""

    who: Who
    last_modified: str  # the newest change of its files, in the source
    snapshot: str  # the newest snapshot holding it
    version: str  # that version's tree
    archive: Held
    offsite: tuple[str, ...]  # the verified copies that are offsite stores or removable disks

    def to_json(self) -> dict[str, object]:
        return {**self.who.to_json(), "last_modified": self.last_modified, "snapshot": self.snapshot,
                "version": self.version, **self.archive.to_json(), "offsite": list(self.offsite)}

    def rows(self) -> list[dict[str, object]]:
        return [{**self.who.to_json(), "last_modified": self.last_modified, "snapshot": self.snapshot,
                 "archive": self.archive.archive, "file": self.archive.file, "copies": " ".join(self.archive.copies),
                 "verified": " ".join(self.archive.verified), "offsite": " ".join(self.offsite)}]

    def line(self) -> str:
        return (f"{self.who.shown()}  unchanged since {self.last_modified[:10]}; archive {self.archive.archive[:12]} "
                f"verified on {', '.join(self.archive.verified)} (offsite or offline: {', '.join(self.offsite)})")


@dataclass(frozen=True)
class NotYet:
    """An idle patient that is not safe to delete yet, and why (what to run)."""

    who: Who
    reason: str


@dataclass(frozen=True)
class Reconciliation(Report):
    """The three lists; `not_yet`: the idle patients that are not safe to delete yet, with the reason (shown to a
    person, not in the JSON); `problems`: what could not be read or checked (exit code 9)."""

    source: str
    idle_months: int
    idle_before: str  # a patient unchanged since before this time is idle
    never_captured: tuple[NeverCaptured, ...]
    under_copied: tuple[UnderCopied, ...]
    safe_to_delete: tuple[SafeToDelete, ...]
    not_yet: tuple[NotYet, ...] = ()
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {name: [entry.to_json() for entry in getattr(self, name)] for name in LISTS}

    def warnings(self) -> Iterable[str]:
        return self.problems

    def lines(self) -> Iterable[Line]:
        yield Line(f"Pinnacle source {self.source}; idle: unchanged since before {self.idle_before[:10]} "
                   f"([reconcile] idle_months = {self.idle_months})")
        titles = {"never_captured": "in Pinnacle, never captured in a snapshot (run `rtvault backup`)",
                  "under_copied": "archived on fewer than two verified copies (run `rtvault replicate`, then "
                                  "`rtvault verify`)",
                  "safe_to_delete": "safe to delete from Pinnacle (rtvault deletes nothing there)"}
        for name in LISTS:
            yield from _listed(f"{len(getattr(self, name))} {titles[name]}",
                               [entry.line() for entry in getattr(self, name)])
        if self.not_yet:
            yield from _listed(f"{len(self.not_yet)} idle but not safe to delete yet",
                               [f"{n.who.shown()}: {n.reason}" for n in self.not_yet])

    def csv(self, clean: Callable[[str], str] = str) -> str:
        """Every entry of the three lists as CSV (a `list` column says which), cells defused for a spreadsheet;
        `clean` rewrites each text cell first (the command line escapes control characters)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for name in LISTS:
            for entry in getattr(self, name):
                for row in entry.rows():
                    values = {**row, "list": name}
                    writer.writerow([spreadsheet_cell(values.get(column, "") or "", clean) for column in CSV_COLUMNS])
        return out.getvalue()

    def verdict(self) -> Verdict:
        """0 once reconciled, whatever the lists hold (they are for a person to act on; `rtvault status` and
        `health` watch the copies); 9 when something could not be read, so a list may lack a patient."""
        return Verdict.unless(self.problems, ExitCode.PARTIAL)


def _listed(title: str, lines: list[str]) -> Iterable[Line]:
    yield Line(title + (":" if lines else ""))
    yield from (Line(f"  {line}") for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        yield Line(f"  ... and {len(lines) - SHOWN} more (--json and --csv list them all)")

