"""The roles of the stores while failed over (docs/design.md, "Failover and failback"): which configured store
backups write to instead of the primary, since when and by whose decision.

The record is kept twice: in the store that took over (`roles/failover.json`, never replicated: every host that
opens that store sees it) and in the local `[daemon] state_dir` (`failover.json`, read by every command to choose
its store without opening any store). Both are written whole and atomically, and removed by the failback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtvault.store.backend import Backend

ROLE_KEY = "roles/failover.json"
STATE_FILE = "failover.json"
FORMAT = 1


@dataclass(frozen=True)
class Failover:
    """The primary store `primary` is failed over to its copy `active` since `since` (UTC `...Z`), by `host`."""

    primary: str
    active: str
    since: str
    host: str

    def to_json(self) -> dict[str, object]:
        return {"format": FORMAT, "primary": self.primary, "active": self.active, "since": self.since,
                "host": self.host}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=1).encode()

    @classmethod
    def from_json(cls, data: object) -> Failover:
        """The record, or ValueError saying what is wrong with it."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a failover record of format {FORMAT}")
        fields = {name: data.get(name) for name in ("primary", "active", "since", "host")}
        if not all(isinstance(value, str) and value for value in fields.values()):
            raise ValueError("a failover record needs primary, active, since and host")
        return cls(**fields)  # type: ignore[arg-type]

    @classmethod
    def decode(cls, raw: bytes) -> Failover:
        try:
            return cls.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(str(error)) from None


def read_failover(backend: Backend) -> Failover | None:
    """The failover record a store holds, or None; ValueError when it is damaged."""
    if not backend.exists(ROLE_KEY):
        return None
    return Failover.decode(backend.get(ROLE_KEY))


def write_failover(backend: Backend, record: Failover) -> None:
    if backend.exists(ROLE_KEY):  # `put` never overwrites (content-addressed keys); `replace` makes no folder
        backend.replace(ROLE_KEY, record.encode())
        backend.barrier()
    else:
        backend.put(ROLE_KEY, record.encode(), durable=True)


def clear_failover(backend: Backend) -> None:
    if backend.exists(ROLE_KEY):
        backend.delete(ROLE_KEY)
