"""One UTC timestamp format written (`Z`), both forms that exist on disk read."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta, timezone

from rtvault import utc
from rtvault.copies.verify import VerifyState
from rtvault.store.integrity import sha256_copy


def test_written_with_z_read_in_both_forms() -> None:
    moment = datetime(2026, 11, 23, 18, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert utc.iso(moment) == "2026-11-23T17:00:00Z"
    assert utc.iso(moment, "microseconds") == "2026-11-23T17:00:00.123456Z"
    assert utc.now_iso().endswith("Z") and "+" not in utc.now_iso()
    assert utc.parse("2026-11-23T17:00:00Z") == utc.parse("2026-11-23T17:00:00+00:00") == moment.replace(microsecond=0)
    assert utc.parse("2026-11-23T17:00:00Z").tzinfo is not None and utc.parse("2026-11-23 17:00").tzinfo is None


def test_a_verification_cycle_finishes_whichever_form_its_times_have() -> None:
    old = utc.iso(datetime(2026, 1, 1, tzinfo=UTC)).replace("Z", "+00:00")  # as earlier versions wrote it
    assert VerifyState(cycle_started=old, last_cycle_completed="2026-01-01T00:00:00Z").cycle_finished
    assert not VerifyState(cycle_started="2026-01-01T00:00:01Z", last_cycle_completed=old).cycle_finished


def test_sha256_copy_hashes_what_it_copies() -> None:
    data = bytes(range(256)) * 10_000
    sink = io.BytesIO()
    assert sha256_copy(io.BytesIO(data), sink) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sink.getvalue() == data and sha256_copy(io.BytesIO(b""))[1] == 0
