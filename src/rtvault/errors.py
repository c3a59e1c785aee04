"""The error tree and the single table of exit codes.

Every error a user can cause is a subclass of `RtvaultError`; its `exit_code` is assigned here and nowhere
else. The CLI prints `str(error)` as one sentence; anything else escaping is a bug (exit code 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    INPUT = 4
    SOURCE_REFUSED = 5
    LOCKED = 6
    CHECK_FAILED = 7
    STORE = 8
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "unexpected internal error (a bug: rerun with --debug and report it)",
    ExitCode.USAGE: "wrong command-line usage (unknown option, missing argument)",
    ExitCode.CONFIG: "the configuration file is missing or invalid",
    ExitCode.INPUT: "an input path is missing, unreadable or not what the command expects",
    ExitCode.SOURCE_REFUSED: "backup refused: the source is missing, empty, not mounted or shrank suspiciously",
    ExitCode.LOCKED: "the store is locked by another running writer (backup, prune)",
    ExitCode.CHECK_FAILED: "the store check found problems (listed in the output)",
    ExitCode.STORE: "the store is missing, not an rtvault store, damaged, or lacks what was asked",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGINT)",
}


class RtvaultError(Exception):
    """Base of every error a user can cause; the message is one clear sentence."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(RtvaultError):
    """The configuration file is missing or invalid; lists every problem at once."""

    exit_code = ExitCode.CONFIG

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        if len(problems) == 1:
            text = f"{file}: {problems[0]}"
        else:
            text = f"{file}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text)


class InputError(RtvaultError):
    """An input path is missing, unreadable or not of the expected kind."""

    exit_code = ExitCode.INPUT


@dataclass(frozen=True)
class Problem:
    """A non-fatal problem found while reading input: the work goes on, the problem is reported."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message}


class SourceRefused(RtvaultError):
    """The source looks wrong (missing, empty, unmounted, shrunk): backing it up could lose patients."""

    exit_code = ExitCode.SOURCE_REFUSED


class LockBusy(RtvaultError):
    """Another live writer holds the store's lock."""

    exit_code = ExitCode.LOCKED


class StoreError(RtvaultError):
    """The store is missing, not a store, damaged, or lacks the snapshot, patient or object asked for."""

    exit_code = ExitCode.STORE


class CheckFailed(RtvaultError):
    """`rtvault check` found problems."""

    exit_code = ExitCode.CHECK_FAILED
