"""The DICOM node's tests (tests/dicom_node/): a site (a configuration with [dicom] and its peers, a store), the
node run in-process (`running`) or as `rtvault dicom serve` (`Served`), objects made from pydicom's own test
files with new UIDs (`ct_series`, `sample`), dcmtk's tools run against it (`dcmtk`), a dcmtk `storescp` as a
C-MOVE destination (`storescp`), and what the store holds (`stored_files`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from kit.config import write_config
from kit.files import free_port
from rtvault.config import Config, load
from rtvault.dicom.received import dataset_of
from rtvault.jobs.dicom_node import Node
from rtvault.store import Store, receipts
from rtvault.store.objects import read_object

NODE = "RTVAULT"
SCU = "SCU"  # the AE title the tests' dcmtk tools call with (a [dicom.peers] entry)
ARCHIVE = "ARCHIVE"  # a storescp, the C-MOVE destination
SRC = Path(__file__).parents[2] / "src"


@dataclass
class NodeSite:
    """A configuration with a store and a [dicom] node, its peers SCU (sends, and receives C-MOVE on
    `archive_port`) and ARCHIVE."""

    root: Path
    store: Path
    config_path: Path
    port: int = 0
    archive_port: int = 0
    dicom: dict = field(default_factory=dict)
    peers: dict = field(default_factory=dict)  # more [dicom.peers.NAME] tables

    @property
    def config(self) -> Config:
        return load(self.config_path)

    def write(self, **dicom: object) -> None:
        self.dicom.update(dicom)
        peers = {"scu": {"ae_title": SCU}, "archive": {"ae_title": ARCHIVE, "host": "127.0.0.1",
                                                       "port": self.archive_port}, **self.peers}
        write_config(self.config_path, stores={"primary": self.store},
                     catalog={"url": f"sqlite:///{self.root / 'catalog.sqlite'}"},
                     dicom={"ae_title": NODE, "host": "127.0.0.1", "port": self.port, **self.dicom,
                            "peers": peers})


def certificate(folder: Path, name: str = "node") -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (openssl): `name`.crt and `name`.key."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def make_site(root: Path, **dicom: object) -> NodeSite:
    site = NodeSite(root, root / "store", root / "rtvault.toml", port=free_port(), archive_port=free_port())
    Store.init(site.store)
    site.write(**dicom)
    return site


@contextmanager
def running(site: NodeSite, **options: object) -> Iterator[Node]:
    """The node in this process, on the site's port, stopped (sealed) at the end; its log lines kept in
    `node.lines`."""
    lines: list[str] = []
    node = Node(site.config, log=lines.append, **options)  # type: ignore[arg-type]
    node.lines = lines  # type: ignore[attr-defined]
    node.start()
    try:
        yield node
    finally:
        node.close()


def sample(name: str, folder: Path, **changes: object) -> Path:
    """A pydicom test file written to `folder` with new study, series and instance UIDs (and `changes`)."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    dataset.StudyInstanceUID = changes.pop("StudyInstanceUID", None) or generate_uid()
    dataset.SeriesInstanceUID = changes.pop("SeriesInstanceUID", None) or generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    if "DataSetTrailingPadding" in dataset:  # dcmtk drops it when it sends: the data set would not be the same
        del dataset.DataSetTrailingPadding
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.split('.')[0]}-{dataset.SOPInstanceUID}.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def ct_series(folder: Path, slices: int, **changes: object) -> list[Path]:
    """`slices` CT slices of one new series (CT_small.dcm with new UIDs, instance numbers 1...)."""
    study, series = generate_uid(), generate_uid()
    return [sample("CT_small.dcm", folder, StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=n + 1,
                   **changes) for n in range(slices)]


def dcmtk(tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A dcmtk tool (echoscu, storescu, findscu, movescu, getscu), calling as SCU unless told otherwise."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian package `dcmtk`: scripts/system-packages.sh)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=timeout)


def call(tool: str, site: NodeSite, *args: str, files: tuple[Path, ...] | list[Path] = (), aet: str = SCU,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`tool -aet SCU -aec RTVAULT args... 127.0.0.1 port files...`"""
    return dcmtk(tool, "-aet", aet, "-aec", NODE, *args, "127.0.0.1", str(site.port), *map(str, files),
                 timeout=timeout)


def answers(found: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """The answers findscu printed (-v): each `Find Response: n (Pending)` data set as keyword → value."""
    out: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in (found.stdout + found.stderr).splitlines():
        line = line.removeprefix("I: ")
        if "Find Response:" in line:
            current = {} if "Pending" in line else None
            if current is not None:
                out.append(current)
        elif current is not None:
            match = re.match(r"\(....,....\) \w\w (?:\[(.*?)\]|\(no value available\)).*#.*?\d+, \d+ (\w+)", line)
            if match:
                current[match.group(2)] = (match.group(1) or "").strip()
    return out


@contextmanager
def storescp(port: int, folder: Path, aet: str = ARCHIVE) -> Iterator[Path]:
    """dcmtk's storescp on 127.0.0.1:`port` writing what it receives to `folder` (each file as sent: -B)."""
    if shutil.which("storescp") is None:
        pytest.skip("storescp is not installed (Debian package `dcmtk`: scripts/system-packages.sh)")
    folder.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(["storescp", "-aet", aet, "-od", str(folder), "+B", "-q",
                              str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port, child)
        yield folder
    finally:
        child.terminate()
        child.wait(timeout=10)


def _wait_port(port: int, child: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f"the server exited with {child.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


@dataclass
class Served:
    """`rtvault dicom serve` in a child process (stderr kept in a file: its log)."""

    child: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str, str]:
        self.child.send_signal(sig)
        out, _ = self.child.communicate(timeout=timeout)
        return self.child.returncode, out, self.log.read_text()


@contextmanager
def served(site: NodeSite, *args: str) -> Iterator[Served]:
    log = site.root / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with log.open("w") as err:
        child = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config_path), "dicom",
                                  "serve", *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    node = Served(child, log)
    try:
        _wait_port(site.port, child)
        yield node
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def held(site: NodeSite) -> dict[str, bytes]:
    """What the store's receipts hold: SOP Instance UID → the stored file's bytes."""
    store = Store.open(site.store)
    return {instance.tags["SOPInstanceUID"]: b"".join(read_object(store.backend, instance.hash))
            for _, instance in receipts.instances(store.backend)}


def data_set(path_or_bytes: Path | bytes) -> bytes:
    """A DICOM file's data set bytes (what travels on the network, what must be identical end to end)."""
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return dataset_of(data)[0]


def held_now(site: NodeSite, node: Node) -> dict[str, bytes]:
    """What a running node holds (spool or store), from the catalog: SOP Instance UID → the file's bytes."""
    from rtvault.configured import open_catalog_for

    with open_catalog_for(site.config) as catalog:
        rows = catalog.execute("SELECT sop_instance, hash FROM dicom_instances")
    return {uid: node.receiver.read(digest) for uid, digest in rows}
