"""The error tree, the single table of exit codes and the single table of HTTP statuses.

Every error a user can cause is a subclass of `RtvaultError`; its `exit_code` is assigned here and nowhere
else, and so are the HTTP status the web interface answers it with and the kind of error page it shows
(`HTTP_STATUSES`). The CLI prints `str(error)` as one sentence; anything else escaping is a bug (exit code 1,
HTTP 500).
"""

from __future__ import annotations

import errno
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
    PARTIAL = 9
    CATALOG = 10
    PEER = 11
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "unexpected internal error (a bug: rerun with --debug and report it)",
    ExitCode.USAGE: "wrong command-line usage (unknown option, missing argument)",
    ExitCode.CONFIG: "the configuration file is missing or invalid",
    ExitCode.INPUT: "an input path is missing, unreadable or not what the command expects",
    ExitCode.SOURCE_REFUSED: "the source is missing, empty or not mounted (backup, reconcile), or shrank "
                             "suspiciously (backup refused)",
    ExitCode.LOCKED: "the store is locked by another running writer (backup, prune)",
    ExitCode.CHECK_FAILED: "a check found problems (check, verify, status, health: listed in the output)",
    ExitCode.STORE: "the store is missing, not an rtvault store, damaged, or lacks what was asked",
    ExitCode.PARTIAL: "partial result: the job finished, but some patients, files or archive members could not be "
                      "read or written (each is named in the output)",
    ExitCode.CATALOG: "the catalog database cannot be reached, is locked by another program, or is damaged",
    ExitCode.PEER: "a DICOM peer cannot be reached, refused the association, or aborted it (rtvault dicom echo, send, "
                   "find, move: the message says which and what to check)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGINT or SIGTERM)",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service stopped, `kill`): raised in the main thread as Ctrl-C is, so that whatever was started
    is ended the same way, the command is journalled as interrupted and rtvault exits 130."""


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

    @classmethod
    def from_json(cls, data: dict) -> Problem:
        return cls(str(data["file"]), str(data["message"]), data.get("line"))


class SourceRefused(RtvaultError):
    """The source looks wrong (missing, empty, unmounted, shrunk): backing it up could lose patients."""

    exit_code = ExitCode.SOURCE_REFUSED


class LockBusy(RtvaultError):
    """Another live writer holds the store's lock."""

    exit_code = ExitCode.LOCKED


class StoreError(RtvaultError):
    """The store is missing, not a store, damaged, or lacks the snapshot, patient or object asked for."""

    exit_code = ExitCode.STORE


class Unreadable(StoreError):
    """None of the objects asked for can be read from any configured store now (not sealed yet, damaged, a store
    offline): the web answers 503, as for a server that does not answer, rather than 500."""


class PartialResult(RtvaultError):
    """The job did what it could, but named patients, files or members could not be read or written."""

    exit_code = ExitCode.PARTIAL


class CheckFailed(RtvaultError):
    """`rtvault check` found problems."""

    exit_code = ExitCode.CHECK_FAILED


class PeerError(RtvaultError):
    """A DICOM peer cannot be reached, refused the association (which AE title, SOP class or transfer syntax), or
    aborted it: the sentence says which and what to check."""

    exit_code = ExitCode.PEER


class PeerUnreachable(PeerError):
    """No TCP connection to the peer at all: nothing listens on its port, its host is unknown or does not answer."""


class PeerTlsFailed(PeerError):
    """A peer with `tls = true` answered, but no TLS session could be made: it speaks plain TCP, its certificate is
    not trusted, has expired or names another host, or it refused rtvault's own certificate."""


class NotFound(InputError):
    """The patient, version or location asked for is not in the catalog; `what` names which."""

    def __init__(self, message: str, what: str = "patient") -> None:
        super().__init__(message)
        self.what = what


class Unavailable(RtvaultError):
    """A server rtvault depends on (the LDAP directory, the catalog database) does not answer."""

    exit_code = ExitCode.CONFIG  # most often a wrong URL in the configuration, or that server is down


class DirectoryUnavailable(Unavailable):
    """The LDAP/Active Directory server cannot be reached: nobody from the directory can sign in for now."""


class CatalogError(RtvaultError):
    """The catalog database cannot be used: it refused a statement (locked past the busy timeout, damaged, a
    constraint or the audit trail's triggers). The stores are not concerned: `catalog rebuild` refills it."""

    exit_code = ExitCode.CATALOG


