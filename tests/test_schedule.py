"""`[schedule]`: what a value may say, the errors a wrong one gives (naming its key), and the next run of each
job that `rtvault schedule` shows (computed in the machine's zone; a job `after` another runs when it does)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kit.cli import rtvault
from kit.config import write_config
from rtvault.config import load
from rtvault.errors import ConfigError, ExitCode
from rtvault.jobs.schedule import plan

PARIS = ZoneInfo("Europe/Paris")


def _config(tmp_path: Path, **schedule: object) -> Path:
    return write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"},
                        **({"schedule": schedule} if schedule else {}))


def _next(tmp_path: Path, now: datetime, **schedule: object) -> dict[str, datetime]:
    return {p.job: p.next_run for p in plan(load(_config(tmp_path, **schedule)), now)}


def test_the_default_backs_up_hourly_in_working_hours_every_four_hours_otherwise(tmp_path: Path) -> None:
    monday = _next(tmp_path, datetime(2026, 12, 7, 10, 17, tzinfo=PARIS))
    assert monday["backup"] == datetime(2026, 12, 7, 11, 0, tzinfo=PARIS)
    assert monday["replicate"] == monday["sweep"] == monday["backup"]  # after each backup
    assert monday["verify"] == datetime(2026, 12, 8, 2, 30, tzinfo=PARIS)  # nightly
    evening = _next(tmp_path, datetime(2026, 12, 7, 19, 5, tzinfo=PARIS))
    assert evening["backup"] == datetime(2026, 12, 7, 20, 0, tzinfo=PARIS)  # 20:00 is one of every 4 hours
    saturday = _next(tmp_path, datetime(2026, 12, 12, 10, 17, tzinfo=PARIS))
    assert saturday["backup"] == datetime(2026, 12, 12, 12, 0, tzinfo=PARIS)


def test_shorthands_lists_and_after_chains(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, 10, 17, tzinfo=PARIS)
    found = _next(tmp_path, now, backup="hourly", verify=["daily 23:45", "daily  06:05"], catalog="after sweep",
                  sweep="after replicate", replicate="after backup", retention="*/20 * * * *")
    assert found["backup"] == datetime(2026, 12, 7, 11, 0, tzinfo=PARIS)
    assert found["catalog"] == found["sweep"] == found["replicate"] == found["backup"]
    assert found["verify"] == datetime(2026, 12, 7, 23, 45, tzinfo=PARIS)  # the earliest of the list
    assert found["retention"] == datetime(2026, 12, 7, 10, 20, tzinfo=PARIS)
    assert found["catalog_backup"] == datetime(2026, 12, 8, 4, 30, tzinfo=PARIS)  # daily, by default


@pytest.mark.parametrize(("schedule", "key", "said"), [
    ({"verify": "25 * * *"}, "schedule.verify", "is not a schedule"),
    ({"verify": "61 * * * *"}, "schedule.verify", "is not a schedule"),
    ({"verify": "daily 24:00"}, "schedule.verify", "is not a schedule"),
    ({"sweep": ["hourly", "after nothing"]}, "schedule.sweep", "names no job"),
    ({"catalog": []}, "schedule.catalog", "at least one time"),
    ({"retention": 3}, "schedule.retention", "a schedule or an array of schedules"),
    ({"backup": "after replicate", "replicate": "after backup"}, "schedule", "runs after itself"),
    ({"sweep": "after sweep"}, "schedule", "sweep runs after itself"),
    ({"nightly": "hourly"}, "schedule.nightly", "unknown"),
])
def test_a_wrong_schedule_is_a_configuration_error_naming_its_key(tmp_path: Path, schedule: dict, key: str,
                                                                   said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(_config(tmp_path, **schedule))
    assert any(p.startswith(f"{key}:") and said in p for p in raised.value.problems), raised.value.problems


def test_the_schedule_command_shows_the_next_run_of_every_job(tmp_path: Path) -> None:
    config = _config(tmp_path, retention="daily 03:30", verify=["daily 02:30", "0 13 * * 0"])
    before = datetime.now(UTC)
    jobs = json.loads(rtvault(config, "schedule", "--json").stdout)["jobs"]
    assert [j["job"] for j in jobs] == ["backup", "sweep", "replicate", "verify", "retention", "catalog",
                                        "catalog_backup", "drill"]
    assert all(j["next_run"].endswith("Z") and datetime.fromisoformat(j["next_run"]) > before for j in jobs)
    assert jobs[1]["after"] == ["backup"] and jobs[1]["next_run"] == jobs[0]["next_run"]
    assert jobs[3]["schedule"] == ["daily 02:30", "0 13 * * 0"]
    text = rtvault(config, "schedule").stdout
    assert "retention" in text and "(daily 03:30)" in text
    wrong = _config(tmp_path, verify="every night")
    assert "schedule.verify" in rtvault(wrong, "schedule", expect=ExitCode.CONFIG).stderr


def test_a_nightly_time_in_the_hour_skipped_by_daylight_saving_still_runs_that_night(tmp_path: Path) -> None:
    """Paris, 2027-03-28: clocks go from 02:00 to 03:00, so 02:30 does not exist that night: the nightly verify
    runs at 03:00 rather than not at all, and at 02:30 again the night after."""
    config = load(_config(tmp_path))
    night = {p.job: p.next_run for p in plan(config, datetime(2027, 3, 27, 12, 0, tzinfo=PARIS))}
    assert night["verify"] == datetime(2027, 3, 28, 3, 0, tzinfo=PARIS)
    after = {p.job: p.next_run for p in plan(config, night["verify"])}
    assert after["verify"] == datetime(2027, 3, 29, 2, 30, tzinfo=PARIS)


def test_a_copy_on_a_schedule_of_its_own(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db",
                          stores={"primary": tmp_path / "p", "nas": {"path": tmp_path / "n", "copy_of": "primary"},
                                  "offsite": {"path": tmp_path / "o", "copy_of": "primary"}},
                          schedule={"pairs": {"offsite": {"replicate": "daily 22:00"}}})
    planned = {p.job: p for p in plan(load(config), datetime(2026, 12, 7, 10, 17, tzinfo=PARIS))}
    assert planned["replicate:offsite"].next_run == datetime(2026, 12, 7, 22, 0, tzinfo=PARIS)
    assert planned["replicate"].next_run == planned["backup"].next_run  # the NAS, after each backup
    shown = json.loads(rtvault(config, "schedule", "--json").stdout)
    assert [job["job"] for job in shown["jobs"]][-1] == "replicate:offsite"


def test_a_pair_schedule_must_name_a_copy(tmp_path: Path) -> None:
    config = write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "p"},
                          schedule={"pairs": {"primary": {"replicate": "daily 22:00"}, "nas": {"replicate": "often"}}})
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert "schedule.pairs.primary: names no copy store (no store has copy_of)" in str(caught.value)
    assert "schedule.pairs.nas.replicate: 'often' is not a schedule" in str(caught.value)
