"""What `rtvault backup` reports: the snapshot's summary (also the manifest's `summary`, less what is known only
after the snapshot is saved), and the report its command prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from rtvault.errors import ExitCode, Problem
from rtvault.report import Line, Refreshed, Verdict, err


@dataclass
class BackupSummary:
    snapshot: str
    patients: int
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    duration_s: float = 0.0
    warnings: list[Problem] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)  # archives written for patients gone from the source
    not_archived: list[str] = field(default_factory=list)  # patients gone from the source whose archive failed
    archive_s: float = 0.0  # the archives' time, after the snapshot was saved (not in duration_s)
    incomplete: list[str] = field(default_factory=list)  # patients (or backup.OTHER) with files that could not be read

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["warnings"] = [w.to_json() for w in self.warnings]
        return data


AFTER = ("archived", "not_archived", "archive_s")  # known only once the snapshot is saved: not in its manifest


@dataclass(frozen=True)
class BackedUp(Refreshed):
    """A backup as its caller sees it: the snapshot's summary, partial (exit 9) when something could not be read."""

    summary: BackupSummary

    def to_json(self) -> dict[str, object]:
        return self.summary.to_json()

    def lines(self) -> Iterable[Line]:
        s = self.summary
        yield Line(f"snapshot {s.snapshot}: {s.patients} patients, {s.files_new} new, {s.files_changed} changed, "
                   f"{s.files_unchanged} unchanged files; {s.bytes_read / 1e6:.1f} MB read, "
                   f"{s.bytes_added / 1e6:.1f} MB added in {s.duration_s:.1f} s")
        if s.archived:
            yield Line(f"archived {len(s.archived)} patient(s) gone from Pinnacle (see `rtvault archive list`)")
        yield from (err(f"  warning: {warning}") for warning in s.warnings)
        if s.incomplete:
            yield err(f"rtvault: partial backup: {len(s.incomplete)} patient(s) or folder(s) could not be read "
                      f"entirely ({', '.join(s.incomplete)}); what could not be read is named above, earlier copies "
                      "were kept; give the rtvault user read access, then back up again")
        if s.not_archived:
            yield err(f"rtvault: snapshot {s.snapshot} saved, but {len(s.not_archived)} patient(s) gone from Pinnacle "
                      f"could not be archived ({', '.join(s.not_archived)}): the reason is named above; each stays in "
                      "its last snapshot, which retention keeps, and the next backup or `rtvault archive sweep` "
                      "archives it")

    def verdict(self) -> Verdict:
        return Verdict.unless(self.summary.incomplete or self.summary.not_archived, ExitCode.PARTIAL)
