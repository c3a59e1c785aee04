#!/usr/bin/env python3
"""The DICOM node (issue 16): the same storescu stream received by `rtvault dicom serve`, by Orthanc (Debian
package, default SQLite index) and by dcmtk's `storescp` (the ceiling: it writes files and nothing else), on one
association and on two in parallel, in the same run; then C-FIND of one patient among 100,000 studies.

- The stream: `--slices` synthetic CT slices (512 × 512, 16 bits: about 0.5 MB each; a body-like disc with noise,
  so that they compress as real CT does), written once with pydicom, sent by dcmtk `storescu` (one process per
  association, each sending half the files when two run at once), wall time from the first byte to the last
  answer. Each receiver starts empty for each run, with its data on the same file system.
- rtvault: a directory store; `[dicom]` with a free port, `accept_unknown = true`; everything is durable before
  each answer (one fdatasync per group of objects). Orthanc: its default durability. storescp: none.
- Targets (issue 16): rtvault ≥ 1.0× Orthanc's speed on one association, ≥ 1.5× on two; dcmtk reported.
- C-FIND: the catalog filled with `--studies` studies of as many patients (rows as the receiver indexes them),
  then `--queries` STUDY-level C-FINDs by PatientID through pynetdicom on one association; p50 and p95 of each
  answer (target: p95 < 100 ms).

    PYTHONPATH=src:tests .venv/bin/python bench/dicom_node.py --slices 2000
Writes its section of bench/results.md and bench/results-dicom-node.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "src"), str(BENCH.parent / "tests"), str(BENCH)]

import numpy as np  # noqa: E402
from pydicom.dataset import FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402
from sections import write_section  # noqa: E402

from kit.config import write_config  # noqa: E402
from kit.dicom import OrthancServer  # noqa: E402
from kit.files import free_port  # noqa: E402
from rtvault.store import Store  # noqa: E402

AET = "BENCHSCU"


def make_slices(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """`count` CT slices of one synthetic patient (two series when there are many), 512 × 512 16-bit."""
    from pydicom.dataset import FileDataset

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-256:256, -256:256]
    body = ((x / 200.0) ** 2 + (y / 150.0) ** 2 <= 1.0)
    study = generate_uid()
    series = [generate_uid(), generate_uid()]
    frame = generate_uid()
    files = []
    for n in range(count):
        pixels = np.where(body, 1000 + rng.normal(0, 20, body.shape), 0).astype(np.int16) + 24
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"ct{n:05d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID = "BENCH^SYNTHETIC", "BENCH-0001"
        ds.PatientBirthDate, ds.PatientSex = "19600101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series[n * 2 // count]
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20261207", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "", "CT", 1 + n * 2 // count, n + 1
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
        ds.PatientPosition, ds.Manufacturer, ds.AcquisitionNumber = "HFS", "rtvault bench", 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [-250, -250, n * 2.5], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.9765625, 0.9765625], 2.5
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 512, 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.ImageType = -1024, 1, ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = 120
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"ct{n:05d}.dcm", enforce_file_format=True)
        files.append(folder / f"ct{n:05d}.dcm")
    return files


def wait_echo(port: int, aet: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if subprocess.run(["echoscu", "-aet", AET, "-aec", aet, "127.0.0.1", str(port)],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"nothing answers C-ECHO on port {port} as {aet}")


def send(files: list[Path], port: int, aet: str, associations: int) -> float:
    """Wall seconds for `associations` storescu processes to send their share of `files`."""
    shares = [files[i::associations] for i in range(associations)]
    started = time.perf_counter()
    running = [subprocess.Popen(["storescu", "-aet", AET, "-aec", aet, "-R", "127.0.0.1", str(port),
                                 *map(str, share)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for share in shares]
    failures = []
    for process in running:
        _, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            failures.append(err.decode(errors="replace")[-400:])
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"storescu failed to port {port}: {failures[0]}")
    return elapsed


class Rtvault:
    name = "rtvault dicom serve"

    def __init__(self, work: Path) -> None:
        self.work, self.port = work, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        Store.init(self.work / "store")
        config = write_config(self.work / "rtvault.toml", root=self.work / "db",
                              stores={"primary": self.work / "store"},
                              catalog={"url": f"sqlite:///{self.work / 'catalog.sqlite'}"},
                              dicom={"port": self.port, "accept_unknown": True, "ae_title": "RTVAULT"})
        log = open(self.work / "serve.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(config), "dicom", "serve"],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_echo(self.port, "RTVAULT")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    aet = "RTVAULT"


class Orthanc:
    aet = "ORTHANC"

    def __init__(self, work: Path, no_delay: bool = False) -> None:
        self.work = work
        self.no_delay = no_delay  # dcmtk (in Orthanc) disables Nagle when TCP_NODELAY=1 is in its environment
        self.name = "Orthanc, TCP_NODELAY=1" if no_delay else "Orthanc"
        self.server: OrthancServer | None = None

    def start(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        binary = shutil.which("Orthanc")
        if binary is None:
            raise RuntimeError("Orthanc is not installed (Debian package orthanc)")
        self.server = OrthancServer(self.work, binary, aet=self.aet)
        saved = os.environ.get("TCP_NODELAY")
        if self.no_delay:
            os.environ["TCP_NODELAY"] = "1"
        try:
            self.server.start()
        finally:
            if self.no_delay and saved is None:
                os.environ.pop("TCP_NODELAY")
            elif self.no_delay:
                os.environ["TCP_NODELAY"] = saved
        self.port = self.server.dicom_port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class Storescp:
    name = "dcmtk storescp"
    aet = "STORESCP"

    def __init__(self, work: Path) -> None:
        self.work, self.port = work, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        (self.work / "in").mkdir(parents=True)
        self.process = subprocess.Popen(["storescp", "--fork", "-aet", self.aet, "-od", str(self.work / "in"),
                                         str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, env={**os.environ, "TCP_NODELAY": "1"})
        wait_echo(self.port, self.aet)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def cfind_latency(work: Path, studies: int, queries: int) -> dict[str, float]:
    """p50/p95 (ms) of STUDY-level C-FINDs by PatientID with `studies` studies in the catalog."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    from rtvault.catalog import dicom as catalog_dicom
    from rtvault.config import load
    from rtvault.configured import open_catalog_for
    from rtvault.store.receipts import ReceivedInstance

    node = Rtvault(work)
    node.start()
    node.stop()  # made the store and the catalog; filled before the node starts again
    config = load(node.work / "rtvault.toml")
    with open_catalog_for(config) as catalog:
        batch = []
        for n in range(studies):
            tags = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": f"2.25.{10**9 + n}.1",
                    "PatientID": f"P{n:06d}", "PatientName": f"NOM{n % 5000}^PRENOM", "PatientBirthDate": "19600101",
                    "StudyInstanceUID": f"2.25.{10**9 + n}", "SeriesInstanceUID": f"2.25.{10**9 + n}.2",
                    "Modality": "CT", "StudyDate": "20250101"}
            batch.append(ReceivedInstance(f"{n:064x}", 1000, "2026-12-07T00:00:00Z", "BENCH", "RTVAULT", "network",
                                          "", tags))
            if len(batch) == 5000:
                catalog_dicom.add(catalog, "bench", "bench", "", batch)
                batch = []
        if batch:
            catalog_dicom.add(catalog, "bench", "bench", "", batch)
    node.start()
    try:
        ae = AE(ae_title=AET)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        def no_delay(event: evt.Event) -> None:  # a client without it waits ~40 ms per answer (delayed ACKs)
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        assoc = ae.associate("127.0.0.1", node.port, ae_title=node.aet, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)])
        if not assoc.is_established:
            raise RuntimeError("rtvault refused the C-FIND association")
        times = []
        rng = np.random.default_rng(3)
        for _ in range(queries):
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.PatientID = f"P{int(rng.integers(studies)):06d}"
            query.StudyInstanceUID = ""
            query.StudyDate = ""
            started = time.perf_counter()
            answers = [status for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
            times.append((time.perf_counter() - started) * 1000)
            if not answers:
                raise RuntimeError("no answer to C-FIND")
        assoc.release()
    finally:
        node.stop()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "queries": queries, "studies": studies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=2000)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--skip-find", action="store_true",
                        help="keep the C-FIND figures of the last run measuring them")
    args = parser.parse_args()
    for tool in ("storescu", "storescp", "echoscu"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian package dcmtk)")
    work = args.work or Path(tempfile.mkdtemp(prefix="rtvault-bench-dicom-"))
    files = make_slices(work / "slices", args.slices)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    receivers = [Rtvault(work / "rtvault"), Orthanc(work / "orthanc"), Orthanc(work / "orthanc-nd", no_delay=True),
                 Storescp(work / "storescp")]
    results: dict[str, dict[str, float]] = {}
    for associations in (1, 2):
        for receiver in receivers:
            receiver.start()
            try:
                seconds = send(files, receiver.port, receiver.aet, associations)
            finally:
                receiver.stop()
            results.setdefault(receiver.name, {})[f"{associations}"] = round(seconds, 2)
            print(f"{receiver.name}, {associations} association(s): {seconds:.2f} s "
                  f"({args.slices / seconds:.0f} objects/s)", flush=True)
    find = cfind_latency(work / "find", args.studies, args.queries) if not args.skip_find else _earlier_find()
    mine, orthanc = results["rtvault dicom serve"], results["Orthanc"]
    ratio = {n: round(orthanc[n] / mine[n], 2) for n in ("1", "2")}
    document = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "slices": args.slices,
                "megabytes": round(size_mb, 1), "seconds": results, "speed_vs_orthanc": ratio, "cfind": find}
    (BENCH / "results-dicom-node.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    lines = ["## DICOM node: storescu stream received, C-FIND (bench/dicom_node.py)", "",
             f"{args.slices} CT slices ({size_mb:.0f} MB), sent by dcmtk storescu (its defaults: Nagle's algorithm "
             "on); each receiver empty at the start of each run, on the same disk. Speed vs Orthanc = Orthanc's time ÷ "
             "rtvault's (higher is better; targets ≥ 1.0 on one association, ≥ 1.5 on two), Orthanc as installed. "
             "rtvault sets TCP_NODELAY on its sockets; Orthanc is also run with dcmtk's TCP_NODELAY=1 (its one "
             "setting for it), and storescp, the ceiling (it makes nothing durable), always is.", "",
             "| receiver | 1 association (s) | 2 associations (s) |", "|---|---|---|"]
    lines += [f"| {name} | {t['1']} | {t['2']} |" for name, t in results.items()]
    lines += ["", f"rtvault vs Orthanc: **{ratio['1']}×** on one association, **{ratio['2']}×** on two "
              f"(dcmtk storescp, which makes nothing durable, is the ceiling)."]
    if (fast := results.get("Orthanc, TCP_NODELAY=1")) is not None:
        lines += ["", f"Against Orthanc with dcmtk's TCP_NODELAY=1: {round(fast['1'] / mine['1'], 2)}× on one "
                  f"association, {round(fast['2'] / mine['2'], 2)}× on two. rtvault gains little from a second "
                  "association (one Python process: pynetdicom's PDU handling holds the interpreter); every object "
                  "is fsynced before its answer (one fdatasync per group), where Orthanc's durability is its own "
                  "default."]
    if find:
        when = f" (measured {find['measured'][:10]}, kept by a run with --skip-find)" if "measured" in find else ""
        lines += ["", f"C-FIND (STUDY level, by PatientID) among {find['studies']:,} studies: p50 {find['p50_ms']} ms, "
                  f"**p95 {find['p95_ms']} ms** over {find['queries']} queries (target < 100 ms){when}."]
    write_section(BENCH / "results.md", "dicom-node", "\n".join(lines))
    print(json.dumps(document, indent=1))


def _earlier_find() -> dict | None:
    """The C-FIND figures of the last run that measured them (its set-up, 100,000 patients indexed, takes some
    25 minutes), with the date they were measured; None when there is none."""
    try:
        earlier = json.loads((BENCH / "results-dicom-node.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    find = earlier.get("cfind")
    return None if not find else {"measured": earlier["time"], **find} if "measured" not in find else find


if __name__ == "__main__":
    main()
