"""A JSON file nested deeper than Python's parser goes (`[[[[...]]]]`, 100,000 levels: written by a hostile
hand, never by rtvault) is a damaged file like any other, never a RecursionError that stops the command: the
writer lock, the verification state, the alerts' state, a manifest or journal segment (store/integrity.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kit.alerts import alerts_config, webhook
from rtvault.config import load
from rtvault.copies.verify import STATE_KEY, load_state
from rtvault.jobs.alerts import delivery_problems
from rtvault.store import Store, integrity
from rtvault.store.locks import LOCK_KEY, UNREADABLE_GRACE_S, WriterLock

DEEP = "[" * 100_000 + "]" * 100_000


def test_integrity_parse_calls_it_no_document() -> None:
    with pytest.raises(ValueError, match="nested too deep"):
        integrity.parse(DEEP.encode())


def test_a_lock_file_nested_too_deep_is_an_unreadable_lock_taken_over(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "store")[0]
    lock_file = tmp_path / "store" / LOCK_KEY
    lock_file.parent.mkdir(exist_ok=True)
    lock_file.write_text(DEEP)
    past = time.time() - UNREADABLE_GRACE_S - 5
    os.utime(lock_file, (past, past))
    warnings = []
    with WriterLock(store.backend, "backup", 60, warnings.append):
        pass
    assert [w.message for w in warnings] == ["took over a stale lock of a writer that has not finished writing its "
                                             "lock file: it is empty or unreadable (a run that could not finish "
                                             "writing it, on a full disk or killed)"]


def test_a_verification_state_nested_too_deep_is_a_corrupt_state(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "store")[0]
    (tmp_path / "store" / STATE_KEY).parent.mkdir(exist_ok=True)
    (tmp_path / "store" / STATE_KEY).write_text(DEEP)
    [problem] = load_state(store).problems
    assert (problem.key, problem.kind) == (STATE_KEY, "corrupt") and "unreadable verification state" in problem.detail


def test_an_alerts_state_nested_too_deep_is_a_damaged_state(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(alerts_config(tmp_path, hook=hook))
        state = tmp_path / "state" / "alerts.json"
        state.parent.mkdir()
        state.write_text(DEEP)
        [told] = delivery_problems(config)
        assert told.startswith(f"the alerts' state {state} is damaged (nested too deep to be a state file)")
