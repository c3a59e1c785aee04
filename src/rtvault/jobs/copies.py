"""The copies jobs as a caller runs them: replicate, verify and repair every configured store, with the catalog
brought in step afterwards when a store changed, and each result reported with its verdict (`report.py`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtvault.config import Config
from rtvault.configured import sealed_backend_of
from rtvault.configured import store_name as configured_store
from rtvault.copies.pairs import PairResult, replicate_configured
from rtvault.copies.repair import RepairReport, VerifyOutcome, repair_stores, verify_stores
from rtvault.copies.sealed import SealedReport, check_without_key
from rtvault.copies.verify import Budget
from rtvault.errors import ExitCode, InputError
from rtvault.events import Progress
from rtvault.jobs import destruction, dicom_destruction
from rtvault.jobs.catalog import refresh_quietly
from rtvault.report import Line, Refreshed, Report, Verdict, err


@dataclass(frozen=True)
class Replicated(Refreshed):
    """Every pair replicated: a pair that could not run gives its code (8: a store missing; 6: locked), else a
    refused (damaged) source object gives 7. Errors and problems go to stderr, with --json too (cron mails
    stderr)."""

    pairs: tuple[PairResult, ...]
    destructions: str | None = None  # the pending destructions could not be carried on (jobs/destruction.py)

    def warnings(self) -> Iterable[str]:
        return [*([self.destructions] if self.destructions else []), *super().warnings()]

    def to_json(self) -> dict[str, object]:
        skipped = [f"{r.source} -> {r.target}: skipped: {r.skipped}" for r in self.pairs if r.skipped]
        return {"pairs": [r.to_json() for r in self.pairs], **({"warnings": skipped} if skipped else {})}

    def lines(self) -> Iterable[Line]:
        for result in self.pairs:
            head = f"{result.source} -> {result.target}" + (" (pulled)" if result.pull else "")
            if result.skipped:
                yield Line(f"{head}: skipped: {result.skipped}")
                continue
            if result.error is not None or result.summary is None:
                yield err(f"rtvault: error: {head}: {result.error}")
                continue
            s = result.summary
            lag = "up to date" if s.complete else \
                f"lagging by {s.lag_snapshots} snapshot(s), {s.lag_archives} archive(s), " \
                f"{s.lag_receipts} DICOM receipt(s)"
            yield Line(f"{head}: {s.objects_copied} objects, {s.trees_copied} trees, {s.snapshots_copied} "
                       f"snapshots, {s.archives_copied} archives, {s.receipts_copied} DICOM receipts copied "
                       f"({s.bytes_copied / 1e6:.1f} MB) in "
                       f"{s.duration_s:.1f} s; {lag}")
            yield from (err(f"  problem: {problem}") for problem in s.problems)
            yield from (err(f"  warning: {warning}") for warning in s.warnings)

    def notes(self) -> Iterable[str]:
        for result in self.pairs:
            head = f"{result.source} -> {result.target}"
            if result.skipped:
                continue
            if result.error is not None or result.summary is None:
                yield f"rtvault: error: {head}: {result.error}"
            else:
                yield from (f"rtvault: problem: {head}: {problem}" for problem in result.summary.problems)

    def verdict(self) -> Verdict:
        for result in self.pairs:
            if result.error is not None:
                return Verdict(result.error.exit_code)
        return Verdict.unless(any(r.summary and r.summary.problems for r in self.pairs), ExitCode.CHECK_FAILED)


def replicate(config: Config, source: str | None = None, target: str | None = None,
              progress: Progress | None = None, *, pull: bool = False) -> Replicated:
    """`rtvault replicate`: every selected pair (`pull`: only those whose source is read-only here), then the
    catalog refreshed (where each copy is)."""
    pairs = tuple(replicate_configured(config, source, target, progress, pull=pull))
    finished = destruction.finish_quietly(config)  # a store back online: its copy of a destroyed archive goes
    received = dicom_destruction.finish_quietly(config)  # and its destroyed received objects
    finished = "; ".join(p for p in (finished, received) if p) or None
    return Replicated(pairs, finished, catalog=refresh_quietly(config))


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _repair_lines(report: RepairReport) -> Iterable[Line]:
    yield Line(f"{report.store}: repaired {len(report.repaired)}, not repairable {len(report.unrepairable)}"
               + (f", {len(report.already_good)} good again" if report.already_good else ""))
    yield from (Line(f"  repaired   {item['key']} (from {item['from']})") for item in report.repaired)
    yield from (Line(f"  NOT REPAIRED {item['key']}: {item['detail']}") for item in report.unrepairable)
    yield from (err(f"  warning: {warning}") for warning in report.warnings)


def _outcome_lines(outcome: VerifyOutcome) -> Iterable[Line]:
    report = outcome.report
    if report is not None:
        cycle = "cycle complete" if report.cycle_completed else f"cycle {report.coverage_percent:.1f} % covered"
        yield Line(f"{outcome.store}: verified {report.objects_verified} of {report.total} files "
                   f"({_size(report.bytes)}) in {report.duration_s:.1f} s; {cycle}")
    if outcome.repair is not None:
        yield from _repair_lines(outcome.repair)
    for problem in report.problems if report else []:
        yield Line(f"  {problem.kind:<10} {problem.key}: {problem.detail} (since {problem.found})")
    if outcome.error is not None:
        yield err(f"rtvault: error: {outcome.store}: {outcome.error}")


@dataclass(frozen=True)
class Verified(Refreshed):
    """Each store's verification (and repair): the first store's error code (8: unreadable, 6: locked), else 7
    while problems remain."""

    outcomes: tuple[VerifyOutcome, ...]
    destructions: str | None = None  # the pending destructions could not be carried on (jobs/destruction.py)

    def warnings(self) -> Iterable[str]:
        return [*([self.destructions] if self.destructions else []), *super().warnings()]

    def to_json(self) -> dict[str, object]:
        return {"stores": [o.to_json() for o in self.outcomes], "healthy": all(o.healthy for o in self.outcomes)}

    def lines(self) -> Iterable[Line]:
        for outcome in self.outcomes:
            yield from _outcome_lines(outcome)

    def verdict(self) -> Verdict:
        code = next((o.error.exit_code for o in self.outcomes if o.error), None)
        return Verdict(code) if code else Verdict.unless(not all(o.healthy for o in self.outcomes),
                                                         ExitCode.CHECK_FAILED)


def verify(config: Config, store_name: str | None, *, budget: Budget | None = None, all: bool = False,
           progress: Progress | None = None) -> Verified:
    """`rtvault verify`: the next slice of each store; the catalog refreshed when a repair changed a store."""
    outcomes = tuple(verify_stores(config, store_name, budget=budget, all=all, progress=progress))
    changed = any(o.repair and o.repair.repaired for o in outcomes)
    finished = None
    if any(o.report and o.report.pending_destruction for o in outcomes):
        finished = destruction.finish_quietly(config, found=True)  # the store's copy of a destroyed archive goes
        changed = True
    if received := dicom_destruction.finish_quietly(config):  # a store back with destroyed received objects
        finished = "; ".join(p for p in (finished, received) if p)
    return Verified(outcomes, finished, catalog=refresh_quietly(config) if changed else None)


@dataclass(frozen=True)
class Repaired(Refreshed):
    """Each store's repair: 7 when something could not be repaired (no good copy anywhere)."""

    reports: tuple[RepairReport, ...]

    def to_json(self) -> dict[str, object]:
        return {"stores": [r.to_json() for r in self.reports], "healthy": all(r.healthy for r in self.reports)}

    def lines(self) -> Iterable[Line]:
        for report in self.reports:
            yield from _repair_lines(report)

    def verdict(self) -> Verdict:
        return Verdict.unless(not all(r.healthy for r in self.reports), ExitCode.CHECK_FAILED)


