"""Issue 16, item 1: the node's memory does not grow with the object's size. A 1 GiB object sent by dcmtk's
storescu is received, spooled and sealed by `rtvault dicom serve` with a peak resident memory far below its size,
and exported back (`rtvault export dicom --what received`) byte for byte."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from kit.cli import rtvault
from kit.dicom_large import data_set_digest, peak_rss, write_large
from kit.dicom_node import call, make_site, served

SIZE = 1 << 30
BOUND = 300 << 20


@pytest.mark.slow
def test_a_1gib_object_is_received_in_bounded_memory(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    big = tmp_path / "large.dcm"
    write_large(big, SIZE, patient_id="LARGE-0001")
    sent_digest = data_set_digest(big)
    with served(site) as node:
        sent = call("storescu", site, files=[big], timeout=600)
        assert sent.returncode == 0, sent.stderr
        spool = site.store / "dicom" / "spool"
        deadline = time.monotonic() + 300
        while list(spool.glob("*.spool")) and time.monotonic() < deadline:  # sealed into the store
            time.sleep(0.5)
        assert not list(spool.glob("*.spool")) and not list(spool.glob("*.incoming"))
        peak = peak_rss(node.child.pid)
        code, _out, log = node.stop()
    assert code == 0, log
    assert peak < BOUND, f"peak RSS {peak >> 20} MiB for a {SIZE >> 20} MiB object"
    big.unlink()
    out = tmp_path / "export"
    done = rtvault(site.config_path, "export", "dicom", "--patient", "LARGE-0001", "--what", "received",
                   "--to", out, timeout=600)
    assert done.returncode == 0, done.stderr
    [exported] = [p for p in out.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert data_set_digest(exported) == sent_digest
    exported.unlink()  # 1 GiB: not left in the basetemp
    shutil.rmtree(site.store)
