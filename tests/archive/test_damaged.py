"""What a damaged archive proves and what it does not, as the operator sees it through the CLI: a gzip checksum
that fails on one wrong byte (the members are unverified, not lost, and restored only with --unverified), a
truncated archive naming every file announced and missing, a truncated .tar.gz salvaged as far as `gzip -dc`
reads it, and statuses that never claim more than the archive proves (a plain tar is "read without error")."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from kit.archive import identity_of, members_of, pinnacle_tar
from kit.files import regular_files
from kit.vault import Vault

UNVERIFIED = "unverified (archive checksum failed)"


def _member_files(archive: Path, path: str) -> list[tarfile.TarInfo]:
    return [m for m in members_of(archive) if m.isfile() and m.name.startswith(path + "/")]


def _one_wrong_byte(vault: Vault, tmp_path: Path) -> tuple[Path, list[str], str]:
    """A two-patient .tar.gz (stored deflate blocks, as a level-0 gzip writes them) with one byte of one file
    changed: gzip decodes every byte, 19 files out of 20 are intact, and the CRC-32 fails. Returns the archive,
    the patients and the damaged file's name."""
    paths = vault.patient_paths()[1:3]
    plain = pinnacle_tar(vault.root, tmp_path / "intact.tar", paths)
    victim = next(m for m in _member_files(plain, paths[1]) if m.name.endswith(".img"))  # CT voxels: unique bytes
    data = plain.read_bytes()
    packed = bytearray(gzip.compress(data, compresslevel=0, mtime=0))
    middle = victim.offset_data + victim.size // 2
    needle = data[middle : middle + 64]
    at = bytes(packed).find(needle)
    assert at > 0 and bytes(packed).count(needle) == 1 and data.count(needle) == 1
    packed[at + 10] ^= 0x01
    out = tmp_path / "one-wrong-byte.tar.gz"
    out.write_bytes(bytes(packed))
    return out, paths, victim.name


def test_a_gzip_checksum_failure_leaves_every_member_unverified_not_lost(vault: Vault, tmp_path: Path) -> None:
    archive, paths, victim = _one_wrong_byte(vault, tmp_path)
    done = vault.cli("archive", "ingest", str(archive), "--json", expect=9)  # stored, but nothing proven
    [found] = vault.ingest(archive, expect=9)["archives"]
    assert found["damaged"] is True and found["status"] == "damaged"
    assert any("gzip checksum mismatch" in p for p in found["problems"]), found["problems"]
    shown = vault.show(found["id"])
    files = [m for m in shown["members"] if m["kind"] == "file"]
    assert len(files) >= 20 and all(m["status"] == UNVERIFIED and m["complete"] for m in files), files
    for patient, path in zip(found["patients"], paths, strict=True):
        expected = identity_of(vault.root / path)
        assert {key: patient[key] for key in expected} == expected  # the Patient file is read, though unverified
        assert patient["lost"] == [] and patient["missing"] == [] and patient["complete"] is False
        assert sorted(patient["unverified"]) == sorted(f"{path}/{name}" for name in regular_files(vault.root / path))
    assert "Traceback" not in done.stderr

    # without --unverified: nothing at all is written, not even the Institution file, and every file is named
    out = tmp_path / "out"
    refused = vault.cli("restore", "--patient", paths[1], "--to", str(out), "--from-archive", found["id"], expect=9)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    for name in regular_files(vault.root / paths[1]):
        assert f"NOT RESTORED: {paths[1]}/{name}: {UNVERIFIED}, not written without --unverified" in refused.stderr
    assert "nothing was written" in refused.stderr

    # with --unverified: written, each named as such; 19 of 20 byte-identical, the damaged one is the one named
    written = vault.cli("restore", "--patient", paths[1], "--to", str(out), "--from-archive", found["id"],
                        "--unverified")
    source, restored = regular_files(vault.root / paths[1]), regular_files(out / paths[1])
    assert restored.keys() == source.keys() and (out / "Institution").is_file()
    differ = [name for name in source if restored[name] != source[name]]
    assert differ == [victim.removeprefix(paths[1] + "/")]
    for name in source:
        assert f"written UNVERIFIED (archive checksum failed, may hold a wrong byte): {paths[1]}/{name}" in \
            written.stderr


def test_unverified_needs_an_archive(vault: Vault, tmp_path: Path) -> None:
    done = vault.cli("restore", "--patient", "x", "--to", str(tmp_path / "out"), "--unverified", expect=4)
    assert "--from-archive" in done.stderr


