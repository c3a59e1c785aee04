"""The health checks read from the stores: the age of the last backup of each source (`backup:<source>`), the
replication lag of each copy (`replication:<target>`; CRITICAL at once when the copy cannot be reached), each
store's verification (`verify:<store>`) and the daemon's heartbeat (`daemon`). Each message says what was
measured, against which threshold, and when it is not OK the first thing to do."""

from __future__ import annotations

import socket

from rtvault.errors import RtvaultError
from rtvault.jobs.health_survey import GRACE_S, Survey, primary_stores
from rtvault.jobs.health_types import Check, Status, worst
from rtvault.store.backend import process_alive
from rtvault.store.locks import DAEMON_KEY, read_lease
from rtvault.utc import span

DAMAGE = ("missing", "corrupt")  # verification problems that mean a copy is lost, not merely a stray file


def _by_age(age: float, warn_s: float, crit_s: float) -> tuple[Status, float]:
    """The status of an age against its two levels, and the level it is measured against (the one crossed,
    or the warning level while OK)."""
    if age > crit_s:
        return Status.CRITICAL, crit_s
    return (Status.WARNING, warn_s) if age > warn_s else (Status.OK, warn_s)


def backup_check(survey: Survey, source: str) -> Check:
    """How long ago the newest snapshot of a source was taken, in any store that is not a copy."""
    name, health = f"backup:{source}", survey.config.health
    stores = primary_stores(survey.config)
    if not stores:
        return Check(name, Status.UNKNOWN, None, None, "no store configured: add a [stores.<name>] table")
    newest, unreadable = survey.newest(stores, source)
    if newest is None:
        if unreadable:
            return Check(name, Status.UNKNOWN, None, None,
                         f"cannot tell when {source} was last backed up: {'; '.join(unreadable)}")
        return Check(name, Status.CRITICAL, None, float(health.backup_max_age_s),
                     f"no backup of {source} in {', '.join(stores)} yet: run `rtvault backup` (and start "
                     "`rtvault daemon`, which runs the [schedule])", "s")
    time, snapshot_id, store = newest
    age = max(0.0, (survey.now - time).total_seconds())
    status, level = _by_age(age, health.backup_warn_age_s, health.backup_max_age_s)
    levels = f"WARNING beyond {span(health.backup_warn_age_s)}, CRITICAL beyond {health.backup_max_age}"
    said = f"last backup of {source} {span(age)} ago (snapshot {snapshot_id} in {store}; {levels})"
    if status is Status.CRITICAL:
        said += ("; backups have stopped: read the last backup's error (`rtvault runs --job backup`), then check "
                 "that `rtvault daemon` runs")
    elif status is Status.WARNING:
        said += "; backups are late: check that `rtvault daemon` runs and read `rtvault runs --job backup`"
    if unreadable:
        status = worst(status, Status.UNKNOWN)
        said += f"; and {'; '.join(unreadable)}"
    return Check(name, status, round(age), float(level), said, "s")


def replication_check(survey: Survey, target: str) -> Check:
    """The age of the newest snapshot of the source store that the copy lacks (0 when it lacks none)."""
    name, source = f"replication:{target}", survey.config.stores[target].copy_of
    max_s = survey.config.health.replication_max_lag_s
    pulled = source in survey.config.stores and survey.config.stores[source].read_only  # this host pulls it
    run = "`rtvault replicate --pull`" if pulled else f"`rtvault replicate --to {target}`"
    try:
        held = survey.snapshots(target)
    except RtvaultError as error:  # the copy is gone (a NAS unmounted, a server down): nothing reaches it any more
        return Check(name, Status.CRITICAL, None, None,
                     f"{target} cannot be reached, so no backup of {source} is copied there ({error}): mount it or "
                     f"bring it back, then run {run}")
    try:
        wanted = survey.snapshots(source)
    except RtvaultError as error:
        if pulled:  # the primary this host pulls from is out of its reach: the copy falls behind
            return Check(name, Status.WARNING, None, None,
                         f"cannot compare {target} with {source}, the primary it pulls from: {error}: check that "
                         f"{source} is reachable from this host (read access is enough), then run {run}")
        return Check(name, Status.UNKNOWN, None, None, f"cannot compare {target} with {source}: {error}")
    missing = [wanted[i] for i in set(wanted) - set(held)]
    lag = max(0.0, (survey.now - max(missing)).total_seconds()) if missing else 0.0
    status, level = _by_age(lag, max_s / 2, max_s)
    levels = f"WARNING beyond a lag of {span(max_s / 2)}, CRITICAL beyond {survey.config.health.replication_max_lag}"
    if not missing:
        return Check(name, status, 0, float(level), f"{target} holds every snapshot of {source} ({levels})", "s")
    said = f"{target} lacks {len(missing)} snapshot(s) of {source}, the newest taken {span(lag)} ago ({levels})"
    if status is not Status.OK:
        said += f": run {run} and read its error (is {target} mounted and writable?)"
    return Check(name, status, round(lag), float(level), said, "s")


