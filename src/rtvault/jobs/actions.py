"""The journal of every action (docs/design.md, "The journal of actions"): who did what, to what, with which
result, from the command line and the web alike, written to the run journal (an `actions` record: a batch of
entries) so that it survives the catalog, and indexed in the catalog's audit table for the audit page.

- The command line: each command that acts or reads patients (backup, restore, archive, repair, replicate, user
  and token changes, searches...) appends one entry when it ends, whatever its result, straight to every store
  (a store that fails gets it through the spool); the daemon's own runs are run records instead.
- The web server never writes a store: its entries (sign-ins, searches, views, downloads, restores, refusals) go
  into the audit table at once and, batched for at most `FLUSH_S`, as a segment into `[daemon] state_dir`/spool/,
  which the daemon writes to the stores at its next heartbeat (and any command line action too).
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from rtvault.catalog import audit
from rtvault.catalog.db import Catalog
from rtvault.config import Config
from rtvault.jobs.journal import Journal, Written, flush_spool
from rtvault.store import journal as store_journal
from rtvault.utc import iso

LOG = logging.getLogger("rtvault.web")
FLUSH_S = 1.0  # the web's entries wait at most this long in memory before their segment is spooled
BATCH = 200  # ... or until this many are waiting
SECRET = ("password", "passphrase", "token", "secret", "key_file", "password_file")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (a container)
        return f"uid {os.getuid()}"


def cli_actor() -> dict[str, str]:
    """Who runs this command: the operating-system user, this host, the command line (or the daemon)."""
    via = "daemon" if os.environ.get("RTVAULT_RUN_BY") == "daemon" else "cli"
    return {"user": os_user(), "host": socket.gethostname(), "via": via}


def entry(*, user: str, via: str, action: str, target: str = "", patient: str = "", detail: object = None,
          result: str = "ok", address: str = "", now: datetime | None = None) -> dict[str, object]:
    """One action entry (its fields in docs/design.md); values typed by someone are capped as the audit's are."""
    actor = {"user": audit.cap(user, audit.MAX_VALUE), "host": socket.gethostname(), "via": via}
    if address:
        actor["address"] = audit.cap(address, audit.MAX_VALUE)
    found: dict[str, object] = {"time": iso(now or datetime.now(UTC)), "actor": actor,
                                "action": audit.cap(action, audit.MAX_VALUE),
                                "target": audit.cap(target or patient, audit.MAX_VALUE),
                                "result": audit.cap(result, audit.MAX_RESULT)}
    if patient:
        found["patient"] = audit.cap(patient, audit.MAX_VALUE)
    if detail:
        found["detail"] = audit.capped(detail)
    return found


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)  # a path, a date


def parameters(values: Mapping[str, object]) -> dict[str, object]:
    """A command's options as an entry's detail: what was given (not the defaults left unset), never a secret."""
    return {name: _plain(value) for name, value in values.items()
            if value not in (None, False, (), []) and name != "as_json" and not any(s in name for s in SECRET)}


def _patient(values: Mapping[str, object]) -> str:
    """The patient a command names: `--patient KEY` (given once, when it may be repeated)."""
    for name in ("key", "keys", "patient"):
        value = values.get(name)
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and value:
            return value
    return ""


def record_command(config: Config, action: str, values: Mapping[str, object], result: str,
                   error: str = "", each: Sequence[Mapping[str, object]] = ()) -> Written:
    """A command line action, written to every store (the spool for a store that fails, the spooled records
    of the web sent along) and indexed in the audit table; with an entry of its own for `each` patient it
    acted on one by one (`{"patient", "detail", "result"}`: the patients of a list restored)."""
    detail = parameters(values)
    patient = _patient(values)
    target = patient or next((str(values[name]) for name in ("store_name", "archive_id", "name", "label", "to")
                              if values.get(name) not in (None, "")), "")
    actor = cli_actor()
    item = entry(user=actor["user"], via=actor["via"], action=action, target=target, patient=patient,
                 detail=detail, result=result if result in ("ok", "interrupted") else f"{result}: {error}")
    items = [item, *(entry(user=actor["user"], via=actor["via"], action=action, patient=str(one["patient"]),
                           detail=one.get("detail"), result=str(one.get("result", "ok"))) for one in each)]
    written = Journal(config).append({"kind": "actions", "entries": items})
    written.problems.extend(flush_spool(config) if not written.spooled else [])
    return written


class WebActions:
    """The web server's stream of action entries: each one indexed in the audit table at once (with the id of
    the segment it will be in), the segment spooled for the daemon within `FLUSH_S` (the web never writes a
    store). One per server process."""

    def __init__(self, config: Config, *, via: str = "web") -> None:
        self.via = via  # "web", or "dicom" for the DICOM node's associations
        self.journal = Journal(config)
        self.waiting: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.problems: list[str] = []
        atexit.register(self.flush)

    def record(self, db: Catalog, *, user: str, address: str, action: str, patient: str = "",
               detail: dict | str = "", result: str = "ok") -> None:
        item = entry(user=user, via=self.via, action=action, patient=patient, detail=detail, result=result,
                     address=address)
        with self.lock:
            segment = store_journal.segment_id(self.journal.writer, self.journal.seq + 1)
            index = len(self.waiting)
            self.waiting.append(item)
            full = len(self.waiting) >= BATCH
            if not full and self.timer is None:
                self.timer = threading.Timer(FLUSH_S, self.flush)
                self.timer.daemon = True
                self.timer.start()
        audit.record(db, user=user, address=address, action=action, patient=patient, detail=detail, result=result,
                     journal=(segment, index))
        if full:
            self.flush()

    def flush(self) -> None:
        """Spool what waits as one segment (for every store)."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if not self.waiting:
                return
            batch, self.waiting = self.waiting, []
            written = self.journal.append({"kind": "actions", "entries": batch}, spool_only=True, index=False)
        self.problems = written.problems
        for problem in written.problems:  # the actions are in the audit table only: the server's log says so
            LOG.error("journal of actions: %s (the %d action(s) are in the catalog's audit trail only)", problem,
                      len(batch))
