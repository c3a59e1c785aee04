"""What a job hands back: a result that renders itself, for a person or a program, with a health verdict.

A job returns a `Report`: `to_json()` for --json, `lines()` for a person (each line for stdout or stderr), and
`verdict()`: the exit code (`errors.ExitCode`: 0, 7 problems found, 9 partial ...) and, for a person, the
error sentence that ends the output. The library never prints: `cli.output.reported` prints a report, made
safe for a terminal, and sets the exit code from its verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rtvault.errors import ExitCode, RtvaultError


@dataclass(frozen=True)
class Line:
    """One line for a person: on stdout, or on stderr (err=True) for what went wrong."""

    text: str
    err: bool = False


def err(text: str) -> Line:
    return Line(text, err=True)


@dataclass(frozen=True)
class Verdict:
    """How the job went: its exit code, and the error a person is told at the end (with --json, the exit
    code alone speaks: the report is the one JSON document on stdout)."""

    code: ExitCode = ExitCode.OK
    error: RtvaultError | None = None

    @classmethod
    def failed(cls, error: RtvaultError) -> Verdict:
        return cls(error.exit_code, error)

    @classmethod
    def unless(cls, problems: object, code: ExitCode) -> Verdict:
        """OK, or `code` (with no sentence of its own: the problems were listed) when there are problems."""
        return cls(code) if problems else OK


OK = Verdict()


class Report:
    """A job's result. Subclasses give `to_json` and `lines`, and `verdict` when the job can go wrong without
    raising; `warnings` are said first (`rtvault: warning: ...` on stderr) and `notes` follow the JSON on
    stderr (where cron's mail finds them)."""

    def to_json(self) -> object:
        raise NotImplementedError

    def lines(self) -> Iterable[Line]:
        return ()

    def warnings(self) -> Iterable[str]:
        return ()

    def notes(self) -> Iterable[str]:
        return ()

    def verdict(self) -> Verdict:
        return OK

    def journalled(self) -> list[dict[str, object]]:
        """The patients the command acted on one by one, each an entry of its own in the journal of actions beside
        the command's (`{"patient": key, "detail": {...}, "result": "ok" or "failed: why"}`): a restore of several."""
        return []


@dataclass(frozen=True)
class Plain(Report):
    """A result that is data already (a list of users, a configuration): its JSON and its lines as given."""

    data: object
    text: tuple[Line, ...] = field(default=())
    outcome: Verdict = OK

    @classmethod
    def of(cls, data: object, *lines: str | Line, outcome: Verdict = OK) -> Plain:
        return cls(data, tuple(line if isinstance(line, Line) else Line(line) for line in lines), outcome)

    def to_json(self) -> object:
        return self.data

    def lines(self) -> Iterable[Line]:
        return self.text

    def verdict(self) -> Verdict:
        return self.outcome


@dataclass(frozen=True, kw_only=True)
class Refreshed(Report):
    """The result of a job that changed a store, then brought the catalog in step: a refresh that failed (the
    job's work stands) is said as a warning."""

    catalog: str | None = None  # why the catalog could not be refreshed, if it could not

    def warnings(self) -> Iterable[str]:
        return [self.catalog] if self.catalog else []