@pytest.mark.parametrize("where", ["in a plan", "in an image set"])
def test_a_truncated_archive_names_every_announced_file_that_is_missing(vault: Vault, tmp_path: Path,
                                                                        where: str) -> None:
    paths = vault.patient_paths()[:3]  # the first has three plans and two image sets
    first = paths[0]
    intact = pinnacle_tar(vault.root, tmp_path / "intact.tar", paths)
    files = _member_files(intact, first)
    wanted = f"{first}/Plan_0/" if where == "in a plan" else f"{first}/ImageSet_0."
    cut_in = max((m for m in files if m.name.startswith(wanted)), key=lambda m: m.size)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(intact.read_bytes()[: cut_in.offset_data + cut_in.size // 2])

    [found] = vault.ingest(cut, expect=9)["archives"]
    assert any(f"archive truncated at offset {cut.stat().st_size}" in p for p in found["problems"]), found["problems"]
    assert found["missing"] == paths[1:]  # listed in the Institution header, never reached
    [patient] = found["patients"]
    assert patient["lost"] == [cut_in.name] and patient["complete"] is False
    if where == "in a plan":  # the Patient file was read: the plans it lists and the archive lacks are named
        assert patient["missing"] == [f"{first}/Plan_1/ (plan listed in the Patient file)",
                                       f"{first}/Plan_2/ (plan listed in the Patient file)"]
        assert patient["last_name"] == identity_of(vault.root / first)["last_name"]
    else:  # the cut came before the Patient file: that it is missing is all the archive can say
        assert patient["missing"] == [f"{first}/Patient"]
        assert patient["last_name"]  # from the Institution header's PatientLite
    for name in [*patient["missing"], *found["missing"]]:
        assert any(name in p for p in found["problems"]), (name, found["problems"])

    text = vault.cli("archive", "ingest", str(cut), expect=9).stdout
    for line in [f"{cut_in.name}: lost", *(f"{m}: announced but absent" for m in patient["missing"]),
                 *(f"{p}: listed in the Institution header, absent from the archive" for p in paths[1:])]:
        assert f"NOT WHOLE: {line}" in text, (line, text)

    out = tmp_path / "out"
    done = vault.cli("restore", "--patient", first, "--to", str(out), "--from-archive", found["id"], expect=9)
    for name in [cut_in.name, *patient["missing"]]:
        assert f"NOT RESTORED: {name.split(' (')[0]}" in done.stderr, (name, done.stderr)
    restored, source = regular_files(out / first), regular_files(vault.root / first)
    assert restored.items() < source.items()


def _gzip_dc(data: bytes) -> int:
    """How many bytes `gzip -dc` recovers from (possibly truncated) gzip data."""
    if shutil.which("gzip") is None:
        pytest.skip("gzip is not installed")
    return len(subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=False).stdout)


def _shortest_cut_keeping(data: bytes, end: int) -> int:
    """The shortest prefix of the gzip data from which `gzip -dc` recovers at least `end` bytes."""
    low, high = 0, len(data)
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if _gzip_dc(data[:middle]) < end else (low, middle)
    return low


@pytest.mark.parametrize("fill", ["cut", "zero-filled"])
def test_a_truncated_tar_gz_keeps_everything_gzip_recovers(vault: Vault, tmp_path: Path, fill: str) -> None:
    """Cut just after a member that gzip -dc recovers whole: that member is complete and restored. A copy cut
    short and filled with zeros to its size (a disc image) is the same truncation: the zeros, which zlib would
    decode into garbage, never complete the cut member with wrong bytes."""
    paths = vault.patient_paths()[1:]
    intact = pinnacle_tar(vault.root, tmp_path / "intact.tar.gz", paths, gz=True)
    members = [m for m in members_of(intact) if m.isfile()]
    with tarfile.open(intact) as tar:
        digests = {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in members}  # type: ignore[union-attr]
    data = intact.read_bytes()
    targets = [f"{paths[1]}/Patient", f"{paths[2]}/Patient", max(members, key=lambda m: m.size).name]
    for number, target in enumerate(targets):
        member = next(m for m in members if m.name == target)
        kept = data[: _shortest_cut_keeping(data, member.offset_data + member.size)]
        cut = tmp_path / f"cut-{number}.tar.gz"
        cut.write_bytes(kept if fill == "cut" else kept + bytes(len(data) - len(kept)))
        recovered = _gzip_dc(kept)
        [found] = vault.ingest(cut, expect=9)["archives"]
        assert any("archive truncated at offset" in p and "compressed stream ends early" in p
                   for p in found["problems"]), found["problems"]
        shown = {m["name"]: m for m in vault.show(found["id"])["members"]}
        for whole in (m for m in members if m.offset_data + m.size <= recovered):
            assert shown[whole.name]["complete"], (target, whole.name, recovered)
            assert shown[whole.name]["status"] == "read without error"  # no checksum reached: not "verified"
        for name, seen in shown.items():
            if seen["kind"] == "file" and seen["complete"]:
                assert seen["hash"] == digests[name], f"{name} is complete with wrong bytes"
        for path in paths:
            if all(m.offset_data + m.size <= recovered for m in members if m.name.startswith(path + "/")):
                out = tmp_path / f"out-{number}-{path.rsplit('_', 1)[1]}"
                vault.cli("restore", "--patient", path, "--to", str(out), "--from-archive", found["id"])
                assert regular_files(out / path) == regular_files(vault.root / path)


def test_statuses_never_claim_more_than_the_archive_proves(vault: Vault, tmp_path: Path) -> None:
    path = vault.patient_paths()[1]
    plain = pinnacle_tar(vault.root, tmp_path / "p.tar", [path])
    packed = pinnacle_tar(vault.root, tmp_path / "p.tar.gz", [path], gz=True)
    found = {a["file"]: a for a in vault.ingest(plain, packed)["archives"]}
    assert found["p.tar"]["status"] == "read without error" and found["p.tar"]["damaged"] is False
    assert found["p.tar.gz"]["status"] == "verified" and found["p.tar.gz"]["damaged"] is False
    for name, status in (("p.tar", "read without error"), ("p.tar.gz", "verified")):
        members = vault.show(found[name]["id"])["members"]
        assert {m["status"] for m in members if m["kind"] == "file"} == {status}, name
    listing = vault.cli("archive", "list").stdout
    line = {name: next(row for row in listing.splitlines() if f"  {name}  " in row) for name in found}
    assert "read without error" in line["p.tar"] and "verified" not in line["p.tar"]
    assert "verified" in line["p.tar.gz"]
    assert "status: read without error" in vault.cli("archive", "show", found["p.tar"]["id"]).stdout


def test_a_patient_of_whom_only_the_folder_survives_restores_nothing_and_says_so(vault: Vault,
                                                                                  tmp_path: Path) -> None:
    """Cut just after the third patient's folder header: restoring it would write only the Institution file."""
    paths = vault.patient_paths()[1:]
    intact = pinnacle_tar(vault.root, tmp_path / "intact.tar", paths)
    folder = next(m for m in members_of(intact) if m.isdir() and m.name.rstrip("/") == paths[2])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(intact.read_bytes()[: folder.offset_data])
    [found] = vault.ingest(cut, expect=9)["archives"]
    patient = next(p for p in found["patients"] if p["path"] == paths[2])
    assert patient["complete"] is False and patient["files"] == 0 and patient["missing"] == [f"{paths[2]}/Patient"]
    out = tmp_path / "out"
    done = vault.cli("restore", "--patient", paths[2], "--to", str(out), "--from-archive", found["id"], expect=9)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), "the Institution file alone was written"
    assert f"NOT RESTORED: {paths[2]}/Patient: announced but absent from the archive" in done.stderr
    assert "restored nothing" in done.stdout and "nothing was written" in done.stderr
    summary = vault.cli_json("restore", "--patient", paths[2], "--to", str(out), "--from-archive", found["id"],
                             expect=9)
    assert summary["files"] == 0 and summary["incomplete"] == [
        f"{paths[2]}/Patient: announced but absent from the archive"]


def test_a_web_restore_of_a_patient_with_unverified_members_restores_nothing(vault: Vault, tmp_path: Path) -> None:
    """For Pinnacle a patient is whole or absent: the web restore (no --unverified there) refuses a patient whose
    archive members are unverified, names them, and leaves no folder behind."""
    import dataclasses

    from rtvault.errors import StoreError
    from rtvault.jobs.deliver import Chosen, restore_to_dir

    archive, paths, _victim = _one_wrong_byte(vault, tmp_path)
    [found] = vault.ingest(archive, expect=9)["archives"]
    restores = tmp_path / "restores"
    restores.mkdir()
    config = vault.config
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, restore_dir=restores))
    patient = next(p for p in found["patients"] if p["path"] == paths[1])
    chosen = Chosen({**patient, "key": "0123456789abcdef"}, {"version": "v"},
                    {"kind": "archive", "ref": found["id"], "store": "primary"})
    with pytest.raises(StoreError, match="cannot be restored whole from the archive") as refused:
        restore_to_dir(config, chosen)
    assert UNVERIFIED in str(refused.value)
    assert list(restores.iterdir()) == []
