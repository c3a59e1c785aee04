"""Real DICOM peers for the test kit's tests (`rtvault dicom echo|send|find|move|check`), on loopback free ports:
an Orthanc with settings of the test's own (`orthanc_with`: e.g. unknown AE titles refused), a modality declared
to a running Orthanc through its REST API (`declare_modality`), and a dcmtk `storescp` writing what it receives
under a directory (`Storescp`), started and stopped by the test. `peers_config` writes an rtvault configuration
naming them as `[dicom.peers.NAME]`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kit.config import write_config
from kit.dicom import ORTHANC, OrthancServer, _require
from kit.files import free_port

START_TIMEOUT_S = 20


class TunedOrthanc(OrthancServer):
    """An Orthanc whose configuration has the test's own settings on top of the kit's."""

    def __init__(self, directory: Path, binary: str, settings: dict[str, object]) -> None:
        super().__init__(directory, binary)
        self.settings = settings

    def configuration(self) -> dict[str, object]:
        return {**super().configuration(), **self.settings}


@contextmanager
def orthanc_with(directory: Path, **settings: object) -> Iterator[OrthancServer]:
    """An Orthanc of the test's own, with `settings` (Orthanc's configuration keys) over the kit's; stopped after."""
    directory.mkdir(parents=True, exist_ok=True)
    server = TunedOrthanc(directory, _require(ORTHANC, "orthanc"), settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def declare_modality(orthanc: OrthancServer, name: str, ae_title: str, port: int) -> None:
    """Make a modality (AE title at 127.0.0.1:port) known to a running Orthanc (`PUT /modalities/NAME`)."""
    answer = httpx.put(f"{orthanc.url}/modalities/{name}", timeout=30,
                       json={"AET": ae_title, "Host": "127.0.0.1", "Port": port})
    assert answer.status_code == 200, answer.text


class Storescp:
    """dcmtk's storescp on 127.0.0.1, writing each object it receives under `directory/received` as received."""

    def __init__(self, directory: Path, ae_title: str = "STORESCP", *options: str) -> None:
        self.directory = directory
        self.ae_title = ae_title
        self.port = free_port()
        self.received = directory / "received"
        self.received.mkdir(parents=True, exist_ok=True)
        self.log = directory / "storescp.log"
        binary = shutil.which("storescp")
        if binary is None:
            pytest.skip("storescp is not installed (Debian package `dcmtk`: scripts/system-packages.sh)")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--aetitle", ae_title, "--output-directory", str(self.received), "--bit-preserving",
                 *options, str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"storescp exited with {self.process.returncode}: {self.log.read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"storescp did not listen on {self.port} within {START_TIMEOUT_S} s")

    def files(self) -> list[Path]:
        return sorted(p for p in self.received.rglob("*") if p.is_file())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def storescp(directory: Path, ae_title: str = "STORESCP", *options: str) -> Iterator[Storescp]:
    server = Storescp(directory, ae_title, *options)
    try:
        yield server
    finally:
        server.stop()


def peers_config(path: Path, peers: dict[str, tuple[str, int]], ae_title: str = "RTVAULT") -> Path:
    """An rtvault configuration whose `[dicom.peers.NAME]` are `peers` ({name: (AE title, port)}, on 127.0.0.1)."""
    return write_config(path, root=path.parent / "db", stores={"primary": path.parent / "store"},
                        dicom={"ae_title": ae_title, "peers": {
                            name: {"ae_title": aet, "host": "127.0.0.1", "port": port}
                            for name, (aet, port) in peers.items()}})


def closed_port() -> int:
    """A loopback port nothing listens on (a free port, not kept)."""
    return free_port()


@contextmanager
def refusing_scp(status: int, ae_title: str = "FULLSCP") -> Iterator[int]:
    """A pynetdicom Storage SCP on a loopback free port answering every C-STORE with `status` (a PACS whose disk
    is full answers 0xA700); yields its port."""
    from pynetdicom import AE, evt
    from pynetdicom.presentation import AllStoragePresentationContexts

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, lambda event: status)])
    try:
        yield port
    finally:
        server.shutdown()
