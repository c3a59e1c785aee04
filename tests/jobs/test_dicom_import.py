"""`rtvault dicom import`: folders, DICOMDIR media and zip files stored as the node stores what peers send, byte for
byte behind rtvault's meta and once however often imported; what is not DICOM, hostile or refused named, nothing
written outside the store, and no import beside a running node."""

from __future__ import annotations

import bz2
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet

from kit.cli import rtvault
from kit.config import write_config
from rtvault.config import load
from rtvault.configured import open_catalog_for
from rtvault.dicom.received import dataset_of, describe, part10
from rtvault.errors import InputError, LockBusy
from rtvault.jobs.dicom_import import import_dicom
from rtvault.jobs.dicom_receive import Receiver
from rtvault.store import Store, receipts
from rtvault.store.objects import read_object

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm")


def sample(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def as_stored(data: bytes) -> bytes:
    """The file the vault keeps for a medium's file: its data set behind rtvault's meta."""
    dataset, syntax = dataset_of(data)
    tags = describe(data)
    return part10(dataset, tags["SOPClassUID"], tags["SOPInstanceUID"], syntax)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    (tmp_path / "db").mkdir()
    Store.init(tmp_path / "store")
    return write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"},
                        catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})


def held(store_path: Path) -> dict[str, tuple[bytes, str, str]]:
    """SOP instance UID → (bytes in the store, origin, source) of every received object."""
    store = Store.open(store_path)
    return {i.tags["SOPInstanceUID"]: (b"".join(read_object(store.backend, i.hash)), i.origin, i.source)
            for _r, i in receipts.instances(store.backend)}


def test_a_folder_is_imported_byte_for_byte_once_and_what_is_not_dicom_is_named(tmp_path: Path,
                                                                                 config_path: Path) -> None:
    medium = tmp_path / "usb"
    (medium / "A" / "B").mkdir(parents=True)
    for index, name in enumerate(SAMPLES):
        (medium / ("A/B" if index % 2 else "A") / f"IM{index}").write_bytes(sample(name))
    (medium / "notes.txt").write_text("not DICOM\n")
    (medium / "A" / "link").symlink_to("/etc/passwd")
    os.mkfifo(medium / "A" / "pipe")  # opened, it would block the import
    report = import_dicom(load(config_path), [medium])
    assert (report.stored, report.duplicates) == (len(SAMPLES), 0)
    assert {n.source: n.why for n in report.not_imported} == {
        str(medium / "A" / "link"): "a symbolic link: not followed",
        str(medium / "A" / "pipe"): "neither a file nor a folder (a device, a pipe or a socket): not read",
        str(medium / "notes.txt"): "not a DICOM file (no DICM preamble, and no data set at its start)"}
    assert report.verdict().code == 9
    kept = held(tmp_path / "store")
    for index, name in enumerate(SAMPLES):
        data = sample(name)
        stored, origin, source = kept[describe(data)["SOPInstanceUID"]]
        assert stored == as_stored(data) and origin == "import"
        assert source == str(medium / ("A/B" if index % 2 else "A") / f"IM{index}")
    again = import_dicom(load(config_path), [medium])
    assert (again.stored, again.duplicates) == (0, len(SAMPLES))
    assert len(list(receipts.instances(Store.open(tmp_path / "store").backend))) == len(SAMPLES)
    with open_catalog_for(load(config_path)) as catalog:
        assert catalog.one("SELECT count(*) FROM dicom_instances WHERE origin = 'import'")[0] == len(SAMPLES)


def test_a_dicomdir_medium_is_followed_and_files_it_does_not_name_are_still_looked_at(tmp_path: Path,
                                                                                       config_path: Path) -> None:
    fileset = FileSet()
    for name in ("CT_small.dcm", "rtplan.dcm", "rtdose.dcm"):
        dataset = dcmread(get_testdata_file(name))
        dataset.InstanceNumber = dataset.get("InstanceNumber") or 1  # a DICOMDIR record needs it
        fileset.add(dataset)
    cd = tmp_path / "cdrom"
    fileset.write(cd)
    (cd / "EXTRA").write_bytes(sample("rtstruct.dcm"))  # on the medium, not in its DICOMDIR
    named = sorted(p for p in cd.rglob("*") if p.is_file() and p.name not in ("DICOMDIR", "EXTRA"))
    named[0].unlink()  # a damaged medium: the DICOMDIR names a file that is gone
    report = import_dicom(load(config_path), [cd / "DICOMDIR"])
    assert report.dicomdirs == [str(cd / "DICOMDIR")]
    assert (report.stored, report.duplicates) == (3, 0)
    assert [(n.source, n.why) for n in report.not_imported] == \
        [(str(named[0]), "named by the DICOMDIR but missing from the medium")]
    kept = held(tmp_path / "store")
    assert {source for _b, _o, source in kept.values()} == {str(p) for p in named[1:]} | {str(cd / "EXTRA")}
    for path in [*named[1:], cd / "EXTRA"]:
        assert kept[describe(path.read_bytes())["SOPInstanceUID"]][0] == as_stored(path.read_bytes())


