"""The types of `rtvault health` (jobs/health.py re-exports them): a check's `Status` and the `Check` itself, with
`worst`, the order in which statuses outrank each other. Apart so that every module of checks can build them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum


class Status(IntEnum):
    """A check's state; the number is the Nagios plugin exit code and the value of rtvault_health_status."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Check:
    """One concern: `value` measured against `threshold` (numbers, in `unit`; None when not measured), and one
    sentence for a person saying what is wrong (or what is fine) and, when wrong, the first thing to do."""

    name: str
    status: Status
    value: float | None
    threshold: float | None
    message: str
    unit: str = ""  # "s", "%", "" (a count): for Nagios perfdata

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def subject(self) -> str:
        """What the check is about (the source or store name), empty for a check of the whole site."""
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["status"] = self.status.name
        return data


# How bad each status is: UNKNOWN counts below CRITICAL and above WARNING, as Nagios ranks them.
RANK = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


def worst(*statuses: Status) -> Status:
    """The status that outranks the others (OK when there is none)."""
    return max(statuses, key=RANK.__getitem__, default=Status.OK)
