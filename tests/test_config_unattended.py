"""`[daemon]`, `[health]`, `[alerts]` and the `/metrics` keys of `[web]`: durations written 90s, 30m, 2h, 3d,
defaults consistent with the default schedule, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.config import write_config
from rtvault.config import load
from rtvault.config.unattended import seconds
from rtvault.errors import ConfigError


def _load(tmp_path: Path, **tables: object):
    return load(write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "s"},
                             **tables))


def _errors(tmp_path: Path, **tables: object) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, **tables)
    return str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200),
                                                (" 6h ", 21600)])
def test_durations_are_read_in_seconds(text: str, expected: int) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["", "6", "h", "0h", "1.5h", "2w", "-1d", "6 hours"])
def test_a_wrong_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="90s, 30m, 2h or 3d"):
        seconds(text)


def test_defaults_match_the_issue_and_the_default_schedule(tmp_path: Path) -> None:
    config = _load(tmp_path)
    assert config.health.interval_s == 60
    assert config.health.backup_max_age_s == 6 * 3600
    assert config.health.backup_warn_age_s == 3 * 3600  # half of the maximum unless set
    assert config.daemon.state_dir == tmp_path / "rtvault-state"  # relative to the file
    assert config.alerts.language == "fr" and config.alerts.repeat_hours == 24
    assert config.web.metrics_from == ("127.0.0.1", "::1")


def test_wrong_values_are_configuration_errors_naming_the_key(tmp_path: Path) -> None:
    text = _errors(tmp_path, health={"backup_max_age": "six hours", "interval": 60, "free_warn_percent": 150},
                   daemon={"job_timeout": "0s"}, alerts={"language": "de", "repeat_hours": "24"},
                   web={"metrics_from": ["loopback"]})
    for key in ("health.backup_max_age", "health.interval", "health.free_warn_percent", "daemon.job_timeout",
                "alerts.language", "alerts.repeat_hours", "web.metrics_from"):
        assert key in text


def test_thresholds_that_contradict_each_other_are_refused(tmp_path: Path) -> None:
    text = _errors(tmp_path, health={"backup_max_age": "2h", "backup_warn_age": "3h", "free_warn_percent": 5,
                                     "free_critical_percent": 10})
    assert "backup_warn_age must be shorter than backup_max_age" in text
    assert "free_critical_percent must not be above free_warn_percent" in text


def test_mail_alerts_need_a_sender_and_recipients(tmp_path: Path) -> None:
    text = _errors(tmp_path, alerts={"mail": {"host": "smtp.example.org", "username": "rtvault"}})
    assert "alerts.mail" in text and "sender: required" in text and "recipients: required" in text
    assert "username and password_file go together" in text
