"""The `drill` health check: the last restore drill (`rtvault drill`, from the run journal) against the continuity
targets ([continuity]): WARNING when it is older than drill_every_days or a store could not be drilled, CRITICAL
when it failed or a measured or extrapolated time exceeded its recovery time objective."""

from __future__ import annotations

from rtvault.catalog.runs import runs
from rtvault.errors import RtvaultError
from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status

DAY_S = 86400.0


def _drills(record: dict[str, object]) -> list[dict]:
    summary = record.get("summary")
    drills = summary.get("drills") if isinstance(summary, dict) else None
    return [d for d in drills if isinstance(d, dict)] if isinstance(drills, list) else []


def minutes(seconds: object) -> str:
    """A duration as the drills say it: seconds under a minute, else minutes."""
    if not isinstance(seconds, int | float):
        return "?"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _never_drilled(survey: Survey, limit: float) -> Check:
    """No drill yet: WARNING once the oldest backup is older than drill_every_days (a new site has that long)."""
    oldest = None
    for name in survey.config.stores:
        try:
            times = survey.snapshots(name).values()
        except RtvaultError:
            continue
        oldest = min([*times, *([oldest] if oldest else [])], default=oldest)
    age = (survey.now - oldest).total_seconds() if oldest else 0.0
    text = "no restore drill recorded yet: run `rtvault drill` (the daemon runs it on its [schedule] drill)"
    if age > limit:
        return Check("drill", Status.WARNING, None, limit, f"{text}; the first backup is {age / DAY_S:.0f} days old",
                     "s")
    return Check("drill", Status.OK, None, limit, f"{text}; due within {survey.config.continuity.drill_every_days} "
                 "days of the first backup", "s")


def drill_check(survey: Survey) -> Check:
    continuity = survey.config.continuity
    limit = continuity.drill_every_days * DAY_S
    try:
        last = runs(survey.catalog(), job="drill", limit=1)
    except RtvaultError as error:
        return Check("drill", Status.UNKNOWN, None, limit, f"cannot read the run journal: {error}")
    if not last:
        return _never_drilled(survey, limit)
    started, result, error, record = last[0].started, last[0].result, last[0].error, last[0].record
    age = survey.age_of(started) or 0.0
    drills = _drills(record)
    when = f"the last restore drill ({started})"
    slow = [d for d in drills if d.get("within_rto") is False]
    if result == "failed" or any(d.get("result") == "failed" for d in drills):
        cause = error or "see `rtvault runs --job drill`"
        return Check("drill", Status.CRITICAL, age, limit, f"{when} failed: {cause}: run `rtvault verify --all` then "
                     "`rtvault repair` on that store, and drill again", "s")
    if slow:
        d = slow[0]
        return Check("drill", Status.CRITICAL, age, limit,
                     f"{when} missed a recovery time objective on store {d.get('store')}: {d.get('kind')} restore "
                     f"{minutes(d.get('seconds'))}, full restore estimated {minutes(d.get('full_estimate_s'))} "
                     f"(targets {continuity.rto_patient_minutes} and {continuity.rto_full_minutes} min): find what is "
                     "slow (the store's disk or network) or revise [continuity] with the site", "s")
    if result == "unavailable" or any(d.get("result") == "unavailable" for d in drills):
        stores = sorted({str(d.get("store")) for d in drills if d.get("result") == "unavailable"})
        names = ", ".join(stores) or "?"
        return Check("drill", Status.WARNING, age, limit, f"{when} could not reach store(s) {names}: {error}; mount "
                     "or reach them and run `rtvault drill`", "s")
    if age > limit:
        return Check("drill", Status.WARNING, age, limit, f"{when} is {age / DAY_S:.1f} days old (limit "
                     f"{continuity.drill_every_days} days): run `rtvault drill`", "s")
    patient = next((d for d in drills if d.get("kind") == "patient"), {})
    return Check("drill", Status.OK, age, limit,
                 f"{when} succeeded: a patient back in {patient.get('seconds', '?')} s (target "
                 f"{continuity.rto_patient_minutes} min), the full restore estimated "
                 f"{minutes(patient.get('full_estimate_s'))} (target {continuity.rto_full_minutes} min)", "s")
