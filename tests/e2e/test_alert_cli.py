"""`rtvault alert test` as the administrator types it after filling in [alerts]: a test message through every
channel (a real SMTP server with STARTTLS and a sign-in, a real webhook receiver), each channel said delivered
or why not, exit 3 when one failed or none is configured."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from kit.alerts import RECIPIENTS, SENDER, alerts_config, certificate, mail_settings, smtp_server, webhook
from kit.cli import rtvault

HOST = socket.gethostname()


def test_a_test_message_reaches_every_channel(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp, webhook() as hook:
        config = alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), hook=hook)
        done = rtvault(config, "alert", "test")
        assert done.stdout.splitlines() == [f"e-mail ({', '.join(RECIPIENTS)}): delivered",
                                            f"webhook (http://127.0.0.1:{hook.server.server_address[1]}): delivered"]
        assert "rtvault-secret-token" not in done.stdout + done.stderr  # a token in the URL is not shown
        [got] = smtp.received
        assert got.signed_in and got.rcpt_tos == list(RECIPIENTS) and got.message["From"] == SENDER
        assert got.message["Subject"] == f"[rtvault] TEST : message d'essai de {HOST}"
        assert "les alertes de rtvault vous parviennent par ce canal" in got.text
        [sent] = hook.delivered
        assert sent["event"] == "test" and sent["host"] == HOST and sent["checks"] == []
        assert not (tmp_path / "state").exists()  # a test goes through no outbox


def test_a_channel_that_fails_is_named_with_what_to_do_and_exits_3(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp, webhook(answers=(500,)) as hook:
        config = alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path), hook=hook, language="en")
        done = rtvault(config, "alert", "test", expect=3)
        origin = f"http://127.0.0.1:{hook.server.server_address[1]}"
        assert done.stdout.splitlines() == [f"e-mail ({', '.join(RECIPIENTS)}): delivered"]
        assert done.stderr.splitlines() == [
            f"webhook ({origin}): not delivered: the webhook {origin} answered HTTP 500: the receiver has a fault of "
            "its own: it is tried again later",
            "rtvault: error: the test message could not be delivered by webhook: fix what is said above, then run "
            "rtvault alert test again"]
        assert smtp.received[0].message["Subject"] == f"[rtvault] TEST: test message from {HOST}"


def test_json_says_each_channel_and_an_untrusted_server_gets_nothing(tmp_path: Path) -> None:
    stranger, _ = certificate(tmp_path / "stranger", "stranger")
    with smtp_server(tmp_path) as smtp:
        config = alerts_config(tmp_path, mail=mail_settings(smtp, tmp_path, ca_file=stranger))
        report = json.loads(rtvault(config, "alert", "test", "--json", expect=3).stdout)
        [channel] = report["channels"]
        assert channel["channel"] == "mail" and channel["delivered"] is False
        assert channel["destination"] == ", ".join(RECIPIENTS)
        assert f"the mail server 127.0.0.1:{smtp.port}: its certificate is not trusted" in channel["error"]
        assert smtp.received == []


def test_no_channel_configured_says_how_to_configure_one(tmp_path: Path) -> None:
    config = alerts_config(tmp_path)
    done = rtvault(config, "alert", "test", expect=3)
    assert done.stdout == ""
    assert done.stderr == (f"rtvault: error: {config}: no alert channel is configured: set [alerts.mail] host, "
                           "sender and recipients, or [alerts.webhook] url (docs/configuration.md)\n")
