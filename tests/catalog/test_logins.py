"""Sign-in rate limiting on both databases: counted before the password check, atomic under parallel
attempts, and one counted audit row for the refusals of a lockout."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from rtvault.catalog import open_catalog
from rtvault.catalog.audit import entries
from rtvault.catalog.logins import (
    FAILURE_WINDOW,
    MAX_ADDRESS_FAILURES,
    MAX_USER_FAILURES,
    begin_attempt,
    succeeded,
    take_back,
)


@pytest.fixture
def db(catalog):  # conftest.py: each test runs on SQLite and on PostgreSQL
    return catalog


def _fail(db, address: str, name: str, times: int) -> None:
    for _ in range(times):
        assert begin_attempt(db, address, name).allowed


def test_rate_limiting_per_user_and_clearing(db):
    _fail(db, "192.0.2.9", "e.dupre", MAX_USER_FAILURES - 1)
    last = begin_attempt(db, "192.0.2.9", "e.dupre")  # the limit-th attempt still gets its password checked
    assert last.allowed
    refused = begin_attempt(db, "192.0.2.9", "e.dupre")
    assert not refused.allowed and refused.first_refusal
    assert not begin_attempt(db, "192.0.2.9", "e.dupre").first_refusal  # counted, not recorded again
    assert begin_attempt(db, "192.0.2.10", "e.dupre").allowed  # another workstation
    assert begin_attempt(db, "192.0.2.9", "c.roux").allowed
    succeeded(db, "192.0.2.9", "e.dupre")
    assert begin_attempt(db, "192.0.2.9", "e.dupre").allowed
    huge = "é" * 100_000  # whatever an attacker types as a user name
    _fail(db, "192.0.2.9", huge, MAX_USER_FAILURES)
    assert not begin_attempt(db, "192.0.2.9", huge).allowed
    assert max(len(row[0]) for row in db.execute("SELECT username FROM login_attempts")) <= 100


def test_rate_limiting_per_address_and_old_failures_expire(db):
    for i in range(MAX_ADDRESS_FAILURES):
        assert begin_attempt(db, "198.51.100.4", f"guess{i}").allowed
    assert not begin_attempt(db, "198.51.100.4", "someone-new").allowed
    later = datetime.now(UTC) + FAILURE_WINDOW + timedelta(seconds=1)
    assert begin_attempt(db, "198.51.100.4", "someone-new", later).allowed
    assert db.one("SELECT COUNT(*) FROM login_attempts")[0] == 1  # the stale ones were dropped


def test_an_attempt_taken_back_does_not_count(db):
    for _ in range(MAX_USER_FAILURES + 3):
        take_back(db, begin_attempt(db, "192.0.2.20", "hlefevre"))  # the directory never answered
    assert begin_attempt(db, "192.0.2.20", "hlefevre").allowed


def test_parallel_attempts_are_counted_one_after_the_other(catalog_url):
    with open_catalog(catalog_url):
        pass
    attempts = 24
    start = threading.Barrier(attempts)
    allowed: list[bool] = []

    def attempt() -> None:
        with open_catalog(catalog_url, migrate=False) as own:
            start.wait()
            allowed.append(begin_attempt(own, "203.0.113.5", "operator").allowed)

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(allowed) == attempts and allowed.count(True) == MAX_USER_FAILURES


def test_a_lockout_is_one_counted_audit_row(db):
    _fail(db, "192.0.2.30", "admin", MAX_USER_FAILURES)
    assert begin_attempt(db, "192.0.2.30", "admin").first_refusal  # the caller records this one
    for _ in range(40):
        assert not begin_attempt(db, "192.0.2.30", "admin").first_refusal
    assert entries(db)[1] == 0
    assert begin_attempt(db, "192.0.2.30", "someone-else").allowed  # the lockout is over for this address
    found, total = entries(db)
    assert total == 1 and found[0].action == "login_failed" and found[0].user == "admin"
    assert found[0].address == "192.0.2.30" and found[0].result == "too many attempts: 40 more refused"
    # A lockout without a refusal for a whole window ends at anyone's next attempt.
    _fail(db, "192.0.2.31", "admin", MAX_USER_FAILURES)
    begin_attempt(db, "192.0.2.31", "admin")
    begin_attempt(db, "192.0.2.31", "admin")
    later = datetime.now(UTC) + FAILURE_WINDOW + timedelta(seconds=1)
    begin_attempt(db, "192.0.2.99", "viewer", later)
    assert entries(db)[0][0].result == "too many attempts: 1 more refused"


def test_case_variants_of_a_name_and_one_ipv6_network_share_their_limits(db):
    """A directory compares names without case, so HLefevre and hlefevre are one account; one IPv6 host or
    customer holds a whole /64, so its next address buys no fresh attempts."""
    variants = ["hlefevre", "HLefevre", "HLEFEVRE", "hLefevre", "hlEfevre"]
    for name in variants:
        assert begin_attempt(db, "192.0.2.77", name).allowed
    assert not begin_attempt(db, "192.0.2.77", "HlEfEvRe").allowed
    for host in range(1, MAX_USER_FAILURES + 1):
        assert begin_attempt(db, f"2001:db8:aaaa:bbbb::{host:x}", "admin").allowed
    assert not begin_attempt(db, "2001:db8:aaaa:bbbb:ffff::1", "admin").allowed
    assert begin_attempt(db, "2001:db8:aaaa:cccc::1", "admin").allowed  # another /64: another customer
    assert begin_attempt(db, "::ffff:192.0.2.78", "admin").allowed  # an IPv4 client seen through IPv6