class CatalogUnavailable(CatalogError, Unavailable):
    """The catalog database cannot be reached or opened (exit 10, like every catalog fault; HTTP 503)."""


class Refused(RtvaultError):
    """A web request refused before any work: no credentials, too small a role, no CSRF token, too big."""


class Unauthorized(Refused):
    """No valid session or token: HTML pages redirect to the sign-in page, the API answers 401."""


class Forbidden(Refused):
    """The user's role is too small for what was asked."""

    def __init__(self, needed: str, actual: str) -> None:
        super().__init__(f"this needs the {needed} role; you have the {actual} role")
        self.needed = needed
        self.actual = actual


class CsrfRefused(Refused):
    """A state-changing request without the session's CSRF token."""


class TooManyAttempts(Refused):
    """Login rate limiting."""


class TooLarge(Refused):
    """A request body beyond what any form of ours sends."""


# What to do about each operating-system error a store, a source or a destination can raise.
_OS_ADVICE: dict[int, str] = {
    errno.ENOSPC: "no space left on the device: free space there, then run again",
    errno.EDQUOT: "the disk quota is exceeded: free space or raise the quota, then run again",
    errno.EROFS: "the file system is mounted read-only: remount it read-write (or check the NAS), then run again",
    errno.EACCES: "permission denied: give the user running rtvault access to it, then run again",
    errno.EPERM: "operation not permitted: give the user running rtvault access to it, then run again",
    errno.EIO: "input/output error: the disk or the network share may be failing; check it before running again",
    errno.ENOTDIR: "a part of that path is not a directory: choose another path",
    errno.EISDIR: "it is a directory where a file was expected: choose another path",
    errno.ENAMETOOLONG: "the name is too long for that file system: choose a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n), then run again",
    errno.ESTALE: "the network share went away (stale handle): remount it, then run again",
    errno.ENOTCONN: "the network share is disconnected: remount it, then run again",
}


def os_advice(error: OSError) -> str:
    """One clause saying what went wrong and what to do, for an operating-system error."""
    code = error.errno if isinstance(error.errno, int) else 0
    return _OS_ADVICE.get(code) or (error.strerror or str(error) or type(error).__name__)


def os_failure(error: OSError, path: object, *, store: str | None = None,
               doing: str = "write") -> RtvaultError:
    """An OSError met on a store (StoreError, exit 8) or on an input or destination (InputError, exit 4),
    as one sentence naming the path, the store and what to do."""
    where = f"{path}" + (f" (store {store})" if store else "")
    text = f"cannot {doing} {where}: {os_advice(error)}"
    return StoreError(text) if store else InputError(text)


# The HTTP status of each error and the kind of page the web interface shows for it (a heading and a sentence,
# `error_title_<kind>` and `error_text_<kind>`, in the user's language), most specific first: the first class
# an error is an instance of gives both; any other error (a bug included) is 500, "internal".
HTTP_STATUSES: tuple[tuple[type[RtvaultError], int, str], ...] = (
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (CsrfRefused, 403, "csrf"),
    (TooManyAttempts, 429, "too_many"),
    (TooLarge, 413, "too_large"),
    (NotFound, 404, "not_found"),
    (InputError, 400, "invalid"),
    (LockBusy, 409, "busy"),
    (DirectoryUnavailable, 503, "directory"),
    (Unavailable, 503, "unavailable"),
    (SourceRefused, 503, "source"),
    (CatalogError, 500, "catalog"),
    (ConfigError, 500, "config"),
    (Unreadable, 503, "unreadable"),
    (StoreError, 500, "store"),
    (PartialResult, 500, "partial"),
    (PeerError, 502, "unavailable"),
)
INTERNAL = (RtvaultError, 500, "internal")


def _row(error: BaseException | type[BaseException]) -> tuple[type[RtvaultError], int, str]:
    kind = error if isinstance(error, type) else type(error)
    return next((row for row in HTTP_STATUSES if issubclass(kind, row[0])), INTERNAL)


def http_status(error: BaseException | type[BaseException]) -> int:
    """The HTTP status of an error, or of a class of errors."""
    return _row(error)[1]


def error_kind(error: BaseException | type[BaseException]) -> str:
    """The kind of error page of an error, or of a class of errors ("internal" for anything unexpected)."""
    return _row(error)[2]
