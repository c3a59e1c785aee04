"""The settings of unattended operation (`[daemon]`, `[health]`, `[alerts]`), declared as every setting is
(config/settings.py). Durations are written `90s`, `30m`, `2h` or `3d`; they stay text in the settings (as
written, for messages and the example) and each has a `*_s` property in seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtvault.config.schema import OPTIONAL_PATH, STRING, Kind, about, positive

_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> int:
    """A duration (`90s`, `30m`, `2h`, `3d`) in seconds; ValueError saying how to write one."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"must be a duration such as 90s, 30m, 2h or 3d (a number above 0 and a unit), "
                         f"got {text!r}")
    return int(match[1]) * _UNIT_S[match[2]]


def _duration_problem(value: str) -> str | None:
    try:
        seconds(value)
    except ValueError as error:
        return str(error)
    return None


DURATION = Kind("a duration", "duration (90s, 30m, 2h, 3d)", STRING.accepts, (_duration_problem,))
OPTIONAL_DURATION = Kind("a duration", "duration (90s, 30m, 2h, 3d) or empty", STRING.accepts,
                         (lambda value: _duration_problem(value) if value else None,))


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """`rtvault daemon`: runs the [schedule] in the foreground (for systemd, containers and tests)."""

    job_timeout: str = field(
        default="12h",
        metadata=about("A job still running after this long is stopped and recorded as failed.", kind=DURATION),
    )
    state_dir: Path = field(
        default=Path("rtvault-state"),
        metadata=about(
            "Local folder of the daemon's own state: journal records waiting for a store that was unreachable, "
            "which alerts were sent. Relative to this file; give the service user write access.",
            example="/var/lib/rtvault",
        ),
    )

    @property
    def job_timeout_s(self) -> int:
        return seconds(self.job_timeout)


@dataclass(frozen=True, kw_only=True)
class Health:
    """`rtvault health`: the thresholds of each check (CRITICAL beyond the max, WARNING beyond the warn level)."""

    interval: str = field(
        default="1m",
        metadata=about("How often the daemon evaluates health and sends alerts.", kind=DURATION),
    )
    backup_max_age: str = field(
        default="6h",
        metadata=about("CRITICAL when the last successful backup of a source is older than this (the recovery "
                       "point objective).", kind=DURATION),
    )
    backup_warn_age: str = field(
        default="",
        metadata=about("WARNING when the last successful backup is older than this; empty: half of "
                       "backup_max_age.", kind=OPTIONAL_DURATION),
    )
    replication_max_lag: str = field(
        default="12h",
        metadata=about("CRITICAL when the newest snapshot a copy lacks is older than this (WARNING beyond half).",
                       kind=DURATION),
    )
    verify_max_age: str = field(
        default="35d",
        metadata=about("CRITICAL when a store's last complete verification cycle is older than this (WARNING "
                       "beyond [verify] cycle_days); keep it above cycle_days.", kind=DURATION),
    )
    free_warn_percent: float = field(
        default=15.0,
        metadata=about("WARNING when a store's disk has less than this percentage free.",
                       check=lambda v: None if 0 <= v <= 100 else f"must be a percentage (0 to 100), got {v}"),
    )
    free_critical_percent: float = field(
        default=5.0,
        metadata=about("CRITICAL when a store's disk has less than this percentage free.",
                       check=lambda v: None if 0 <= v <= 100 else f"must be a percentage (0 to 100), got {v}"),
    )
    full_warn_days: int = field(
        default=90,
        metadata=about("WARNING when a store's disk is forecast full (from its growth over the last 30 days) "
                       "within this many days.", check=positive),
    )
    full_critical_days: int = field(
        default=14,
        metadata=about("CRITICAL when a store's disk is forecast full within this many days.", check=positive),
    )
    daemon: bool = field(
        default=True,
        metadata=about("Expect `rtvault daemon` to run: CRITICAL when its heartbeat stops. false when another "
                       "scheduler (cron) runs the jobs."),
    )

    @property
    def interval_s(self) -> int:
        return seconds(self.interval)

    @property
    def backup_max_age_s(self) -> int:
        return seconds(self.backup_max_age)

    @property
    def backup_warn_age_s(self) -> int:
        return seconds(self.backup_warn_age) if self.backup_warn_age else self.backup_max_age_s // 2

    @property
    def replication_max_lag_s(self) -> int:
        return seconds(self.replication_max_lag)

    @property
    def verify_max_age_s(self) -> int:
        return seconds(self.verify_max_age)

    @staticmethod
    def problems(values: dict[str, Any]) -> list[str]:
        found = []
        if values["backup_warn_age"] and seconds(values["backup_warn_age"]) >= seconds(values["backup_max_age"]):
            found.append("backup_warn_age must be shorter than backup_max_age (a warning comes before the alarm)")
        if values["free_critical_percent"] > values["free_warn_percent"]:
            found.append("free_critical_percent must not be above free_warn_percent")
        if values["full_critical_days"] > values["full_warn_days"]:
            found.append("full_critical_days must not be above full_warn_days")
        return found


