"""DICOM validation for the tests: `dciodvfy` (Debian dicom3tools) and a real Orthanc (Debian orthanc) on loopback.

`dciodvfy_errors(path)` runs dciodvfy on one file and returns its errors (warnings left out): a valid object
gives `[]`. The session's `orthanc` fixture (tests/conftest.py) is one Orthanc started from a generated
configuration, its storage in a temporary directory, its HTTP and DICOM ports free ports of 127.0.0.1, remote
access refused; `orthanc.upload(path)` posts a file to `POST /instances` as a user's import would, and
`orthanc.instances()` lists what it holds. The tests skip, saying which Debian package is missing, when the
tools are not installed (scripts/system-packages.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kit.files import free_port

DCIODVFY = "dciodvfy"
ORTHANC = "Orthanc"
START_TIMEOUT_S = 30


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool) or next((str(p) for p in (Path("/usr/sbin") / tool, Path("/usr/bin") / tool)
                                        if p.is_file()), None)
    if found is None:
        pytest.skip(f"{tool} is not installed (Debian package `{package}`: scripts/system-packages.sh)")
    return found


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines dciodvfy reports for the DICOM file `path` (its warnings are not errors); a file it cannot
    read at all (`Abort - ...`, or a failure with no error line) is one error naming what it said."""
    tool = _require(DCIODVFY, "dicom3tools")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, errors="replace", timeout=120)
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()]
    errors = [line for line in lines if line.startswith(("Error", "Abort"))]
    if done.returncode and not errors:
        errors = [f"dciodvfy exited with {done.returncode}: " + " | ".join(line for line in lines if line)]
    return errors


@dataclass(frozen=True)
class Stored:
    """What Orthanc answered to one upload: its own id of the instance and whether it was new."""

    id: str
    status: str  # "Success" or "AlreadyStored"


class OrthancError(AssertionError):
    """Orthanc refused a file or did not answer: the test fails with what it said."""


class OrthancServer:
    """One Orthanc process whose configuration, index and storage are in `directory`."""

    def __init__(self, directory: Path, binary: str, aet: str = "RTVAULTTEST") -> None:
        self.directory = directory
        self.binary = binary
        self.aet = aet
        self.http_port = free_port()
        self.dicom_port = free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.directory / "orthanc.log"

    def configuration(self) -> dict[str, object]:
        storage = self.directory / "storage"
        return {
            "Name": "rtvault-tests", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": self.aet,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "SslEnabled": False,
            "HttpDescribeErrors": True, "Plugins": [], "LuaScripts": [], "DicomModalities": {},
            "OrthancPeers": {}, "WebDavEnabled": False, "OrthancExplorerEnabled": False, "StorageCompression": False,
            "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True, "ConcurrentJobs": 1, "HttpThreadsCount": 8,
        }

    def start(self) -> None:
        config = self.directory / "config.json"
        config.write_text(json.dumps(self.configuration(), indent=2), encoding="utf-8")
        log = open(self.log, "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen([self.binary, "--no-jobs", str(config)], cwd=self.directory,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/system", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer on {self.url} within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kill Orthanc (its orderly shutdown takes seconds, and nothing of a test's data must survive)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def _get(self, path: str) -> object:
        answer = httpx.get(f"{self.url}{path}", timeout=30)
        if answer.status_code != 200:
            raise OrthancError(f"GET {path}: Orthanc answered {answer.status_code}: {answer.text}")
        return answer.json()

    def upload(self, path: Path) -> Stored:
        """`POST /instances` with the bytes of `path`; raises OrthancError (a test failure) when Orthanc refuses it."""
        answer = httpx.post(f"{self.url}/instances", content=path.read_bytes(), timeout=60,
                            headers={"Content-Type": "application/dicom"})
        if answer.status_code != 200:
            raise OrthancError(f"Orthanc refused {path} ({answer.status_code}): {answer.text}\n{self.log_tail(5)}")
        body = answer.json()
        return Stored(id=body["ID"], status=body["Status"])

    def instances(self) -> list[dict[str, str]]:
        """Every instance Orthanc holds, as its main DICOM tags by name (`SOPInstanceUID`, `Modality`, ...)."""
        ids = self._get("/instances")
        assert isinstance(ids, list)
        return [self.tags(instance) for instance in ids]

    def tags(self, instance: str) -> dict[str, str]:
        """The tags of one instance as Orthanc read them (`/instances/{id}/simplified-tags`), values as text."""
        tags = self._get(f"/instances/{instance}/simplified-tags")
        assert isinstance(tags, dict)
        return {name: value for name, value in tags.items() if isinstance(value, str)}

    def clear(self) -> None:
        """Delete every patient Orthanc holds, so that a test sees only what it uploaded."""
        for patient in self._get("/patients"):  # type: ignore[union-attr]
            answer = httpx.delete(f"{self.url}/patients/{patient}", timeout=30)
            if answer.status_code != 200:
                raise OrthancError(f"DELETE /patients/{patient}: {answer.status_code} {answer.text}")


def start_orthanc(directory: Path) -> OrthancServer:
    """A started Orthanc keeping everything in `directory`; skips the test when Orthanc is not installed."""
    binary = _require(ORTHANC, "orthanc")
    directory.mkdir(parents=True, exist_ok=True)
    server = OrthancServer(directory, binary)
    server.start()
    return server
