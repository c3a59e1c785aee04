"""Delivering alerts when servers fail, as they do in a hospital: a webhook answering 500, a mail server down
for a while, a receiver that hangs; retried with a doubling wait (at most an hour), delivered once, and
reported meanwhile. A server that cannot be trusted or refuses the sign-in gets nothing, and the reason is
one sentence saying what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.alerts import (
    RECIPIENTS,
    alerts_config,
    backup_late,
    certificate,
    mail_settings,
    ok,
    password_file,
    smtp_server,
    webhook,
)
from rtvault.config import load
from rtvault.jobs.alert_state import peek, state_file
from rtvault.jobs.alerts import delivery_problems, notify, send_test

T0 = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_webhook_answering_500_is_retried_and_the_message_delivered_once(tmp_path: Path) -> None:
    with webhook(answers=(500,)) as hook:
        config = load(alerts_config(tmp_path, hook=hook, retry_seconds=60))
        run = notify(config, [backup_late(7)], T0)
        assert run.delivered == {} and "answered HTTP 500" in run.failed["webhook"]
        [problem] = delivery_problems(config)
        assert problem.startswith("1 alert message not delivered by webhook since ")
        assert "answered HTTP 500" in problem and "next try at" in problem

        assert notify(config, [backup_late(7)], at(59)).failed == {}  # not before retry_seconds
        assert len(hook.requests) == 1
        assert notify(config, [backup_late(7)], at(60)).delivered == {"webhook": 1}
        for later in (61, 3600, 7200):
            notify(config, [backup_late(7)], at(later))
        assert [status for status, _ in hook.requests] == [500, 200]
        assert hook.requests[0][1] == hook.requests[1][1]  # the same message, sent again
        assert delivery_problems(config) == []


def test_a_mail_server_down_is_retried_with_a_doubling_wait_and_gets_each_message_once_when_back(
        tmp_path: Path) -> None:
    with smtp_server(tmp_path, up=False) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), retry_seconds=60))
        run = notify(config, [backup_late(7), ok("daemon")], T0)
        assert "the connection was refused: check [alerts.mail] host and port" in run.failed["mail"]
        assert notify(config, [backup_late(7), ok("daemon")], at(59)).failed == {}
        assert "refused" in notify(config, [backup_late(7), ok("daemon")], at(60)).failed["mail"]
        late = [backup_late(7), backup_late(7, source="dosimetrie")]  # another problem meanwhile: a second message
        assert notify(config, late, at(100)).queued != ()  # queued, not tried: the wait is now 120 s
        assert notify(config, late, at(179)).failed == {}
        assert "2 alert messages not delivered by e-mail" in delivery_problems(config)[0]
        smtp.start()
        assert notify(config, late, at(180)).delivered == {"mail": 2}
        notify(config, late, at(400))
        assert [m.message["Subject"] for m in smtp.received] == [
            "[rtvault] CRITIQUE : sauvegarde de pinnacle en retard (dernière il y a 7 h)",
            "[rtvault] CRITIQUE : sauvegarde de dosimetrie en retard (dernière il y a 7 h)"]
        assert delivery_problems(config) == []


def test_the_wait_between_tries_doubles_up_to_an_hour(tmp_path: Path) -> None:
    with webhook(answers=(503,) * 8) as hook:
        config = load(alerts_config(tmp_path, hook=hook, retry_seconds=600))
        now, waits = T0, []
        for _ in range(6):
            notify(config, [backup_late(7)], now)
            next_try = peek(state_file(config.daemon.state_dir))[0].outbox["webhook"].next_try
            assert next_try is not None
            waits.append((next_try - now).total_seconds())
            now = next_try
        assert waits == [600, 1200, 2400, 3600, 3600, 3600]
        assert len(hook.requests) == 6


def test_a_webhook_that_does_not_answer_in_time_is_retried(tmp_path: Path) -> None:
    with webhook(delay=1.0) as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        run = notify(config, [backup_late(7)], T0, timeout=0.3)
        assert "no answer within 0.3 s" in run.failed["webhook"]
        hook.delay = 0
        assert notify(config, [backup_late(7)], at(60), timeout=0.3).delivered == {"webhook": 1}


def test_a_server_certificate_not_trusted_gets_nothing_and_says_how_to_trust_it(tmp_path: Path) -> None:
    other_authority, _ = certificate(tmp_path / "other", "other")
    with smtp_server(tmp_path) as smtp:
        for ca_file in (other_authority, None):  # another authority, then the system's
            config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path, ca_file=ca_file)))
            [delivery] = send_test(config, T0).deliveries
            assert delivery.error is not None
            assert delivery.error.startswith(f"the mail server 127.0.0.1:{smtp.port}: its certificate is not trusted (")
            assert delivery.error.endswith("give the authority that signed it in [alerts.mail] ca_file, or fix its "
                                           "certificate")
        assert smtp.received == []


def test_a_mail_server_without_starttls_is_refused(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=False) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path)))
        [delivery] = send_test(config, T0).deliveries
        assert delivery.error == (f"the mail server 127.0.0.1:{smtp.port} does not offer STARTTLS: rtvault will not "
                                  "send alerts in clear text; enable STARTTLS there, or set starttls = false for a "
                                  "relay on this machine")
        assert smtp.received == []


def test_the_password_is_never_sent_in_clear_text(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=False) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path, starttls=False)))
        [delivery] = send_test(config, T0).deliveries
        assert delivery.error is not None and "will not send the SMTP password in clear text" in delivery.error


def test_a_server_offering_only_the_login_mechanism_gets_the_accented_password(tmp_path: Path) -> None:
    with smtp_server(tmp_path, without=("PLAIN",)) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path)))
        assert send_test(config, T0).deliveries[0].error is None
        [got] = smtp.received
        assert got.signed_in and got.message["Subject"].startswith("[rtvault] TEST : message d'essai de ")


def test_a_wrong_password_is_a_refused_sign_in(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        wrong = password_file(tmp_path, "pas le bon", name="wrong-password")
        config = load(alerts_config(tmp_path, mail={**mail_settings(smtp, tmp_path), "password_file": wrong}))
        [delivery] = send_test(config, T0).deliveries
        assert delivery.error is not None
        assert delivery.error.startswith(f"the mail server 127.0.0.1:{smtp.port}: it refused the sign-in of "
                                         "'rtvault-alertes' (535")
        assert delivery.error.endswith("check [alerts.mail] username and the password in password_file")
        assert smtp.received == []


def test_a_password_file_others_can_read_is_not_used(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        settings = mail_settings(smtp, tmp_path)
        Path(settings["password_file"]).chmod(0o644)  # type: ignore[arg-type]
        [delivery] = send_test(load(alerts_config(tmp_path, mail=settings)), T0).deliveries
        assert delivery.error == (f"[alerts.mail] password_file: {settings['password_file']} is readable by group "
                                  f"or others: run chmod 600 {settings['password_file']}")


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        missing = tmp_path / "no-such-ca.pem"
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path, ca_file=missing)))
        [delivery] = send_test(config, T0).deliveries
        assert delivery.error is not None
        assert delivery.error.startswith(f"[alerts.mail] ca_file: cannot read certificate authorities from {missing}")


def test_recipients_refused_while_others_get_the_message_are_said_and_not_retried(tmp_path: Path) -> None:
    with smtp_server(tmp_path, refuse=(RECIPIENTS[1],)) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path)))
        run = notify(config, [backup_late(7)], T0)
        assert run.delivered == {"mail": 1}
        [problem] = run.problems
        assert problem == (f"the mail server 127.0.0.1:{smtp.port} refused some recipients, the others got the "
                           f"message: {RECIPIENTS[1]}")
        notify(config, [backup_late(7)], at(3600))
        assert [m.rcpt_tos for m in smtp.received] == [[RECIPIENTS[0]]]


def test_while_a_channel_fails_at_most_100_messages_wait_and_the_dropped_ones_are_counted(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook, retry_seconds=3600))
    # the receiver is gone: a check flapping every minute queues a message each time (alert, recovery ...)
    for minute in range(102):
        notify(config, [backup_late(7) if minute % 2 == 0 else ok("backup:pinnacle")], at(60 * minute))
    waiting = peek(state_file(config.daemon.state_dir))[0].outbox["webhook"]
    assert len(waiting.messages) == 100 and waiting.dropped == 2
    assert waiting.messages[0].created == at(120)  # the oldest two went
    [problem] = delivery_problems(config)
    assert problem.startswith("100 alert messages not delivered by webhook since ")
    assert "(2 older ones were dropped): the webhook http://127.0.0.1:" in problem
