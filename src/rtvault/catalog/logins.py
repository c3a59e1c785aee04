"""Sign-in rate limiting, counted in the catalog so that parallel requests cannot bypass it.

Each sign-in attempt is counted *before* its password is checked, in one transaction that counts the recent
failures and records the attempt: the transaction holds the address's lock (SQLite: the database's write
lock, taken by `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock on the address), so N simultaneous attempts
are counted one after the other and at most the limit get a password check. A right password then clears the
address's failures for that name; an unreachable directory takes its attempt back.

Refused attempts are not one audit row each: the first refusal of a lockout is recorded by the caller, the
next ones are counted in `login_lockouts`, and written as one counted row once the lockout is over (an attempt
from that address is allowed again, or no refusal came for a whole window).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rtvault.catalog import audit
from rtvault.catalog.db import Catalog
from rtvault.utc import iso

MAX_USER_FAILURES = 5  # per (address, user) within FAILURE_WINDOW
MAX_ADDRESS_FAILURES = 20  # per address, whatever the user names tried
FAILURE_WINDOW = timedelta(minutes=15)
MAX_TYPED_NAME = 100  # what a sign-in form's user name may hold, checked before any hashing


@dataclass(frozen=True)
class Attempt:
    """A counted attempt (`id`), or a refused one (`id` None); `first_refusal`: the refusal that starts a
    lockout, which the caller records in the audit trail (the later ones are counted here)."""

    id: int | None
    first_refusal: bool = False

    @property
    def allowed(self) -> bool:
        return self.id is not None


def typed(name: str) -> str:
    # Attempts are keyed by what was typed, cut (a megabyte "user name" costs no megabyte row) and in lower case:
    # a directory compares names without case, so HLefevre and hlefevre are one account and share one limit.
    return name[:MAX_TYPED_NAME].casefold()


def source(address: str) -> str:
    """Where attempts come from, for the limits: an IPv4 address, or the /64 network of an IPv6 one (what one
    customer or host usually holds: taking the next address of it must not buy fresh attempts)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_TYPED_NAME]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def begin_attempt(db: Catalog, address: str, username: str, now: datetime | None = None) -> Attempt:
    """Count this attempt as a failure unless the address already failed too often recently (for this user
    name, or for all names together); refused attempts are counted towards the lockout's audit row."""
    username, address, moment = typed(username), source(address), now or datetime.now(UTC)
    since = iso(moment - FAILURE_WINDOW)
    with db.transaction():
        db.lock(f"rtvault login {address}")
        db.execute("DELETE FROM login_attempts WHERE time < ?", (since,))
        for_user = db.one("SELECT COUNT(*) FROM login_attempts WHERE address = ? AND username = ? AND time >= ?",
                          (address, username, since))
        for_address = db.one("SELECT COUNT(*) FROM login_attempts WHERE address = ? AND time >= ?", (address, since))
        refused = (for_user and for_user[0] >= MAX_USER_FAILURES) or (
            for_address and for_address[0] >= MAX_ADDRESS_FAILURES)
        _end_lockouts(db, since, None if refused else address)
        if refused:
            return Attempt(None, _count_refusal(db, address, username, iso(moment)))
        attempt = db.insert("INSERT INTO login_attempts (address, username, time) VALUES (?, ?, ?)",
                            (address, username, iso(moment)))
    return Attempt(attempt)


def take_back(db: Catalog, attempt: Attempt) -> None:
    """Not a failure after all (the directory could not be asked): the attempt no longer counts."""
    if attempt.id is not None:
        db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt.id,))


def succeeded(db: Catalog, address: str, username: str) -> None:
    """A right password: this address's failures for that name are forgotten."""
    db.execute("DELETE FROM login_attempts WHERE address = ? AND username = ?", (source(address), typed(username)))


def _count_refusal(db: Catalog, address: str, username: str, now: str) -> bool:
    """Count a refused attempt in the address's lockout; True when it starts the lockout."""
    if db.one("SELECT 1 FROM login_lockouts WHERE address = ?", (address,)) is None:
        db.execute("INSERT INTO login_lockouts (address, username, started, latest, refused) VALUES (?, ?, ?, ?, 0)",
                   (address, username, now, now))
        return True
    db.execute("UPDATE login_lockouts SET refused = refused + 1, latest = ? WHERE address = ?", (now, address))
    return False


def _end_lockouts(db: Catalog, since: str, address: str | None) -> None:
    """Write one counted audit row per lockout that is over: `address`'s (an attempt from it is allowed
    again), and any without a refusal for a whole window. DELETE ... RETURNING: a lockout ends only once."""
    ended = db.execute("DELETE FROM login_lockouts WHERE latest < ? OR address = ? "
                       "RETURNING address, username, started, latest, refused", (since, address))
    for where, username, started, latest, refused in ended:
        if refused:
            audit.record(db, user=username, address=where, action="login_failed",
                         detail={"refused": refused, "from": started, "to": latest},
                         result=f"too many attempts: {refused} more refused")
