"""Alerts: after each health evaluation (every `[health] interval`) the daemon hands the checks to `notify`,
which tells people, by e-mail and webhook, when something goes wrong and when it is right again.

A check that enters WARNING, CRITICAL or UNKNOWN (a check that cannot be evaluated is a problem too) is
announced; so is a change to another problem status, except CRITICAL -> WARNING (an improvement, told by the
next reminder); a problem still there is told again every `[alerts] repeat_hours`; a check OK again after a
message about it gets a recovery notice. The checks that changed in one evaluation go out as one message per
channel. Messages wait in the state's outbox (jobs/alert_state.py) until their channel's server takes them:
a failed delivery is retried after `[alerts] retry_seconds`, then twice as long each time, at most an hour
apart. `notify` never raises: whatever goes wrong is in its `AlertRun` and in `delivery_problems`, which the
`alerts` health check reports. `rtvault alert test` (`send_test`) sends a message through every channel now.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rtvault.config import Config
from rtvault.errors import ConfigError, ExitCode, Unavailable
from rtvault.jobs import alert_channels, alert_state
from rtvault.jobs.alert_channels import LABELS, DeliveryFailed, configured, deliver, destination
from rtvault.jobs.alert_state import AlertState, CheckState, Message, Outbox
from rtvault.jobs.alert_texts import Change, body, local_time, subject, trial_texts, worst
from rtvault.jobs.health_types import Check, Status
from rtvault.report import Line, Report, Verdict, err
from rtvault.utc import iso

MAX_RETRY_S = 3600


@dataclass(frozen=True)
class AlertRun:
    """What one evaluation did: the messages queued (their subjects), per channel the messages delivered and
    the error that stopped delivery, and the problems met on the way (state file, partial deliveries)."""

    queued: tuple[str, ...] = ()
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    transitions: tuple[dict[str, object], ...] = ()  # checks whose status changed: {check, status, previous, message}
    channels: tuple[str, ...] = ()  # the channels configured, which carry the messages

    def to_json(self) -> dict[str, object]:
        return {"queued": list(self.queued), "delivered": self.delivered, "failed": self.failed,
                "problems": list(self.problems), "transitions": list(self.transitions)}

    def record(self, now: datetime) -> dict[str, object] | None:
        """The run journal's alert record of this evaluation (docs/design.md, "Alerts"), None when no check
        changed status."""
        if not self.transitions:
            return None
        return {"kind": "alert", "time": iso(now.astimezone(UTC)), "changes": list(self.transitions),
                "channels": list(self.channels), "queued": list(self.queued)}


def _changed(before: CheckState | None, check: Check, now: datetime, repeat: timedelta) -> str | None:
    """What is worth telling about a check: new, worse, repeat, recovered, or nothing."""
    told = before.notified if before else None
    if check.status is Status.OK:
        return "recovered" if told not in (None, Status.OK) else None
    if told in (None, Status.OK):
        return "new"
    if check.status is not told and not (told is Status.CRITICAL and check.status is Status.WARNING):
        return "worse"
    if before is not None and (before.sent is None or now - before.sent >= repeat):
        return "repeat"
    return None


def evaluate(state: AlertState, checks: Sequence[Check], now: datetime, repeat_hours: int,
             telling: bool) -> tuple[AlertState, list[Change]]:
    """Each check's new state and the changes to tell; `telling`: a channel will carry them (else nothing is
    marked as told, so that a channel configured later still hears of a problem)."""
    states: dict[str, CheckState] = {}
    changes = []
    for check in checks:
        before = state.checks.get(check.name)
        since = before.since if before is not None and before.status is check.status else now
        current = CheckState(check.status, since, before.notified if before else None, before.sent if before else None)
        change = _changed(before, check, now, timedelta(hours=repeat_hours))
        if change is not None:
            changes.append(Change(check, since, change, before.status if before else None,
                                  before.since if before else None))
            if telling:
                current = replace(current, notified=check.status, sent=now)
        states[check.name] = current
    return replace(state, checks=states), changes


def transitions(before: AlertState, checks: Sequence[Check]) -> tuple[dict[str, object], ...]:
    """The checks whose status changed since the last evaluation (a check seen for the first time: from OK)."""
    found = []
    for check in checks:
        previous = before.checks.get(check.name)
        status = previous.status if previous is not None else Status.OK
        if check.status is not status:
            found.append({"check": check.name, "status": check.status.name,
                          "previous": previous.status.name if previous is not None else None,
                          "message": check.message})
    return tuple(found)


def compose(changes: Sequence[Change], checks: Sequence[Check], now: datetime, language: str,
            host: str) -> Message:
    """One message telling every change of an evaluation."""
    lead = worst(changes)
    return Message(now, "alert" if lead is not None else "recovery", lead.name if lead is not None else "OK",
                   subject(changes, language), body(changes, checks, now, language, host), language, host,
                   tuple(change.to_json() for change in changes))


def _backoff(retry_seconds: int, attempts: int) -> timedelta:
    return timedelta(seconds=min(retry_seconds * 2 ** min(attempts - 1, 20), MAX_RETRY_S))


def _send_waiting(config: Config, channel: str, box: Outbox, now: datetime,
                  timeout: float) -> tuple[Outbox, int, str | None, list[str]]:
    """Deliver a channel's messages, oldest first, until one fails: the outbox left, how many went, the error
    that stopped it, and partial deliveries."""
    sent, notes = 0, []
    for message in box.messages:
        try:
            note = deliver(config.alerts, channel, message, timeout)
        except Exception as error:  # DeliveryFailed; anything else is a bug, which must not lose the message
            reason = str(error) if isinstance(error, DeliveryFailed) else \
                f"unexpected {type(error).__name__}: {error} (a bug in rtvault: please report it)"
            attempts = box.attempts + 1
            left = replace(box, messages=box.messages[sent:], attempts=attempts, last_error=reason,
                           next_try=now + _backoff(config.alerts.retry_seconds, attempts))
            return left, sent, reason, notes
        sent += 1
        notes += [note] if note else []
    return Outbox(), sent, None, notes


def _deliver_due(config: Config, state: AlertState, now: datetime, timeout: float,
                 run: AlertRun) -> tuple[AlertState, AlertRun]:
    outbox = dict(state.outbox)
    delivered, failed, problems = dict(run.delivered), dict(run.failed), list(run.problems)
    for channel, box in state.outbox.items():
        if not box.messages or (box.next_try is not None and now < box.next_try):
            continue
        outbox[channel], sent, error, notes = _send_waiting(config, channel, box, now, timeout)
        if sent:
            delivered[channel] = sent
        if error:
            failed[channel] = error
        problems += notes
    return replace(state, outbox=outbox), replace(run, delivered=delivered, failed=failed, problems=tuple(problems))


def notify(config: Config, checks: Sequence[Check], now: datetime, *,
           timeout: float = alert_channels.TIMEOUT) -> AlertRun:
    """Tell people what changed in this health evaluation (`now`; a naive time is local), deliver what waits,
    and save the state. Never raises: what went wrong is in the result (and `delivery_problems`)."""
    path = alert_state.state_file(config.daemon.state_dir)
    try:
        now = now.astimezone(UTC)
        state, problems = alert_state.load(path, now)
        channels = configured(config.alerts)
        before = state
        state, changes = evaluate(state, checks, now, config.alerts.repeat_hours, bool(channels))
        run = AlertRun(problems=tuple(problems), transitions=transitions(before, checks), channels=tuple(channels))
        # the outbox of a channel no longer configured cannot be delivered: it goes
        state = replace(state, outbox={c: state.outbox.get(c, Outbox()) for c in channels})
        if changes and channels:
            message = compose(changes, checks, now, config.alerts.language, socket.gethostname())
            state = replace(state, outbox={c: box.adding(message) for c, box in state.outbox.items()})
            run = replace(run, queued=(message.subject,))
        state, run = _deliver_due(config, state, now, timeout, run)
        changed = state != before or alert_state.unsaved(path)
        if changed and (problem := alert_state.save(path, state)):
            run = replace(run, problems=(*run.problems, problem))
        return run
    except Exception as error:  # the daemon's evaluation must go on, whatever happened here
        return AlertRun(problems=(f"the alerts could not be processed: {type(error).__name__}: {error} "
                                  "(a bug in rtvault: please report it)",))


def delivery_problems(config: Config) -> list[str]:
    """What keeps alerts from reaching people, one sentence each: messages a configured channel has not
    delivered (how many, since when, the last error, the next try), and a state that cannot be read or saved."""
    state, problems = alert_state.peek(alert_state.state_file(config.daemon.state_dir))
    for channel in configured(config.alerts):
        box = state.outbox.get(channel)
        if box is None or not box.attempts or not box.messages:
            continue
        count = len(box.messages)
        next_try = f"; next try at {local_time(box.next_try)}" if box.next_try else ""
        dropped = f" ({box.dropped} older ones were dropped)" if box.dropped else ""
        problems.append(f"{count} alert message{'s' if count > 1 else ''} not delivered by {LABELS[channel]} since "
                        f"{local_time(box.messages[0].created)}{dropped}: {box.last_error}{next_try}")
    return problems


@dataclass(frozen=True)
class Delivery:
    channel: str
    destination: str
    error: str | None = None  # why it was not delivered
    note: str | None = None  # delivered, with this remark (recipients refused)

    def to_json(self) -> dict[str, object]:
        return {"channel": self.channel, "destination": self.destination, "delivered": self.error is None,
                "error": self.error, "note": self.note}


@dataclass(frozen=True)
class AlertTest(Report):
    """`rtvault alert test`: each channel delivered or why not; exit 3 when one failed (as for a server that
    does not answer: most often a wrong setting, or that server is down)."""

    deliveries: tuple[Delivery, ...]

    def to_json(self) -> dict[str, object]:
        return {"channels": [d.to_json() for d in self.deliveries]}

    def lines(self) -> list[Line]:
        lines = []
        for d in self.deliveries:
            where = f"{LABELS[d.channel]} ({d.destination})"
            lines.append(err(f"{where}: not delivered: {d.error}") if d.error else Line(f"{where}: delivered"))
            lines += [err(f"{where}: {d.note}")] if d.note else []
        return lines

    def verdict(self) -> Verdict:
        failed = [d for d in self.deliveries if d.error]
        if not failed:
            return Verdict()
        names = ", ".join(LABELS[d.channel] for d in failed)
        return Verdict(ExitCode.CONFIG, Unavailable(f"the test message could not be delivered by {names}: fix "
                                                    "what is said above, then run rtvault alert test again"))


def send_test(config: Config, now: datetime, *, timeout: float = alert_channels.TIMEOUT) -> AlertTest:
    """Send a test message through every configured channel now (not through the outbox: nothing is retried).
    ConfigError when no channel is configured."""
    channels = configured(config.alerts)
    if not channels:
        raise ConfigError(str(config.file), ["no alert channel is configured: set [alerts.mail] host, sender and "
                                             "recipients, or [alerts.webhook] url (docs/configuration.md)"])
    host, language, now = socket.gethostname(), config.alerts.language, now.astimezone(UTC)
    title, text = trial_texts(now, language, host)
    message = Message(now, "test", "OK", title, text, language, host)
    deliveries = []
    for channel in channels:
        try:
            note = deliver(config.alerts, channel, message, timeout)
            deliveries.append(Delivery(channel, destination(config.alerts, channel), note=note))
        except DeliveryFailed as error:
            deliveries.append(Delivery(channel, destination(config.alerts, channel), error=str(error)))
    return AlertTest(tuple(deliveries))
