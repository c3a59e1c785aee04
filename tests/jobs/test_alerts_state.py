"""The alerts' own state (`alerts.json` in [daemon] state_dir) when the disk lets it down: a damaged file is set
aside and a fresh state begun, a folder rtvault may not write keeps the state in memory (no alert repeated
every minute), and neither ever stops the daemon's evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit.alerts import alerts_config, backup_late, webhook
from kit.faults import WITHOUT_ROOT_READ, can_drop_read_capabilities
from rtvault.config import load
from rtvault.jobs.alerts import delivery_problems, notify

T0 = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("damage", ["{\"version\": 1, \"checks\": {\"backup:x\"", "\x00\xff garbage",
                                    '{"version": 1, "checks": [], "outbox": {}}',
                                    '{"version": 1, "checks": {"backup:x": {"status": "BAD", "since": "x"}}, '
                                    '"outbox": {}}', '{"version": 99, "checks": {}, "outbox": {}}', "[]"])
def test_a_damaged_state_is_set_aside_and_a_fresh_one_begun(tmp_path: Path, damage: str) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        state = tmp_path / "state" / "alerts.json"
        state.parent.mkdir()
        state.write_text(damage, encoding="utf-8")
        [told] = delivery_problems(config)
        assert told.startswith(f"the alerts' state {state} is damaged (")
        assert state.read_text(encoding="utf-8") == damage  # health only reads

        run = notify(config, [backup_late(7)], T0)
        [problem] = run.problems
        assert problem.startswith(f"the alerts' state {state} was damaged (")
        assert problem.endswith("it was set aside as alerts.json.damaged-2026-01-05T170000Z and a fresh one begun: "
                                "an alert already sent may be sent once more")
        assert (state.parent / "alerts.json.damaged-2026-01-05T170000Z").read_text(encoding="utf-8") == damage
        assert json.loads(state.read_text(encoding="utf-8"))["checks"]["backup:pinnacle"]["status"] == "CRITICAL"
        assert len(hook.delivered) == 1 and delivery_problems(config) == []


def test_a_state_that_cannot_be_written_is_kept_in_memory_and_alerts_are_not_repeated(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        (tmp_path / "state" / "alerts.json").mkdir(parents=True)  # a folder where the file should be
        first = notify(config, [backup_late(7)], T0)
        assert first.delivered == {"webhook": 1}
        assert any("cannot read the alerts' state" in p for p in first.problems)
        assert any(p.startswith(f"the alerts' state cannot be saved in {tmp_path / 'state' / 'alerts.json'} (kept "
                                "in memory meanwhile") for p in first.problems)
        for minutes in range(1, 4):
            notify(config, [backup_late(7)], T0 + timedelta(minutes=minutes))
        assert len(hook.delivered) == 1
        assert any("cannot be saved" in p for p in delivery_problems(config))

        (tmp_path / "state" / "alerts.json").rmdir()  # writable again: the state in memory is written
        assert notify(config, [backup_late(7)], T0 + timedelta(minutes=5)).problems == ()
        assert json.loads((tmp_path / "state" / "alerts.json").read_text(encoding="utf-8"))["checks"]
        assert delivery_problems(config) == []


_NOTIFY_TWICE = """
import json, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from kit.alerts import backup_late
from rtvault.config import load
from rtvault.jobs.alerts import delivery_problems, notify
config = load(Path(sys.argv[1]))
now = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
runs = [notify(config, [backup_late(7)], now + timedelta(minutes=m)).to_json() for m in (0, 1, 2)]
print(json.dumps({"runs": runs, "health": delivery_problems(config)}))
"""


def test_a_state_folder_rtvault_may_not_write_never_stops_the_daemon(tmp_path: Path) -> None:
    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    with webhook() as hook:
        config = alerts_config(tmp_path, hook=hook)
        (tmp_path / "state").mkdir(mode=0o500)  # as an administrator may leave it
        via = WITHOUT_ROOT_READ if os.geteuid() == 0 else []
        done = subprocess.run([*via, sys.executable, "-c", _NOTIFY_TWICE, str(config)], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        runs = result["runs"]
        assert runs[0]["delivered"] == {"webhook": 1} and [r["queued"] for r in runs[1:]] == [[], []]
        assert len(hook.delivered) == 1
        for run in runs:
            [problem] = run["problems"]
            assert problem.endswith("permission denied: give the user running rtvault access to it, then run again")
        assert result["health"][0].startswith("the alerts' state cannot be saved in ")
        assert not (tmp_path / "state" / "alerts.json").exists()
