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

from rtvault.errors import LockBusy, Problem, StoreError
from rtvault.store.backend import Backend

LOCK_KEY = "locks/writer.json"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_reason(holder: dict, now: float) -> str | None:
    if holder.get("expires", 0) < now:
        return f"its lease expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('expires', 0)))}"
    if holder.get("host") == socket.gethostname() and not _process_alive(int(holder.get("pid", 0))):
        return f"its process {holder.get('pid')} is gone"
    return None


class WriterLock:
    """`with WriterLock(backend, "backup", lease_s, warn):` holds the store's writer lock, renewing it."""

    def __init__(self, backend: Backend, operation: str, lease_s: float,
                 warn: Callable[[Problem], None] = lambda _p: None) -> None:
        self.backend = backend
        self.operation = operation
        self.lease_s = lease_s
        self.warn = warn
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _record(self) -> bytes:
        now = time.time()
        return json.dumps({"operation": self.operation, "host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "acquired": now, "expires": now + self.lease_s}).encode()

    def acquire(self) -> None:
        for _attempt in range(3):
            if self.backend.create_exclusive(LOCK_KEY, self._record()):
                self._start_renewing()
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile: try to create it again
            reason = _stale_reason(holder, time.time())
            if reason is None:
                raise LockBusy(
                    f"store {self.backend.location} is locked by {holder.get('operation', '?')} "
                    f"(pid {holder.get('pid')} on {holder.get('host')}) until its lease ends; try again later")
            self.warn(Problem(LOCK_KEY, f"took over a stale lock of {holder.get('operation', '?')} "
                                        f"(pid {holder.get('pid')} on {holder.get('host')}): {reason}"))
            self.backend.delete(LOCK_KEY)
        raise LockBusy(f"store {self.backend.location}: could not take the writer lock (contended)")

    def _holder(self) -> dict | None:
        """The lock's record; a half-written one counts as fresh until a lease has passed since its write."""
        try:
            return json.loads(self.backend.get(LOCK_KEY))
        except (ValueError, OSError):
            try:
                written = self.backend.modified(LOCK_KEY)
            except StoreError:
                return None
            return {"operation": "a writer still writing its lock", "expires": written + self.lease_s}
        except StoreError:
            return None

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(self.lease_s / 3):
                try:
                    if not self.held():
                        return
                    self.backend.replace(LOCK_KEY, self._record())
                except StoreError:  # the store stopped answering: ensure_held() tells the job before it commits
                    continue

        self._renewer = threading.Thread(target=renew, name="rtvault-lock-renewer", daemon=True)
        self._renewer.start()

    def held(self) -> bool:
        """Whether the lock file still carries our token (another run may have judged us stale)."""
        try:
            return json.loads(self.backend.get(LOCK_KEY)).get("token") == self.token
        except (ValueError, OSError, StoreError):  # missing or unreadable: not ours any more
            return False

    def ensure_held(self) -> None:
        """Call before committing: a writer that lost its lock must not write a snapshot."""
        if not self.held():
            raise LockBusy(f"store {self.backend.location}: this run lost its writer lock; nothing was committed")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.held():
            self.backend.delete(LOCK_KEY)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
