"""Damaged and hostile archives: a DVD read only in part, a tape dump cut short, a gzip stream with rotten bytes,
a broken header mid-archive; members with absolute paths, `..`, links, devices, fifos and absurd sizes.

What a user checks: never a traceback; the patients before the damage complete and restored byte-identical;
the damaged patient reported incomplete, with the files lost, and what survives of it restorable; and nothing
ever created outside the destination, never a link, device or fifo.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from kit.archive import (
    add_member,
    assert_only_files_and_dirs,
    entries_of,
    filtered_header,
    gnu_tar,
    members_of,
    pinnacle_tar,
)
from kit.files import regular_files
from kit.vault import Vault
from rtvault.jobs.archives import restore_from_archive

# --- damaged archives --------------------------------------------------------------------------------------------


class Damage:
    """A three-patient archive made with GNU tar, its intact layout, and the source to compare with."""

    def __init__(self, vault: Vault, tmp_path: Path, gz: bool) -> None:
        self.vault, self.tmp = vault, tmp_path
        self.paths = vault.patient_paths()[1:]  # the three smaller patients
        self.intact = pinnacle_tar(vault.root, tmp_path / ("intact.tar.gz" if gz else "intact.tar"), self.paths, gz=gz)
        self.members = members_of(self.intact)

    def patient_of(self, name: str) -> str | None:
        return next((p for p in self.paths if name == p or name.startswith(p + "/")), None)

    def files(self, path: str) -> list[tarfile.TarInfo]:
        return [m for m in self.members if m.isfile() and self.patient_of(m.name) == path]

    def write(self, name: str, data: bytes) -> Path:
        damaged = self.tmp / name
        damaged.write_bytes(data)
        return damaged

    def ingest(self, damaged: Path) -> dict:
        """Ingested by the CLI (exit 9: stored, but partly unreadable; no traceback): the archive as
        `archive ingest --json` describes it."""
        [found] = self.vault.ingest(damaged, expect=9)["archives"]
        assert found["damaged"] is True and found["status"] == "damaged", found
        return found

    def restore(self, shown: dict, path: str) -> tuple[dict, list[str]]:
        """The files restored, and those named as not restored."""
        destination = self.tmp / f"restored-{len(list(self.tmp.glob('restored-*')))}"
        summary = restore_from_archive(self.vault.store, path, destination, archive_id=shown["id"])
        return regular_files(destination / path), summary.incomplete

    def check_salvage(self, shown: dict) -> dict[str, dict]:
        """The invariants of a salvaged archive; returns its patients by path."""
        patients = {p["path"]: p for p in shown["patients"]}
        assert set(patients) <= set(self.paths)
        for path, patient in patients.items():
            source = regular_files(self.vault.root / path)
            restored, incomplete = self.restore(shown, path)
            assert restored.items() <= source.items(), f"{path}: a restored file differs from the original"
            if patient["complete"]:
                assert restored == source, f"{path} is reported complete but restores {len(restored)} of " \
                                           f"{len(source)} files"
                assert patient["lost"] == patient["unverified"] == patient["missing"] == [] and incomplete == []
            else:
                lost = {name.removeprefix(path + "/") for name in patient["lost"] + patient["unverified"]}
                assert lost <= source.keys()
                assert not lost & restored.keys(), "a lost or unverified file was written"
                named = patient["lost"] + patient["unverified"] + patient["missing"]
                assert all(any(s.startswith(name + ":") for s in incomplete) for name in named), incomplete
                if not restored:
                    assert incomplete, "nothing restored and nothing said"
        return patients


@pytest.fixture(params=[False, True], ids=["tar", "tar.gz"])
def damage(vault: Vault, tmp_path: Path, request: pytest.FixtureRequest) -> Damage:
    return Damage(vault, tmp_path, request.param)


@pytest.fixture
def plain(vault: Vault, tmp_path: Path) -> Damage:
    return Damage(vault, tmp_path, False)


def _biggest(files: list[tarfile.TarInfo]) -> tarfile.TarInfo:
    return max(files, key=lambda m: m.size)


@pytest.mark.parametrize("where", ["first patient's data", "second patient's data", "before the end marker"])
def test_truncated_tar(plain: Damage, where: str) -> None:
    first, second, third = plain.paths
    data = plain.intact.read_bytes()
    if where == "before the end marker":
        cut, hit, after = plain.members[-1].offset_data + plain.members[-1].size, None, []
    else:
        hit = first if where.startswith("first") else second
        member = _biggest(plain.files(hit))
        cut = member.offset_data + member.size // 2
        after = [second, third] if hit == first else [third]
    shown = plain.ingest(plain.write("cut.tar", data[:cut]))
    patients = plain.check_salvage(shown)
    assert any("end-of-archive" in p or "ends" in p for p in shown["problems"]), shown["problems"]
    for path in plain.paths:
        if path == hit:
            assert patients[path]["complete"] is False
            assert patients[path]["lost"] == [member.name]
        elif path in after:
            assert path not in patients
        elif path == third and hit is None:
            # every member read is whole, but a tar cut at a member boundary cannot say whether files followed
            assert patients[path]["complete"] is False and patients[path]["lost"] == []
        else:
            assert patients[path]["complete"] is True


@pytest.mark.parametrize("where", ["at a member boundary", "inside a member header"])
def test_truncated_tar_between_members_of_a_patient(plain: Damage, where: str) -> None:
    second = plain.paths[1]
    files = plain.files(second)
    member = files[len(files) // 2]
    cut = member.offset + (0 if where == "at a member boundary" else 300)
    shown = plain.ingest(plain.write("cut.tar", plain.intact.read_bytes()[:cut]))
    patients = plain.check_salvage(shown)
    assert patients[second]["complete"] is False


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.8])
def test_truncated_tar_gz(vault: Vault, tmp_path: Path, fraction: float) -> None:
    damage = Damage(vault, tmp_path, True)
    data = damage.intact.read_bytes()
    shown = damage.ingest(damage.write("cut.tar.gz", data[: int(len(data) * fraction)]))
    assert any("corrupt compressed data" in p or "ends" in p for p in shown["problems"]), shown["problems"]
    patients = damage.check_salvage(shown)
    assert patients, "nothing salvaged"
    assert any(not p["complete"] for p in patients.values())
    found = list(patients)
    assert found == damage.paths[: len(found)], "patients are found in archive order, none skipped"


def test_tar_gz_without_its_gzip_trailer(vault: Vault, tmp_path: Path) -> None:
    """The last 8 bytes (CRC and size) lost: everything is there, but the archive cannot be proven intact."""
    damage = Damage(vault, tmp_path, True)
    shown = damage.ingest(damage.write("cut.tar.gz", damage.intact.read_bytes()[:-8]))
    patients = damage.check_salvage(shown)
    assert sorted(patients) == damage.paths
    assert all(p["complete"] for p in patients.values())


def test_corrupt_gzip_stream(vault: Vault, tmp_path: Path) -> None:
    damage = Damage(vault, tmp_path, True)
    data = bytearray(damage.intact.read_bytes())
    middle = len(data) // 2
    for offset in range(middle, middle + 64):
        data[offset] ^= 0xFF
    shown = damage.ingest(damage.write("rotten.tar.gz", bytes(data)))
    assert any("corrupt compressed data" in p or "gzip checksum mismatch" in p for p in shown["problems"]), \
        shown["problems"]
    patients = damage.check_salvage(shown)
    assert any(not p["complete"] for p in patients.values())


def _break_header(damage: Damage, member: tarfile.TarInfo) -> Path:
    data = bytearray(damage.intact.read_bytes())
    data[member.offset : member.offset + 512] = b"\xa5" * 512
    return damage.write("broken-header.tar", bytes(data))


def test_broken_member_header_mid_archive(plain: Damage) -> None:
    first, second, third = plain.paths
    files = plain.files(second)
    broken = files[len(files) // 2]
    shown = plain.ingest(_break_header(plain, broken))
    assert any("unreadable header" in p for p in shown["problems"]), shown["problems"]
    patients = {p["path"]: p for p in shown["patients"]}
    assert sorted(patients) == plain.paths  # the scan resynchronised after the broken header
    for path in (first, third):
        assert patients[path]["complete"] is True
        assert plain.restore(shown, path)[0] == regular_files(plain.vault.root / path)
    restored, _skipped = plain.restore(shown, second)
    source = regular_files(plain.vault.root / second)
    assert restored.items() <= source.items()
    assert sorted(source.keys() - restored.keys()) == [broken.name.removeprefix(second + "/")]


def test_broken_member_header_marks_its_patient_incomplete(plain: Damage) -> None:
    second = plain.paths[1]
    files = plain.files(second)
    shown = plain.ingest(_break_header(plain, files[len(files) // 2]))
    assert next(p for p in shown["patients"] if p["path"] == second)["complete"] is False


def test_damaged_archives_through_the_cli(damage: Damage) -> None:
    """The operator's view: `archive show`, `restore --from-archive` of the survivor and of the damaged patient."""
    first, second, _third = damage.paths
    data = damage.intact.read_bytes()
    if damage.intact.suffix == ".gz":
        cut = len(data) * 3 // 4
    else:
        member = _biggest(damage.files(second))
        cut = member.offset_data + member.size // 2
    ingested = damage.ingest(damage.write("cut" + "".join(damage.intact.suffixes), data[:cut]))
    shown = damage.vault.show(ingested["id"])
    assert {p["path"]: p for p in shown["patients"]} == {p["path"]: p for p in ingested["patients"]}
    patients = {p["path"]: p for p in shown["patients"]}
    assert patients[first]["complete"] is True
    broken = next(p for p in shown["patients"] if not p["complete"])
    assert broken["lost"], broken

    out = damage.tmp / "out"
    damage.vault.cli("restore", "--patient", first, "--to", str(out / "a"), "--from-archive", shown["id"])
    assert regular_files(out / "a" / first) == regular_files(damage.vault.root / first)
    done = damage.vault.cli("restore", "--patient", broken["path"], "--to", str(out / "b"), "--from-archive",
                            shown["id"], expect=9)  # a partial result, every file not written named
    lost = broken["lost"][0]
    assert f"NOT RESTORED: {lost}: lost" in done.stderr
    assert all(name in done.stderr for name in broken["missing"]), (broken["missing"], done.stderr)
    assert not (out / "b" / lost).exists()
    source = regular_files(damage.vault.root / broken["path"])
    assert regular_files(out / "b" / broken["path"]).items() <= source.items()
    text = damage.vault.cli("archive", "show", shown["id"]).stdout
    assert "INCOMPLETE" in text and "DAMAGED" in damage.vault.cli("archive", "list").stdout


