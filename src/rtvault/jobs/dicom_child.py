"""The DICOM node as the daemon's supervised child (docs/design.md, "The daemon"): when `[dicom] port` is set,
`rtvault daemon` runs `rtvault dicom serve` beside its schedule, restarts it when it dies (after 1 s, doubling
up to a minute while it keeps dying at once), passes its log lines on, and stops it (SIGTERM: it seals what it
received) when the daemon stops."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

from rtvault.config import Config
from rtvault.jobs.runner import end_group

STOP_WAIT_S = 60.0  # the node gets this long to end its associations and seal its spool, then SIGKILL
MAX_BACKOFF_S = 60.0
STEADY_S = 60.0  # a child that ran this long had started well: the next restart waits 1 s again


class DicomChild:
    def __init__(self, config: Config, executable: list[str], *, log: Callable[[str], None]) -> None:
        self.config = config
        self.executable = executable
        self.log = log
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="rtvault-dicom-child", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [*self.executable, "--config", str(self.config.file), "dicom", "serve", "--json"]
        env = {**os.environ, "RTVAULT_RUN_BY": "daemon"}
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        threading.Thread(target=self._relay, args=(child,), name="rtvault-dicom-log", daemon=True).start()
        return child

    def _relay(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stderr is not None
        for raw in child.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.log(line.split(" dicom: ", 1)[-1] if " dicom: " in line else line)

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            self._child = self._spawn()
            self.log(f"dicom: `rtvault dicom serve` started (pid {self._child.pid}, port {self.config.dicom.port})")
            code = self._child.wait()
            if self._stopping.is_set():
                return
            backoff = 1.0 if time.monotonic() - started >= STEADY_S else min(MAX_BACKOFF_S, backoff * 2)
            self.restarts += 1
            self.log(f"dicom: `rtvault dicom serve` exited with code {code}; restarted in {backoff:.0f} s "
                     "(its last lines above say why)")
            self._stopping.wait(backoff)

    def stop(self) -> None:
        """SIGTERM to the node (it seals what it received), SIGKILL if it lingers past STOP_WAIT_S."""
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            end_group(child, STOP_WAIT_S, 10.0)
        if self._thread is not None:
            self._thread.join(timeout=15)
