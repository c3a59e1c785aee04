"""`rtvault health`: one check per concern, each OK / WARNING / CRITICAL / UNKNOWN with its measured value and
threshold ([health] in the configuration). The daemon evaluates it every [health] interval and hands the checks
to the alerts (jobs/alerts.py); `/metrics` exports them (rtvault_health_status{check}).

Check names, stable (alerts, metrics and monitoring key on them): `backup:<source>`, `replication:<target
store>`, `verify:<store>`, `space:<store>`, `source:<source>`, `daemon`, `copies`, `jobs`, `alerts`. The part
before the colon is the check's *kind*.
"""

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