def _language(value: str) -> str | None:
    return None if value in ("fr", "en") else f"must be fr or en, got {value!r}"


@dataclass(frozen=True, kw_only=True)
class Mail:
    """Alerts by e-mail (SMTP); empty host: no e-mail."""

    host: str = field(default="", metadata=about("SMTP server.", example="smtp.chu-exemple.fr"))
    port: int = field(default=587, metadata=about("SMTP port (587: submission with STARTTLS).",
                                                 check=lambda v: None if 1 <= v <= 65535
                                                 else f"must be a TCP port (1 to 65535), got {v}"))
    starttls: bool = field(default=True, metadata=about(
        "Upgrade the connection with STARTTLS, the server's certificate verified (refuse to send otherwise)."))
    ca_file: Path | None = field(default=None, metadata=about(
        "Certificate authorities to verify the server with, PEM; unset: the system's.", example="",
        kind=OPTIONAL_PATH))
    username: str = field(default="", metadata=about("Sign in with this user (with password_file); empty: no "
                                                     "sign-in.", example=""))
    password_file: Path | None = field(default=None, metadata=about(
        "File holding the SMTP password, readable by its owner only.", example="", kind=OPTIONAL_PATH))
    sender: str = field(default="", metadata=about("From address.", example="rtvault@chu-exemple.fr"))
    recipients: tuple[str, ...] = field(default=(), metadata=about(
        "Who receives the alerts.", example=["physique@chu-exemple.fr", "informatique@chu-exemple.fr"]))

    @staticmethod
    def problems(values: dict[str, Any]) -> list[str]:
        if not values["host"]:
            return []
        found = [f"{key}: required to send e-mail alerts" for key in ("sender", "recipients") if not values[key]]
        if bool(values["username"]) != (values["password_file"] is not None):
            found.append("username and password_file go together (an SMTP sign-in needs both)")
        return found


def _webhook_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return f"must start with http:// or https://, got {value!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """Alerts as a JSON POST to a URL (a chat, an incident tool); empty url: none."""

    url: str = field(default="", metadata=about("Where to POST each alert.", example="", check=_webhook_url))


@dataclass(frozen=True, kw_only=True)
class Alerts:
    """Alerts: sent when a health check turns WARNING or CRITICAL, repeated, and when it is OK again."""

    repeat_hours: int = field(default=24, metadata=about(
        "An alert still true is sent again after this many hours.", check=positive))
    language: str = field(default="fr", metadata=about("Language of the messages: fr or en.", check=_language))
    retry_seconds: int = field(default=60, metadata=about(
        "A message that could not be delivered is retried after this long, then twice as long each time "
        "(at most one hour).", check=positive))
    mail: Mail = field(default_factory=Mail)
    webhook: Webhook = field(default_factory=Webhook)


@dataclass(frozen=True, kw_only=True)
class Continuity:
    """Continuity targets and restore drills (`rtvault drill`): the recovery point is [health] backup_max_age."""

    rto_patient_minutes: int = field(default=10, metadata=about(
        "Recovery time objective for one patient back in Pinnacle, in minutes: a drill slower than this is "
        "CRITICAL.", check=positive))
    rto_full_minutes: int = field(default=30, metadata=about(
        "Recovery time objective for the whole database, in minutes: a drill whose measured or extrapolated full "
        "restore is slower than this is CRITICAL.", check=positive))
    drill_every_days: int = field(default=7, metadata=about(
        "WARNING when the last restore drill is older than this many days.", check=positive))
    drill_dir: Path = field(default=Path("rtvault-drills"), metadata=about(
        "Scratch space of the drills (emptied after each, whatever happens); never inside the Pinnacle database. "
        "Relative to this file.", example="/var/lib/rtvault/drills"))
    procedure_dir: Path | None = field(default=None, metadata=about(
        "Where the daemon writes the printed procedures again (procedures-fr.pdf, procedures-en.pdf) whenever the "
        "configuration or the last drill changed; unset: it does not.", example="/var/lib/rtvault/procedures",
        kind=OPTIONAL_PATH))