def test_a_zip_is_read_in_memory_hostile_members_refused_nothing_extracted(tmp_path: Path, config_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "transfer.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("../../etc/x.dcm", sample("CT_small.dcm"))
        out.writestr("plans/rtplan.dcm", sample("rtplan.dcm"))
        out.writestr("readme.txt", "hello")
        out.writestr("inner.zip", b"PK\x03\x04" + b"\0" * 40)
        link = zipfile.ZipInfo("evil-link")
        link.external_attr = (0o120777 << 16)
        out.writestr(link, "/etc/shadow")
        bomb = zipfile.ZipInfo("bomb.dcm")
        bomb.compress_type = zipfile.ZIP_BZIP2
        out.writestr(bomb, b"\0" * (24 << 20))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted([*os.listdir(tmp_path), "catalog.sqlite"])  # the catalog is made by the first import
    for attempt in range(2):
        report = import_dicom(load(config_path), [bundle])
        assert (report.stored, report.duplicates) == ((2, 0) if attempt == 0 else (0, 2))
        why = {n.source.removeprefix(f"{bundle}!"): n.why for n in report.not_imported}
        assert set(why) == {"readme.txt", "inner.zip", "evil-link", "bomb.dcm"}
        assert "zip bomb" in why["bomb.dcm"] and "symbolic link" in why["evil-link"]
        assert "zip inside the zip" in why["inner.zip"]
    assert sorted(os.listdir(tmp_path)) == before and not os.listdir(work)  # nothing extracted anywhere
    assert not (tmp_path / "etc").exists()
    kept = held(tmp_path / "store")
    stored, _origin, source = kept[describe(sample("CT_small.dcm"))["SOPInstanceUID"]]
    assert stored == as_stored(sample("CT_small.dcm")) and source == f"{bundle}!../../etc/x.dcm"


def test_a_bare_data_set_of_old_media_is_wrapped_and_a_damaged_file_named(tmp_path: Path,
                                                                          config_path: Path) -> None:
    medium = tmp_path / "old"
    medium.mkdir()
    dataset, _syntax = dataset_of(sample("rtplan.dcm"))
    (medium / "PLAN").write_bytes(dataset)  # no preamble, no meta
    (medium / "TORN").write_bytes(sample("CT_small.dcm")[:300])
    (medium / "EMPTY").write_bytes(b"")
    report = import_dicom(load(config_path), [medium])
    assert report.stored == 1
    assert {Path(n.source).name for n in report.not_imported} == {"TORN", "EMPTY"}
    [(stored, _o, _s)] = held(tmp_path / "store").values()
    assert dcmread(io.BytesIO(stored)).SOPInstanceUID == describe(sample("rtplan.dcm"))["SOPInstanceUID"]


def test_import_refuses_to_write_beside_a_running_node_and_a_missing_path(tmp_path: Path, config_path: Path) -> None:
    medium = tmp_path / "usb"
    medium.mkdir()
    (medium / "CT").write_bytes(sample("CT_small.dcm"))
    with pytest.raises(InputError, match="no such file"):
        import_dicom(load(config_path), [medium, tmp_path / "nowhere"])
    with Receiver(load(config_path)), pytest.raises(LockBusy, match="stop `rtvault dicom serve`"):
        import_dicom(load(config_path), [medium])
    assert not receipts.ids(Store.open(tmp_path / "store").backend)


@pytest.mark.slow  # two commands in subprocesses
def test_the_command_says_what_it_did_and_is_in_the_journal(tmp_path: Path, config_path: Path) -> None:
    medium = tmp_path / "usb"
    medium.mkdir()
    (medium / "CT").write_bytes(sample("CT_small.dcm"))
    (medium / "junk").write_bytes(bz2.compress(b"junk"))
    done = rtvault(config_path, "dicom", "import", medium, "--json", expect=9)
    found = json.loads(done.stdout)
    assert (found["files"], found["stored"], found["duplicates"]) == (2, 1, 0)
    assert [n["source"] for n in found["not_imported"]] == [str(medium / "junk")]
    text = rtvault(config_path, "dicom", "import", medium, expect=9)
    assert "1 already there" in text.stdout and f"not imported: {medium / 'junk'}" in text.stderr
    audit = json.loads(rtvault(config_path, "audit", "--action", "dicom_import", "--json").stdout)["entries"]
    assert len(audit) == 2 and all(e["result"].startswith("partial") for e in audit)
