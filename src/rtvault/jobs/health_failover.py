"""The `failover` health check (`rtvault failover`): CRITICAL while the primary store is failed over and does not
answer (new backups are on one store only), WARNING once it answers again (`rtvault failback` is due); CRITICAL
too when a copy of the primary holds a failover record this host does not follow (another host failed over)."""

from __future__ import annotations

from rtvault.configured import failed_over
from rtvault.errors import RtvaultError
from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status
from rtvault.store.roles import read_failover


def _foreign_record(survey: Survey, primary: str) -> Check | None:
    """A copy of the primary that answers and holds a failover record: another host writes there."""
    for name, settings in survey.config.stores.items():
        if settings.copy_of != primary:
            continue
        try:
            record = read_failover(survey.store(name).backend)
        except (RtvaultError, ValueError):
            continue  # a copy that cannot be read has its own checks (replication, verify)
        if record is not None and record.primary == primary:
            return Check("failover", Status.CRITICAL, survey.age_of(record.since), None,
                         f"store {name} took over from store {primary} on host {record.host} since {record.since}, "
                         f"but this host still backs up to store {primary}: run `rtvault failover --to {name}` here "
                         f"too, or `rtvault failback` on host {record.host} once store {primary} is back", "s")
    return None


def failover_check(survey: Survey) -> Check:
    config = survey.config
    primary = next(iter(config.stores))
    record = failed_over(config)
    if record is None:
        return _foreign_record(survey, primary) or Check(
            "failover", Status.OK, 0, None, f"not failed over: backups go to the primary store {primary}")
    age = survey.age_of(record.since)
    told = f"failed over from store {record.primary} to store {record.active} since {record.since}"
    try:
        survey.store(record.primary)
    except RtvaultError as error:
        return Check("failover", Status.CRITICAL, age, None,
                     f"{told}: new backups are on store {record.active} alone and store {record.primary} does not "
                     f"answer ({error}): bring it back or replace it (`rtvault init`), then run `rtvault failback`",
                     "s")
    return Check("failover", Status.WARNING, age, None,
                 f"{told}; store {record.primary} answers again: run `rtvault failback` to copy back what was written "
                 "meanwhile and give it its role back", "s")
