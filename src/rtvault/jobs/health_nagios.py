"""`rtvault health --nagios`: the one line of a Nagios plugin, `RTVAULT <STATUS> - <summary> | <perfdata>`, and
its exit code (the worst status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), as Centreon and Nagios read it.

Performance data follow the Nagios plugin guidelines: `'label'=value[UOM];warn;crit;min;max` for each check,
space separated; the label is the check's name in single quotes (a quote in it doubled, an equals sign, a pipe
or a control character replaced: a store may be named anything); a value not measured is `U`; a level where a
low value is bad (free space, the patient count) is a range `N:` (alert below N). The summary names every check
that is not OK with its sentence, worst first; a pipe (which starts the perfdata) or a line break in it is
replaced, so that the output stays one line.
"""

from __future__ import annotations

import re

from rtvault.config import Config
from rtvault.jobs.health import HealthReport
from rtvault.jobs.health_survey import GRACE_S
from rtvault.jobs.health_types import RANK, Check, Status

SUMMARY_MAX = 2000  # Nagios keeps 4 KB of a plugin's output (8 KB since Nagios 4): room for the perfdata
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def number(value: float) -> str:
    """A number as perfdata write them: no exponent, at most 2 decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def label(name: str) -> str:
    """A check's name as a perfdata label: quoted, a quote doubled, `=` `|` and control characters as `_`."""
    cleaned = _CONTROL.sub("_", name).replace("=", "_").replace("|", "_")
    return "'" + cleaned.replace("'", "''") + "'"


def _levels(config: Config, check: Check) -> tuple[str, str, str, str]:
    """(warn, crit, min, max) of a check's perfdata, from the configuration's thresholds."""
    h = config.health
    by_kind: dict[str, tuple[object, object]] = {
        "backup": (h.backup_warn_age_s, h.backup_max_age_s),
        "replication": (h.replication_max_lag_s / 2, h.replication_max_lag_s),
        "verify": (config.verify.cycle_days * 86400 + GRACE_S, h.verify_max_age_s),
        "daemon": (None, 3 * h.interval_s + 60),
        "copies": (0, None), "jobs": (0, None), "alerts": (0, None),
    }
    if check.kind == "space":
        return f"{number(h.free_warn_percent)}:", f"{number(h.free_critical_percent)}:", "0", "100"
    if check.kind == "dicom":  # a DICOM sender's silent_after (warning only)
        return (number(check.threshold) if check.threshold is not None else ""), "", "0", ""
    if check.kind == "source":  # the least patient count before a backup refuses (warning only)
        return (f"{number(check.threshold)}:" if check.threshold is not None else ""), "", "0", ""
    warn, crit = by_kind.get(check.kind, (None, None))
    return ("" if warn is None else number(warn)), ("" if crit is None else number(crit)), "0", ""  # type: ignore[arg-type]


def perfdata(config: Config, check: Check) -> str:
    value = "U" if check.value is None else number(check.value) + check.unit
    return f"{label(check.name)}={';'.join((value, *_levels(config, check))).rstrip(';')}"


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).replace("|", "/")


def summary(report: HealthReport) -> str:
    wrong = sorted((c for c in report.checks if c.status is not Status.OK), key=lambda c: -RANK[c.status])
    if not wrong:
        return f"{len(report.checks)} checks OK"
    text = "; ".join(f"{c.name} {c.status.name}: {c.message}" for c in wrong)
    text = _one_line(text)
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX - 3] + "..."


def nagios_line(config: Config, report: HealthReport) -> str:
    """`RTVAULT <STATUS> - <summary> | <perfdata>`; the exit code is `report.status`."""
    data = " ".join(perfdata(config, check) for check in report.checks)
    return f"RTVAULT {report.status.name} - {summary(report)}" + (f" | {data}" if data else "")


def unknown_line(reason: str) -> str:
    """The line of a check that could not run at all (the configuration or the catalog refused): exit 3."""
    return f"RTVAULT UNKNOWN - {_one_line(reason)}"
