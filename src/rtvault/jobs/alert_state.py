"""What the alerts remember between two evaluations: `alerts.json` in `[daemon] state_dir` (format in
docs/design.md, "Alerts"): each check's status, since when, what was last told about it and when; and, per
channel, the outbox of messages not yet delivered with the attempts, the next try and the last error.

The file is local and private (folder made owner-only, file mode 600), rewritten whole and atomically (a
temporary file, fsync, rename, fsync of the folder). A damaged file is set aside under another name and a
fresh state begins (with a problem saying so: an alert may be sent once more), never a crash. A state that
cannot be saved (the folder unwritable) is kept in memory for the life of the process, so that a daemon
does not repeat its alerts every minute meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from rtvault.errors import os_advice
from rtvault.jobs.health_types import Status
from rtvault.localfile import write_atomically
from rtvault.utc import iso, parse

FILE_NAME = "alerts.json"
VERSION = 1
MAX_WAITING = 100  # messages kept per channel while it fails; older ones are dropped (and counted)

_UNSAVED: dict[Path, AlertState] = {}  # states that could not be written, by file: the newest there is


def _time(text: object) -> datetime:
    moment = parse(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment


def _optional_time(text: object) -> datetime | None:
    return None if text is None else _time(text)


@dataclass(frozen=True)
class CheckState:
    """One check as last evaluated: its status since `since`, and the status the last message about it told
    (`notified`: a problem, OK after a recovery notice, None if never) with when it was queued (`sent`)."""

    status: Status
    since: datetime
    notified: Status | None = None
    sent: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.name, "since": iso(self.since),
                "notified": self.notified.name if self.notified is not None else None,
                "sent": iso(self.sent) if self.sent else None}

    @classmethod
    def from_json(cls, data: dict) -> CheckState:
        notified = data.get("notified")
        return cls(Status[data["status"]], _time(data["since"]), Status[notified] if notified else None,
                   _optional_time(data.get("sent")))


@dataclass(frozen=True)
class Message:
    """One message, as every channel sends it: a subject and a text for a person, and for a program the
    event (`alert`, `recovery`, `test`), the leading status and each check it is about (check JSON with
    `since` and `change`)."""

    created: datetime
    event: str
    status: str
    subject: str
    text: str
    language: str
    host: str
    checks: tuple[dict, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"created": iso(self.created), "event": self.event, "status": self.status, "subject": self.subject,
                "text": self.text, "language": self.language, "host": self.host, "checks": list(self.checks)}

    @classmethod
    def from_json(cls, data: dict) -> Message:
        checks = data.get("checks", [])
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            raise ValueError("a message's checks are not a list of objects")
        return cls(_time(data["created"]), str(data["event"]), str(data["status"]), str(data["subject"]),
                   str(data["text"]), str(data["language"]), str(data["host"]), tuple(checks))


@dataclass(frozen=True)
class Outbox:
    """The messages one channel has not delivered yet, oldest first, and how delivering them goes: failed
    attempts in a row, when to try again, the last error, how many older messages were dropped."""

    messages: tuple[Message, ...] = ()
    attempts: int = 0
    next_try: datetime | None = None
    last_error: str = ""
    dropped: int = 0

    def adding(self, message: Message) -> Outbox:
        kept = (*self.messages, message)
        extra = max(0, len(kept) - MAX_WAITING)
        return replace(self, messages=kept[extra:], dropped=self.dropped + extra)

    def to_json(self) -> dict[str, object]:
        return {"attempts": self.attempts, "next_try": iso(self.next_try) if self.next_try else None,
                "last_error": self.last_error, "dropped": self.dropped,
                "messages": [m.to_json() for m in self.messages]}

    @classmethod
    def from_json(cls, data: dict) -> Outbox:
        return cls(tuple(Message.from_json(m) for m in data["messages"]), int(data["attempts"]),
                   _optional_time(data.get("next_try")), str(data.get("last_error", "")), int(data.get("dropped", 0)))


@dataclass(frozen=True)
class AlertState:
    checks: dict[str, CheckState] = field(default_factory=dict)
    outbox: dict[str, Outbox] = field(default_factory=dict)  # by channel: "mail", "webhook"

    def to_json(self) -> dict[str, object]:
        return {"version": VERSION, "checks": {name: c.to_json() for name, c in sorted(self.checks.items())},
                "outbox": {channel: box.to_json() for channel, box in sorted(self.outbox.items())}}

    @classmethod
    def from_json(cls, data: dict) -> AlertState:
        if data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        return cls({str(name): CheckState.from_json(c) for name, c in data["checks"].items()},
                   {str(channel): Outbox.from_json(b) for channel, b in data["outbox"].items()})


def state_file(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def _decode(text: str) -> AlertState:
    """The state a file holds; ValueError (saying what is wrong) when it is not one."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return AlertState.from_json(data)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from error
    except RecursionError:  # arrays nested deeper than the parser goes
        raise ValueError("nested too deep to be a state file") from None


def peek(path: Path) -> tuple[AlertState, list[str]]:
    """The state as it stands, read only (for `rtvault health`), with what prevents reading it."""
    if path in _UNSAVED:
        return _UNSAVED[path], [_unsaved_problem(path)]
    try:
        return _decode(path.read_text(encoding="utf-8")), []
    except FileNotFoundError:
        return AlertState(), []
    except OSError as error:
        return AlertState(), [f"cannot read the alerts' state {path}: {os_advice(error)}"]
    except ValueError as error:
        return AlertState(), [f"the alerts' state {path} is damaged ({error}); the daemon sets it aside at its "
                              "next evaluation"]


def load(path: Path, now: datetime) -> tuple[AlertState, list[str]]:
    """The state to work from, with the problems met: a damaged file is set aside (renamed
    `alerts.json.damaged-<time>`) and a fresh state begins."""
    if path in _UNSAVED:
        return _UNSAVED[path], []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AlertState(), []
    except OSError as error:
        return AlertState(), [f"cannot read the alerts' state {path}: {os_advice(error)}; alerts already sent "
                              "may be sent again"]
    try:
        return _decode(text), []
    except ValueError as error:
        aside = path.with_name(f"{path.name}.damaged-{iso(now).replace(':', '')}")
        try:
            path.replace(aside)
        except OSError as failure:
            return AlertState(), [f"the alerts' state {path} is damaged ({error}) and cannot be set aside: "
                                  f"{os_advice(failure)}"]
        return AlertState(), [f"the alerts' state {path} was damaged ({error}); it was set aside as {aside.name} "
                              "and a fresh one begun: an alert already sent may be sent once more"]


def save(path: Path, state: AlertState) -> str | None:
    """Write the state atomically; the problem when it cannot be (the state is then kept in memory)."""
    try:
        write_atomically(path, json.dumps(state.to_json(), ensure_ascii=False, indent=1).encode("utf-8"),
                         private=True)
    except OSError as error:
        _UNSAVED[path] = state
        return f"{_unsaved_problem(path)}: {os_advice(error)}"
    _UNSAVED.pop(path, None)
    return None


def unsaved(path: Path) -> bool:
    """Whether the state of `path` is held in memory, waiting to be written."""
    return path in _UNSAVED


def _unsaved_problem(path: Path) -> str:
    return (f"the alerts' state cannot be saved in {path} (kept in memory meanwhile: after a restart, alerts "
            "already sent are sent again)")