def repair(config: Config, store_name: str | None, *, progress: Progress | None = None) -> Repaired:
    """`rtvault repair`: heal what verify found from another store; the catalog refreshed when a file came back."""
    reports = tuple(repair_stores(config, store_name, progress=progress))
    return Repaired(reports, catalog=refresh_quietly(config) if any(r.repaired for r in reports) else None)


@dataclass(frozen=True)
class SealedChecked(Report):
    """An encrypted store's sealed files checked without the key: 7 when one is damaged."""

    report: SealedReport

    def to_json(self) -> dict[str, object]:
        return self.report.to_json()

    def lines(self) -> Iterable[Line]:
        r = self.report
        yield Line(f"{r.store}: {r.files} sealed files ({_size(r.bytes)}) checked without the key in "
                   f"{r.duration_s:.1f} s; {len(r.problems) or 'no'} problem(s)")
        yield from (Line(f"  {problem.file}: {problem.message}") for problem in r.problems)

    def verdict(self) -> Verdict:
        return Verdict.unless(self.report.problems, ExitCode.CHECK_FAILED)


def verify_sealed(config: Config, wanted: str | None) -> SealedChecked:
    """`rtvault verify --without-key`: one encrypted store's checksums, with no passphrase."""
    if wanted is None:
        raise InputError("--without-key checks one encrypted store: name it with --store")
    name = configured_store(config, wanted)
    return SealedChecked(check_without_key(name, sealed_backend_of(config, name)))
