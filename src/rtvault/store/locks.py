"""The writer lock of a store, as a lease.

One writer at a time (backup, forget, prune) holds `locks/writer.json`. The holder renews the lease while it
works; a lock whose lease expired, or whose process is gone on this host, is taken over with a warning so
that a crashed run never blocks an unattended job for good. Readers (restore, list, check) never lock.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from rtvault.errors import LockBusy, Problem, RtvaultError, StoreError
from rtvault.store.backend import Backend, process_alive

LOCK_KEY = "locks/writer.json"
DAEMON_KEY = "locks/daemon.json"  # the lease of `rtvault daemon`: one per store set; its `renewed` is the heartbeat


UNREADABLE_GRACE_S = 10.0  # a lock file that is empty or not JSON this long after its last write is dead


def _stale_reason(holder: dict, now: float) -> str | None:
    if holder.get("unreadable"):
        if holder["written"] + UNREADABLE_GRACE_S < now:
            return "it is empty or unreadable (a run that could not finish writing it, on a full disk or killed)"
        return None
    if not isinstance(holder.get("expires"), int | float) or holder["expires"] < now:
        expires = holder.get("expires")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires)) if isinstance(expires, int | float) \
            else "an unknown time"
        return f"its lease expired at {when}"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not process_alive(pid):
        return f"its process {pid} is gone"
    return None


def describe(holder: dict) -> str:
    """Who holds a lock, for messages: never `None` for a field the record lacks."""
    if holder.get("unreadable"):
        return "a writer that has not finished writing its lock file"
    who = str(holder.get("operation") or "a writer")
    where = [f"pid {holder['pid']}" if holder.get("pid") is not None else "",
             f"on {holder['host']}" if holder.get("host") else ""]
    where_text = " ".join(part for part in where if part)
    return f"{who} ({where_text})" if where_text else who


def read_lease(backend: Backend, key: str) -> tuple[dict, str | None] | None:
    """The record of the lease at `key` and why it is stale (None while it is alive); None when there is no lease.
    StoreError when the store cannot tell."""
    probe = WriterLock(backend, "probe", 0, key=key)
    holder = probe._holder()
    return None if holder is None else (holder, _stale_reason(holder, time.time()))


class WriterLock:
    """`with WriterLock(backend, "backup", lease_s, warn):` holds the store's writer lock, renewing it."""

    def __init__(self, backend: Backend, operation: str, lease_s: float,
                 warn: Callable[[Problem], None] = lambda _p: None, *, key: str = LOCK_KEY,
                 renewing: bool = True, wait_s: float = 0.0) -> None:
        self.backend = backend
        self.wait_s = wait_s  # `with`: how long to wait for another holder before LockBusy
        self.key = key
        self.renewing = renewing  # False: the holder calls renew() itself (the daemon's loop: a heartbeat)
        self.acquired: float | None = None
        self.operation = operation
        self.lease_s = lease_s
        self.warn = warn
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _record(self) -> bytes:
        now = time.time()
        if self.acquired is None:
            self.acquired = now
        return json.dumps({"operation": self.operation, "host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "acquired": self.acquired, "renewed": now,
                           "expires": now + self.lease_s}).encode()

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lock; while another holds it, try again for up to `wait_s` seconds, then LockBusy."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._acquire()
                return
            except LockBusy:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _acquire(self) -> None:
        for _attempt in range(3):
            if self.backend.create_exclusive(self.key, self._record()):
                if self.renewing:
                    self._start_renewing()
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile: try to create it again
            reason = _stale_reason(holder, time.time())
            if reason is None:
                raise LockBusy(f"store {self.backend.location} is locked by {describe(holder)} until its lease "
                               "ends; try again later")
            self.warn(Problem(self.key, f"took over a stale lock of {describe(holder)}: {reason}"))
            self.backend.delete(self.key)
        raise LockBusy(f"store {self.backend.location}: could not take the writer lock (contended)")

    def _read(self) -> dict | None:
        """The lock file's record: None when there is no lock, {} when it is empty or not a JSON object;
        StoreError when the store cannot tell (unreachable)."""
        try:
            data = self.backend.get(self.key)
        except StoreError:
            if not self.backend.exists(self.key):
                return None
            raise
        try:
            holder = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return {}
        return holder if isinstance(holder, dict) else {}

    def _holder(self) -> dict | None:
        """The lock's record (None when it is gone). Locks are published whole (`create_exclusive`), so an
        empty or unparsable one was left by an older rtvault or a damaged disk: it counts as a writer still
        writing for a few seconds after its last write, then as dead."""
        holder = self._read()
        if holder is None or holder:
            return holder
        try:
            return {"unreadable": True, "written": self.backend.modified(self.key)}
        except StoreError:
            return None

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(self.lease_s / 3):
                try:
                    if not self.held():
                        return
                    self.backend.replace(self.key, self._record())
                except StoreError:  # the store stopped answering: ensure_held() tells the job before it commits
                    continue

        self._renewer = threading.Thread(target=renew, name="rtvault-lock-renewer", daemon=True)
        self._renewer.start()

    def renew(self) -> None:
        """Extend the lease now (and record the heartbeat); LockBusy when another holder took it over meanwhile,
        StoreError when the store does not answer or the lease is gone with it (a NAS unmounted, its folder moved
        away: a holder that takes a lease over leaves its own record, never none)."""
        holder = self._read()
        if holder is None:
            raise StoreError(f"store {self.backend.location}: {self.key} is missing: is the store mounted? The "
                             "lease is renewed once it is back")
        if holder.get("token") != self.token:
            raise LockBusy(f"store {self.backend.location}: {self.key} was taken over by another process")
        self.backend.replace(self.key, self._record())

    def held(self) -> bool:
        """Whether the lock file still carries our token (another run may have judged us stale)."""
        try:
            return self._ours()
        except StoreError:  # missing, or the store does not answer: not known to be ours
            return False

    def _ours(self) -> bool:
        """Whether the lock file carries our token; StoreError when the store cannot tell (unreachable)."""
        holder = self._read()
        return bool(holder) and holder.get("token") == self.token

    def ensure_held(self) -> None:
        """Call before committing: a writer that lost its lock must not write a snapshot. A store that does not
        answer is that store's error (exit 8), not a lost lock: the outage is what the operator must see."""
        if not self._ours():
            raise LockBusy(f"store {self.backend.location}: this run lost its writer lock; nothing was committed")

    def release(self) -> Problem | None:
        """Give the lock back, also on the way out of a failed run. When the store cannot be reached (an S3
        outage) or written (remounted read-only), the lock stays until its lease ends: the warning returned
        (and given to `warn`) says when another host may take it over."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            if self._ours():
                self.backend.delete(self.key)
            return None
        except StoreError as error:
            ends = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + self.lease_s))
            problem = Problem(self.key, f"could not release the writer lock ({error}); it ends with its lease "
                                        f"by {ends}, then any host takes it over (this host at once)")
            self.warn(problem)
            return problem

    def __enter__(self) -> WriterLock:
        self.acquire(self.wait_s)
        return self

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        problem = self.release()
        if problem is not None and isinstance(error, RtvaultError) and error.args:
            # a failed run prints only its error: the lock left behind must be said in the same sentence
            error.args = (f"{error.args[0]}; also, {problem.message}", *error.args[1:])