# --- hostile archives --------------------------------------------------------------------------------------------

def _hostile_archive(vault: Vault, tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """A real patient, then hostile members. Returns the archive, the patient and {member: expected problem}."""
    patient = vault.patient_paths()[0]
    header = filtered_header((vault.root / patient.split("/")[0] / "Institution").read_bytes(), [patient])
    (tmp_path / "Institution").write_bytes(header)
    expected = {
        str(tmp_path / "abs-escape"): "absolute path",
        f"{patient}/../../../../dotdot-escape": "'..'",
        "../../top-escape": "'..'",
        f"{patient}/passwd": "symbolic link",
        f"{patient}/up": "symbolic link",
        f"{patient}/linkdir": "symbolic link",
        f"{patient}/hard": "hard link",
        f"{patient}/hard-up": "hard link",
        f"{patient}/null": "device",
        f"{patient}/disk": "device",
        f"{patient}/fifo": "named pipe",
        f"{patient}/huge": "declared size",
    }
    out = tmp_path / "hostile.tar"
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(tmp_path / "Institution", arcname="Institution")
        tar.add(vault.root / patient, arcname=patient)
        add_member(tar, str(tmp_path / "abs-escape"), b"absolute\n")
        add_member(tar, f"{patient}/../../../../dotdot-escape", b"dotdot\n")
        add_member(tar, "../../top-escape", b"top\n")
        add_member(tar, f"{patient}/passwd", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add_member(tar, f"{patient}/up", kind=tarfile.SYMTYPE, link="../../x")
        add_member(tar, f"{patient}/linkdir", kind=tarfile.SYMTYPE, link=str(tmp_path))
        add_member(tar, f"{patient}/linkdir/through-link", b"written through a link?\n")
        add_member(tar, f"{patient}/hard", kind=tarfile.LNKTYPE, link="/etc/passwd")
        add_member(tar, f"{patient}/hard-up", kind=tarfile.LNKTYPE, link="../../../outside")
        add_member(tar, f"{patient}/hard-in", kind=tarfile.LNKTYPE, link=f"{patient}/Patient")
        add_member(tar, f"{patient}/null", kind=tarfile.CHRTYPE)
        add_member(tar, f"{patient}/disk", kind=tarfile.BLKTYPE)
        add_member(tar, f"{patient}/fifo", kind=tarfile.FIFOTYPE)
    # last, a member declaring 8 GiB (octal size field) followed by 2 KiB and no end marker
    data = bytearray(out.read_bytes())
    while data[-512:] == bytes(512):
        del data[-512:]
    info = tarfile.TarInfo(f"{patient}/huge")
    info.mtime = 1_600_000_000
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    block[124:136] = b"77777777777\0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    out.write_bytes(bytes(data + block + b"y" * 2048))
    (tmp_path / "Institution").unlink()
    return out, patient, expected


def _outside(tmp_path: Path, *inside: Path) -> dict[str, tuple[str, int]]:
    """Every entry of tmp_path except the store and the given destinations."""
    skip = [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "store", *inside)]
    return {name: value for name, value in entries_of(tmp_path).items()
            if not any(name == s or name.startswith(s + "/") for s in skip)}


def test_hostile_members_are_reported_and_never_created(vault: Vault, tmp_path: Path) -> None:
    archive, patient, expected = _hostile_archive(vault, tmp_path)
    passwd = os.stat("/etc/passwd")
    [found] = vault.ingest(archive, expect=9)["archives"]  # "huge" cannot be read whole
    for member, words in expected.items():
        assert any(problem.startswith(member + ":") and words in problem for problem in found["problems"]), \
            (member, words, found["problems"])
    shown = vault.show(found["id"])
    assert shown["patients"][0]["path"] == patient

    destination = tmp_path / "a" / "b" / "restored"
    exported = tmp_path / "a" / "b" / "export.tar"
    extracted = tmp_path / "a" / "b" / "extracted"
    (tmp_path / "a" / "b").mkdir(parents=True)
    before = _outside(tmp_path, destination, exported, extracted)

    done = vault.cli("restore", "--patient", patient, "--to", str(destination), "--from-archive", found["id"],
                     expect=9)  # "huge" is lost: a partial result
    for name in ("passwd", "up", "linkdir", "hard", "hard-up", "null", "disk", "fifo", "huge"):
        assert f"{patient}/{name}" in done.stderr, (name, done.stderr)
    assert f"NOT RESTORED: {patient}/huge: lost" in done.stderr
    vault.cli("archive", "export", "--patient", patient, "--archive", found["id"], "--out", str(exported), expect=9)
    with tarfile.open(exported) as tar:
        for member in tar.getmembers():
            assert member.isfile() or member.isdir(), member.name
            assert not member.name.startswith("/") and ".." not in member.name.split("/"), member.name
            assert member.name == "Institution" or member.name.startswith(patient), member.name
    extracted.mkdir()
    gnu_tar("-xf", exported, "-C", extracted)  # what a colleague does with the exported tar

    assert _outside(tmp_path, destination, exported, extracted) == before
    for where in (destination, extracted):
        assert_only_files_and_dirs(where)
        assert regular_files(where / patient).items() >= regular_files(vault.root / patient).items()
        names = set(os.listdir(where / patient))
        assert names.isdisjoint({"passwd", "up", "hard", "hard-up", "null", "disk", "fifo", "huge"}), names
    assert not (tmp_path / "through-link").exists() and not (tmp_path / "abs-escape").exists()
    assert not (tmp_path / "a" / "dotdot-escape").exists() and not (tmp_path / "top-escape").exists()
    after = os.stat("/etc/passwd")
    assert (after.st_size, after.st_mtime_ns) == (passwd.st_size, passwd.st_mtime_ns)


def test_absurd_base256_size_is_reported(vault: Vault, tmp_path: Path) -> None:
    patient = vault.patient_paths()[1]
    out = tmp_path / "absurd.tar"
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(vault.root / patient, arcname=patient)
    data = bytearray(out.read_bytes())
    while data[-512:] == bytes(512):
        del data[-512:]
    info = tarfile.TarInfo(f"{patient}/petabytes")
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    block[124:136] = b"\x80" + (1 << 60).to_bytes(11, "big")  # GNU base-256: an exabyte
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    out.write_bytes(bytes(data + block + bytes(4096)))
    [found] = vault.ingest(out, expect=9)["archives"]
    assert any("petabytes" in p and "declared size" in p for p in found["problems"]), found["problems"]
    assert found["patients"][0]["lost"] == [f"{patient}/petabytes"]
    destination = tmp_path / "out"
    done = vault.cli("restore", "--patient", patient, "--to", str(destination), "--from-archive", expect=9)
    assert f"NOT RESTORED: {patient}/petabytes: lost" in done.stderr
    assert regular_files(destination / patient) == regular_files(vault.root / patient)
    assert_only_files_and_dirs(destination)


def test_restore_never_writes_through_a_symlink_in_the_destination(vault: Vault, tmp_path: Path) -> None:
    patient = vault.patient_paths()[0]
    found = vault.ingest_one(pinnacle_tar(vault.root, tmp_path / "p.tar", [patient]))
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    os.symlink(outside, destination / patient.split("/")[0])
    done = vault.cli("restore", "--patient", patient, "--to", str(destination), "--from-archive", found["id"],
                     "--force", expect=None)
    assert done.returncode in (4, 8), done.stderr
    assert list(outside.iterdir()) == []


def test_a_member_appended_twice_restores_its_last_copy(vault: Vault, tmp_path: Path) -> None:
    patient = vault.patient_paths()[2]
    archive = pinnacle_tar(vault.root, tmp_path / "appended.tar", [patient])
    update = tmp_path / "update"
    (update / patient).mkdir(parents=True)
    (update / patient / "Patient").write_bytes((vault.root / patient / "Patient").read_bytes() + b"// updated\n")
    gnu_tar("-rf", archive, "-C", update, f"{patient}/Patient")
    found = vault.ingest_one(archive)
    assert found["damaged"] is False
    vault.cli("restore", "--patient", patient, "--to", str(tmp_path / "out"), "--from-archive")
    assert (tmp_path / "out" / patient / "Patient").read_bytes().endswith(b"// updated\n")
