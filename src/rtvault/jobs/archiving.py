"""The archive jobs as a caller runs them (`jobs/archives.py` does the work): each result reports itself
(`report.py`), which archives are damaged or not whole is decided here, and after a job changed the store the
catalog is brought in step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rtvault.archive import records
from rtvault.archive.formats import ArchiveRecord, Stored
from rtvault.config import Config
from rtvault.errors import InputError, PartialResult, Problem
from rtvault.jobs import archives
from rtvault.jobs.catalog import refresh_quietly
from rtvault.jobs.history import matches
from rtvault.jobs.physics_export import PhysicsExport
from rtvault.report import OK, Line, Refreshed, Report, Verdict, err
from rtvault.store import Store


def line(summary: ArchiveRecord) -> str:
    """One archive on one line: id, date, status, file and whom it holds."""
    who = ", ".join(f"{p.last_name} {p.first_name}".strip() or p.path for p in summary.patients)
    state = "DAMAGED" if summary.state == "damaged" else summary.state
    what = who or (f"physics: {', '.join(summary.machines)}" if summary.machines else "no patient")
    return f"{summary.id[:12]}  {summary.created[:10]}  {state:18}  {summary.file}  {what}"


def hurt(summaries: Iterable[ArchiveRecord]) -> list[ArchiveRecord]:
    """The archives stored damaged or not whole."""
    return [s for s in summaries if s.hurt()]


@dataclass(frozen=True)
class Ingested(Refreshed):
    """Archive files ingested: 4 when a file could not be ingested, else 9 when one is damaged or not whole."""

    archives: tuple[Stored, ...]
    errors: tuple[dict, ...]  # {"file", "error"}
    lock_warnings: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"archives": [a.to_json() for a in self.archives], "errors": list(self.errors)}

    def warnings(self) -> Iterable[str]:
        return [*map(str, self.lock_warnings), *super().warnings()]

    def lines(self) -> Iterable[Line]:
        for result in self.archives:
            record = result.record
            yield Line(("already stored  " if result.already else "") + line(record))
            yield from (Line(f"    {problem}") for problem in record.problems[:20])
            if len(record.problems) > 20:
                more = len(record.problems) - 20
                yield Line(f"    ... {more} more problems: rtvault archive show {record.id[:12]}")
            yield from (Line(f"    NOT WHOLE: {text}") for text in record.not_whole())
        yield from (err(f"rtvault: error: {error['error']}") for error in self.errors)

    def verdict(self) -> Verdict:
        if self.errors:
            return Verdict.failed(InputError(f"{len(self.errors)} of {len(self.errors) + len(self.archives)} "
                                             "file(s) could not be ingested"))
        if partial := hurt(a.record for a in self.archives):
            return Verdict.failed(PartialResult(f"{len(partial)} of {len(self.archives)} archive(s) stored but "
                                                "damaged or incomplete: what could not be read is named above"))
        return OK


def ingest(config: Config, store: Store, paths: list[Path]) -> Ingested:
    """`rtvault archive ingest`: each file stored, scanned and indexed; then the catalog refreshed."""
    results, errors, warnings = archives.ingest(config, store, paths)
    return Ingested(tuple(results), tuple(errors), tuple(warnings), catalog=refresh_quietly(config))


@dataclass(frozen=True)
class Swept(Refreshed):
    """Deleted patients archived and the inbox ingested: 9 when an archive is hurt or an inbox file was left."""

    result: archives.Sweep

    def to_json(self) -> dict:
        return self.result.to_json()

    def warnings(self) -> Iterable[str]:
        yield from (f"{w.file}: {w.message}" for w in self.result.warnings)
        yield from super().warnings()

    def lines(self) -> Iterable[Line]:
        yield from (Line(f"archived {line(stored.record)}") for stored in self.result.archived)
        for stored in self.result.ingested:
            yield Line(f"ingested {line(stored.record)}")
            yield from (Line(f"    NOT WHOLE: {text}") for text in stored.record.not_whole())
        yield from (err(f"  problem: {p.file}: {p.message}") for p in self.result.problems)
        yield Line(f"{len(self.result.archived)} archived, {len(self.result.ingested)} ingested")

    def verdict(self) -> Verdict:
        damaged, problems = hurt(s.record for s in self.result.ingested), self.result.problems
        if not_archived := self.result.not_archived:
            return Verdict.failed(PartialResult(
                f"{len(not_archived)} patient(s) gone from Pinnacle could not be archived ({', '.join(not_archived)}): "
                "the reason is named above; each stays in its last snapshot, which retention keeps; run the sweep "
                "again once that is fixed"))
        if not (damaged or problems):
            return OK
        return Verdict.failed(PartialResult(f"{len(damaged)} archive(s) ingested damaged or incomplete and "
                                            f"{len(problems)} file(s) of the inbox not ingested (named above)"))


def sweep(config: Config, store: Store) -> Swept:
    """`rtvault archive sweep`: archive deleted patients, ingest the inbox; then the catalog refreshed."""
    return Swept(archives.sweep(config, store), catalog=refresh_quietly(config))


@dataclass(frozen=True)
class Exported(Report):
    """A patient version written as a Pinnacle tar (and with --with-physics, the physics in force for it): 9 when
    some of its files could not be put in, or the physics lacks a machine its plans name or could not be written."""

    result: dict  # {"out", "members", "bytes", "incomplete"[, "physics": PhysicsExport]}: archives.export's

    @property
    def physics(self) -> PhysicsExport | None:
        return self.result.get("physics")

    def to_json(self) -> dict:
        return {**self.result, **({"physics": self.physics.to_json()} if self.physics else {})}

    def lines(self) -> Iterable[Line]:
        yield Line(f"wrote {self.result['out']}: {self.result['members']} members, {self.result['bytes']} bytes")
        yield from (err(f"  NOT EXPORTED: {missing}") for missing in self.result["incomplete"])
        if self.physics is not None:
            yield from (Line(f"wrote the physics snapshot {s.snapshot} of the source {s.source} ({s.time})")
                        for s in self.physics.snapshots)
            yield Line(f"  into {self.physics.out}: {self.physics.files} files; the patient's plans name "
                       f"{', '.join(self.physics.machines) or 'no machine'}")
            yield from (err(f"  warning: {fault}") for fault in self.physics.faults())
            yield from (err(f"  machine not read: {u}") for u in self.physics.unread)

    def verdict(self) -> Verdict:
        faults = [*self.result["incomplete"], *(self.physics.faults() if self.physics else [])]
        if not faults:
            return OK
        return Verdict.failed(PartialResult(f"{len(faults)} thing(s) of the patient are not in {self.result['out']}"
                                            + (f" or {self.physics.out}" if self.physics else "")
                                            + " (named above)"))


def holding(store: Store, key: str | None) -> list[ArchiveRecord]:
    """The archives of the store (newest last), only those holding the patient KEY names when given."""
    return [r for r in records.summaries(store) if key is None or any(matches(p, key) for p in r.patients)]


def expired(store: Store, today: date, everything: bool = False) -> list[dict]:
    """The archived patients that may be destroyed today (every archived patient with `everything`)."""
    rows = archives.retention_rows(store, today)
    return rows if everything else [r for r in rows if r["may_destroy"]]


def record_override(config: Config, store: Store, archive_id: str, patient: str | None, kind: str,
                    day: date | None, reason: str, by: str) -> str | None:
    """An administrator's retention override, then that archive read again into the catalog; returns the
    catalog refresh's problem, if any."""
    archives.record_override(store, archive_id, patient, kind, day, reason, by)
    return refresh_quietly(config, archives=frozenset({archive_id}))
