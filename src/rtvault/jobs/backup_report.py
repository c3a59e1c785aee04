"""What `rtvault backup` reports: the snapshot's summary (also the manifest's `summary`, less what is known only
after the snapshot is saved), and the report its command prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from rtvault.errors import ExitCode, Problem, SourceRefused
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
    source: str = "pinnacle"  # the configured source ([sources.<name>]) the snapshot is of
    kind: str = "pinnacle-patients"
    site: str = ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["warnings"] = [w.to_json() for w in self.warnings]
        return data


AFTER = ("archived", "not_archived", "archive_s")  # known only once the snapshot is saved: not in its manifest
NAMED = ("source", "kind", "site")  # the manifest's own fields, not repeated in its summary


@dataclass(frozen=True)
class BackedUp(Refreshed):
    """A backup as its caller sees it: the snapshot's summary, partial (exit 9) when something could not be read."""

    summary: BackupSummary

    def to_json(self) -> dict[str, object]:
        return self.summary.to_json()

    def lines(self) -> Iterable[Line]:
        s = self.summary
        of = "" if s.source == "pinnacle" and not s.site else f" of {s.source}" + (f" ({s.site})" if s.site else "")
        count = f"{s.patients} patients" if s.kind == "pinnacle-patients" else "physics"
        yield Line(f"snapshot {s.snapshot}{of}: {count}, {s.files_new} new, {s.files_changed} changed, "
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


@dataclass(frozen=True)
class SourceRefusal:
    """A source the backup refused (missing, empty, shrunk, of the wrong kind): nothing recorded for it."""

    source: str
    error: SourceRefused

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "refused": str(self.error), "exit_code": int(self.error.exit_code)}


@dataclass(frozen=True)
class BackedUpSources(Refreshed):
    """A backup of several sources: each one's summary (or why it was refused), in configuration order. Exit 5
    when a source was refused, else 9 when one is partial."""

    done: tuple[BackupSummary | SourceRefusal, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"sources": [item.to_json() for item in self.done]}

    def lines(self) -> Iterable[Line]:
        for item in self.done:
            if isinstance(item, SourceRefusal):
                yield err(f"rtvault: source {item.source} not backed up: {item.error}")
            else:
                yield from BackedUp(item).lines()

    def verdict(self) -> Verdict:
        refused = [item for item in self.done if isinstance(item, SourceRefusal)]
        if refused:
            return Verdict(ExitCode.SOURCE_REFUSED)
        partial = [s for s in self.done if isinstance(s, BackupSummary) and (s.incomplete or s.not_archived)]
        return Verdict.unless(partial, ExitCode.PARTIAL)