def _problems(store: str, problems: list) -> tuple[Status, str]:
    damaged = [p for p in problems if p.kind in DAMAGE]
    if damaged:
        return Status.CRITICAL, (f"verification found {len(damaged)} missing or corrupt file(s) in {store} (first: "
                                 f"{damaged[0].key}): run `rtvault repair --store {store}` to heal them from a copy")
    if problems:
        return Status.WARNING, (f"verification found {len(problems)} unexpected file(s) in {store} (first: "
                                f"{problems[0].key}): look at them (`rtvault verify --store {store} --json`)")
    return Status.OK, ""


def verify_check(survey: Survey, store: str) -> Check:
    """How long ago the store's last verification cycle completed, and the problems it left open."""
    name, config = f"verify:{store}", survey.config
    try:
        state, opened = survey.verify_state(store), survey.store(store)
    except RtvaultError as error:
        return Check(name, Status.UNKNOWN, None, None, str(error))
    warn_s, crit_s = config.verify.cycle_days * 86400 + GRACE_S, config.health.verify_max_age_s
    levels = (f"WARNING beyond [verify] cycle_days {config.verify.cycle_days}d and a day, CRITICAL beyond "
              f"{config.health.verify_max_age}")
    found, problem = _problems(store, state.problems)
    age = survey.age_of(state.last_cycle_completed)
    if age is not None:
        status, level = _by_age(age, warn_s, crit_s)
        said = f"last complete verification cycle of {store} {span(age)} ago ({levels})"
    else:  # never completed: judged by the store's own age, its first cycle taking cycle_days
        created = survey.age_of(opened.info.get("created")) or 0.0
        status, level = _by_age(created, warn_s, crit_s)
        said = (f"{store} has never completed a verification cycle; "
                + (f"its first cycle is under way ({state.verified_this_cycle} files verified so far)"
                   if status is Status.OK else f"it was created {span(created)} ago ({levels})"))
    if status is not Status.OK:
        said += ": check that `rtvault verify` runs daily (the [schedule] verify job) and read its error"
    if problem:
        said = f"{problem}; {said}"
    return Check(name, worst(status, found), None if age is None else round(age), float(level), said, "s")


def _lease_of(survey: Survey) -> tuple[list[tuple[dict, str]], list[str]]:
    """The daemon's lease record in each store holding one, and a sentence for each store that cannot tell."""
    leases, unreadable = [], []
    for store in survey.config.stores:
        try:
            found = read_lease(survey.store(store).backend, DAEMON_KEY)
        except RtvaultError as error:
            unreadable.append(str(error))
            continue
        if found is not None:
            leases.append((found[0], store))
    return leases, unreadable


def _heartbeat(holder: dict) -> float | None:
    beat = holder.get("renewed", holder.get("written"))
    return float(beat) if isinstance(beat, int | float) else None


def daemon_check(survey: Survey) -> Check:
    """The heartbeat of `rtvault daemon`: how long ago it last renewed its lease in the stores."""
    health = survey.config.health
    if not health.daemon:
        return Check("daemon", Status.OK, None, None,
                     "rtvault daemon is not expected ([health] daemon = false: another scheduler runs the jobs)")
    limit = 3 * health.interval_s + 60
    start = "start it (`systemctl start rtvault-daemon`, or `rtvault daemon` in a terminal)"
    leases, unreadable = _lease_of(survey)
    if not leases:
        if unreadable and len(unreadable) == len(survey.config.stores):
            return Check("daemon", Status.UNKNOWN, None, float(limit),
                         f"cannot read the daemon's lease: {'; '.join(unreadable)}", "s")
        return Check("daemon", Status.CRITICAL, None, float(limit),
                     f"rtvault daemon is not running (no lease in any store): {start}", "s")
    holder, store = max(leases, key=lambda found: _heartbeat(found[0]) or 0.0)
    beat, now = _heartbeat(holder), survey.now.timestamp()
    age = max(0.0, now - beat) if beat is not None else None
    who = f"rtvault daemon (pid {holder.get('pid', '?')} on {holder.get('host', '?')})"
    expires = holder.get("expires")
    gone = (holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)
            and not process_alive(holder["pid"]))
    if age is None or age > limit or not isinstance(expires, int | float) or expires < now or gone:
        why = "its process is gone" if gone else f"its last heartbeat was {span(age)} ago" if age is not None \
            else "its lease is unreadable"
        return Check("daemon", Status.CRITICAL, None if age is None else round(age), float(limit),
                     f"{who} has stopped ({why}, in {store}; CRITICAL beyond {span(limit)}): {start}, and read "
                     "its log (`journalctl -u rtvault-daemon`)", "s")
    return Check("daemon", Status.OK, round(age), float(limit),
                 f"{who} renewed its lease {span(age)} ago in {store} (CRITICAL beyond {span(limit)})", "s")
