"""Alerts as the people on call receive them: a real SMTP server on loopback (STARTTLS with a certificate of
the test's own, a sign-in) and a real webhook receiver. When a message goes (a problem begins, worsens,
lasts `repeat_hours`, ends), what it says (French by default, English when asked), and that the checks that
changed together make one message per channel."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.alerts import RECIPIENTS, SENDER, alerts_config, backup_late, mail_settings, ok, smtp_server, webhook
from rtvault.config import load
from rtvault.jobs.alerts import notify
from rtvault.jobs.health import Check, Status

T0 = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
HOST = socket.gethostname()
SPACE_LOW = Check("space:primary", Status.WARNING, 12.5, 15, "12.5 % of primary's disk is free (warning below 15 %)",
                  "%")
DAEMON_SILENT = Check("daemon", Status.CRITICAL, 900, 300, "the daemon's last heartbeat is 15 min old", "s")
VERIFY_UNKNOWN = Check("verify:primary", Status.UNKNOWN, None, None, "verify/state.json of primary cannot be read",
                       "s")


def local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def test_a_backup_turning_critical_sends_one_french_mail_saying_what_is_wrong_since_when_and_what_to_do(
        tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp, webhook() as hook:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), hook=hook))
        quiet = notify(config, [ok("backup:pinnacle"), ok("daemon")], T0)
        assert quiet.queued == () and smtp.received == [] and hook.requests == []
        run = notify(config, [backup_late(7), ok("daemon")], T0 + timedelta(minutes=1))
        assert run.delivered == {"mail": 1, "webhook": 1} and run.failed == {} and run.problems == ()

        [got] = smtp.received
        assert got.signed_in and got.mail_from == SENDER and got.rcpt_tos == list(RECIPIENTS)
        mail = got.message
        assert mail["From"] == SENDER and mail["To"] == ", ".join(RECIPIENTS)
        assert mail["Subject"] == "[rtvault] CRITIQUE : sauvegarde de pinnacle en retard (dernière il y a 7 h)"
        assert mail["Auto-Submitted"] == "auto-generated"
        text = got.text
        assert f"rtvault sur {HOST}" in text
        assert "Détail technique (en anglais) : the last successful backup of pinnacle is 7 h old (limit 6 h)" in text
        assert f"Depuis : {local(T0 + timedelta(minutes=1))}" in text
        assert "Valeur : 7 h (seuil 6 h)" in text
        assert "À faire d'abord : Lancez `rtvault runs --job backup`" in text
        assert "Toutes les autres vérifications sont OK." in text

        [(status, sent)] = hook.requests
        assert status == 200
        assert sent["event"] == "alert" and sent["status"] == "CRITICAL" and sent["host"] == HOST
        assert sent["language"] == "fr" and sent["text"] == text  # the same words as the mail
        [check] = sent["checks"]
        assert check["name"] == "backup:pinnacle" and check["status"] == "CRITICAL" and check["value"] == 25200
        assert check["threshold"] == 21600 and check["change"] == "new" and check["since"] == "2026-01-05T17:01:00Z"


def test_a_problem_that_lasts_is_told_again_after_repeat_hours_and_not_before(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook, repeat_hours=6))
        for minutes in (0, 1, 60, 6 * 60 - 1):
            notify(config, [backup_late(7 + minutes / 60)], T0 + timedelta(minutes=minutes))
        assert len(hook.delivered) == 1
        notify(config, [backup_late(13)], T0 + timedelta(hours=6))
        assert len(hook.delivered) == 2
        reminder = hook.delivered[1]
        assert reminder["subject"] == ("[rtvault] CRITIQUE (rappel) : sauvegarde de pinnacle en retard (dernière il y "
                                       "a 13 h)")
        assert reminder["checks"][0]["change"] == "repeat"
        assert reminder["checks"][0]["since"] == "2026-01-05T17:00:00Z"  # since the problem began, not the reminder
        notify(config, [backup_late(14)], T0 + timedelta(hours=7))
        assert len(hook.delivered) == 2


def test_a_check_ok_again_gets_one_recovery_notice(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path)))
        notify(config, [backup_late(7)], T0)
        notify(config, [ok("backup:pinnacle")], T0 + timedelta(hours=2))
        notify(config, [ok("backup:pinnacle")], T0 + timedelta(hours=3))
        assert len(smtp.received) == 2
        recovery = smtp.received[1]
        assert recovery.message["Subject"] == "[rtvault] RÉTABLI : sauvegarde de pinnacle"
        assert f"De nouveau OK ; était CRITIQUE depuis {local(T0)}" in recovery.text


def test_a_check_never_alerted_sends_nothing_when_ok(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        for hour in range(3):
            notify(config, [ok("backup:pinnacle"), ok("space:primary")], T0 + timedelta(hours=hour))
        assert hook.requests == []


def test_warning_then_critical_is_told_again_but_critical_easing_to_warning_waits_for_the_reminder(
        tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook, repeat_hours=24))
        notify(config, [backup_late(4, Status.WARNING)], T0)
        notify(config, [backup_late(7)], T0 + timedelta(hours=3))
        notify(config, [backup_late(5, Status.WARNING)], T0 + timedelta(hours=4))
        notify(config, [backup_late(7)], T0 + timedelta(hours=5))
        assert [d["status"] for d in hook.delivered] == ["WARNING", "CRITICAL"]
        assert hook.delivered[0]["subject"].startswith("[rtvault] AVERTISSEMENT : sauvegarde de pinnacle")
        assert hook.delivered[1]["checks"][0]["change"] == "worse"


def test_checks_that_change_together_make_one_message_per_channel(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp, webhook() as hook:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), hook=hook))
        notify(config, [ok("backup:pinnacle"), SPACE_LOW, ok("daemon"), ok("verify:primary")], T0)
        assert len(smtp.received) == 1  # the space warning
        checks = [backup_late(7), SPACE_LOW, DAEMON_SILENT, VERIFY_UNKNOWN]
        run = notify(config, checks, T0 + timedelta(minutes=1))
        assert run.delivered == {"mail": 1, "webhook": 1}
        assert len(smtp.received) == 2 and len(hook.delivered) == 2
        got = smtp.received[1]
        assert got.message["Subject"].startswith("[rtvault] CRITIQUE : ")
        assert got.message["Subject"].endswith(" et 2 autres")
        text = got.text
        for paragraph in ("CRITIQUE : sauvegarde de pinnacle", "CRITIQUE : démon rtvault muet depuis 15 min",
                          "INCONNU : vérification de primary"):
            assert paragraph in text
        assert "Vérifiez que `rtvault daemon` tourne" in text
        others = text.split("Autres vérifications qui ne sont pas OK :")[1]
        assert "AVERTISSEMENT : espace disque de primary : 12,5 % libres" in others  # told already, not changed
        names = {c["name"] for c in hook.delivered[1]["checks"]}
        assert names == {"backup:pinnacle", "daemon", "verify:primary"}


def test_a_check_that_cannot_be_evaluated_is_an_alert_that_says_so(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        notify(config, [VERIFY_UNKNOWN], T0)
        [sent] = hook.delivered
        assert sent["subject"] == "[rtvault] INCONNU : vérification de primary"
        assert "n'a pas pu être évaluée : c'est un problème en soi" in sent["text"]


def test_messages_in_english_when_configured(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), language="en"))
        notify(config, [backup_late(7), SPACE_LOW], T0)
        notify(config, [ok("backup:pinnacle"), SPACE_LOW], T0 + timedelta(hours=1))
        first, recovery = smtp.received
        assert first.message["Subject"] == ("[rtvault] CRITICAL: backup of pinnacle overdue (last one 7 h ago) "
                                            "and 1 more")
        assert "First thing to do: Run `rtvault runs --job backup`" in first.text
        assert "WARNING: disk space of primary: 12.5 % free" in first.text
        assert recovery.message["Subject"] == "[rtvault] RECOVERED: backup of pinnacle"
        assert "Other checks that are not OK:" in recovery.text


def test_without_a_channel_nothing_is_told_and_a_channel_added_later_hears_of_the_problem(tmp_path: Path) -> None:
    config = load(alerts_config(tmp_path))
    assert notify(config, [backup_late(7)], T0).queued == ()
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        notify(config, [backup_late(8)], T0 + timedelta(hours=1))
        [sent] = hook.delivered
        assert sent["checks"][0]["since"] == "2026-01-05T17:00:00Z"


def test_control_characters_in_a_name_never_reach_the_headers(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        config = load(alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path)))
        notify(config, [backup_late(7, source="pin\r\nBcc: intrus@exemple.org\x1b[31m")], T0)
        [got] = smtp.received
        assert got.rcpt_tos == list(RECIPIENTS) and got.message["Bcc"] is None
        assert got.message["Subject"] == ("[rtvault] CRITIQUE : sauvegarde de pin\\x0d\\x0aBcc: intrus@exemple.org"
                                          "\\x1b[31m en retard (dernière il y a 7 h)")
        assert "\x1b" not in got.text


@pytest.mark.parametrize("answers", [(), (500,)])
def test_the_state_file_is_private_and_says_what_was_told(tmp_path: Path, answers: tuple[int, ...]) -> None:
    with webhook(answers) as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        notify(config, [backup_late(7)], T0)
    state_dir = tmp_path / "state"
    assert state_dir.stat().st_mode & 0o777 == 0o700
    assert (state_dir / "alerts.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in state_dir.iterdir()] == ["alerts.json"]  # no temporary file left
    state = json.loads((state_dir / "alerts.json").read_text(encoding="utf-8"))
    assert state["checks"]["backup:pinnacle"] == {"status": "CRITICAL", "since": "2026-01-05T17:00:00Z",
                                                  "notified": "CRITICAL", "sent": "2026-01-05T17:00:00Z"}
    box = state["outbox"]["webhook"]
    if answers:
        assert box["attempts"] == 1 and box["next_try"] == "2026-01-05T17:01:00Z"
        assert "HTTP 500" in box["last_error"] and len(box["messages"]) == 1
    else:
        assert box["messages"] == [] and box["attempts"] == 0



def test_a_failover_is_told_in_french_and_english_with_the_way_back(tmp_path: Path) -> None:
    failed_over = Check("failover", Status.CRITICAL, 3 * 3600, None, "failed over from store primary to store copy "
                        "since 2026-01-05T14:00:00Z: new backups are on store copy alone", "s")
    for language, subject, todo in (
            ("fr", "[rtvault] CRITIQUE : bascule sur le stockage de secours depuis 3 h",
             "À faire d'abord : Les sauvegardes vont sur la copie"),
            ("en", "[rtvault] CRITICAL: failover to the standby store for 3 h",
             "First thing to do: Backups go to the copy")):
        with smtp_server(tmp_path / language) as smtp:
            config = load(alerts_config(tmp_path / language, mail=mail_settings(smtp, tmp_path / language),
                                        language=language))
            notify(config, [failed_over], T0)
            [got] = smtp.received
            assert got.message["Subject"] == subject
            assert todo in got.text and "`rtvault failback`" in got.text and "store copy alone" in got.text
