"""`rtvault alert test`: a test message through every alert channel of `[alerts]`, now."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.alerts import AlertTest, send_test


@click.group("alert", epilog="""\b
Examples:
  rtvault alert test
  rtvault alert test --json
""")
def alert() -> None:
    """Alerts by e-mail and webhook ([alerts] in the configuration; the daemon sends them)."""


@alert.command("test", epilog="""\b
Examples:
  rtvault alert test
  rtvault alert test --json | jq '.channels[] | select(.delivered | not)'
\b
Each channel configured in [alerts.mail] and [alerts.webhook] gets one test message, at once (nothing is
retried). Exit codes: 0 every channel delivered; 3 no channel is configured, or one could not deliver (the
line of that channel says why and what to do).
""")
@reported
@click.pass_obj
def test_command(app: AppContext, as_json: bool) -> AlertTest:
    """Send a test message by e-mail and webhook now, and say for each whether it was delivered."""
    return send_test(app.load_config(), datetime.now(UTC))
