"""`rtvault archive sweep` (the inbox: archives ingested, moved, never deleted), and what is not a regular file (a
fifo, a device) refused by `archive ingest` and the sweep without being read."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from kit.archive import members_of, pinnacle_tar
from kit.cli import first_json, run_cli
from kit.vault import Vault

# --- the inbox ---------------------------------------------------------------------------------------------------

def test_inbox_sweep_ingests_moves_and_never_deletes(vault: Vault, tmp_path: Path) -> None:
    paths = vault.patient_paths()
    built = tmp_path / "built"
    built.mkdir()
    whole = pinnacle_tar(vault.root, built / "whole.tar", [paths[1], paths[0]])
    last = max((m for m in members_of(whole) if m.isfile() and m.name.startswith(paths[0])), key=lambda m: m.size)
    dropped = {
        "a.tar.gz": pinnacle_tar(vault.root, built / "a.tar.gz", [paths[2]], gz=True).read_bytes(),
        "b.tar": pinnacle_tar(vault.root, built / "b.tar", [paths[3]]).read_bytes(),
        "damaged.tar": whole.read_bytes()[: last.offset_data + last.size // 2],  # a DVD read only in part
        "notes.txt": b"liste des patients\n",
    }
    for name, data in dropped.items():
        (vault.inbox / name).write_bytes(data)

    result = vault.cli_json("archive", "sweep", expect=9)  # a damaged archive and a non-archive: partial
    assert result["archived"] == []
    assert sorted(a["file"] for a in result["ingested"]) == ["a.tar.gz", "b.tar", "damaged.tar"]
    assert [p["file"] for p in result["problems"]] == [str(vault.inbox / "notes.txt")]
    assert "not a tar" in result["problems"][0]["message"]
    damaged = next(a for a in result["ingested"] if a["file"] == "damaged.tar")
    assert damaged["damaged"] is True and damaged["patients"], damaged
    assert [(p["path"], p["complete"]) for p in damaged["patients"]] == [(paths[1], True), (paths[0], False)]

    # moved aside once stored, byte for byte; the non-archive stays where it was dropped
    assert sorted(p.name for p in vault.inbox.iterdir()) == ["ingested", "notes.txt"]
    for name, data in dropped.items():
        where = vault.inbox / name if name == "notes.txt" else vault.inbox / "ingested" / name
        assert where.read_bytes() == data
    stored = {a["id"] for a in vault.archives()}
    assert stored == {hashlib.sha256(data).hexdigest() for name, data in dropped.items() if name != "notes.txt"}

    # another file of the same name dropped later: stored too, and the first one is not overwritten
    (vault.inbox / "b.tar").write_bytes(pinnacle_tar(vault.root, built / "b2.tar", [paths[0]]).read_bytes())
    again = vault.cli_json("archive", "sweep", expect=9)  # notes.txt is still there, not an archive
    assert [a["file"] for a in again["ingested"]] == ["b.tar"]
    assert [p["file"] for p in again["problems"]] == [str(vault.inbox / "notes.txt")]
    assert (vault.inbox / "ingested" / "b.tar").read_bytes() == dropped["b.tar"]
    assert len(list((vault.inbox / "ingested").iterdir())) == 4
    assert (vault.inbox / "notes.txt").read_bytes() == dropped["notes.txt"]
    assert len(vault.archives()) == 4


def test_a_sweep_that_ingests_only_whole_archives_exits_0_and_the_text_names_what_is_not_whole(
        vault: Vault, tmp_path: Path) -> None:
    paths = vault.patient_paths()
    pinnacle_tar(vault.root, vault.inbox / "whole.tar", [paths[0]])
    assert vault.cli_json("archive", "sweep")["ingested"][0]["damaged"] is False
    whole = pinnacle_tar(vault.root, tmp_path / "two.tar", [paths[1], paths[2]])
    last = max((m for m in members_of(whole) if m.isfile() and m.name.startswith(paths[2])), key=lambda m: m.size)
    (vault.inbox / "cut.tar").write_bytes(whole.read_bytes()[: last.offset_data + last.size // 2])
    done = vault.cli("archive", "sweep", expect=9)
    assert "NOT WHOLE:" in done.stdout and "1 archive(s) ingested damaged or incomplete" in done.stderr


def test_sweep_with_a_missing_inbox_says_so(vault: Vault) -> None:
    shutil.rmtree(vault.inbox)
    done = vault.cli("archive", "sweep", expect=4)
    assert str(vault.inbox) in done.stderr


# --- what is not a regular file ----------------------------------------------------------------------------------

def _store_files(vault: Vault) -> list[str]:
    """The store's files but its locks and journal (the refused ingest is journalled: that is the point)."""
    return sorted(p.relative_to(vault.store_path).as_posix() for p in vault.store_path.rglob("*")
                  if p.is_file() and not {"locks", "journal", "heads"} & set(p.parts))


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused_without_being_read(vault: Vault, tmp_path: Path, kind: str) -> None:
    """`/dev/zero` never ends and opening a FIFO blocks: both are refused at once, naming the path."""
    if kind == "fifo":
        target = tmp_path / "archive.tar"
        os.mkfifo(target)
        words = "named pipe"
    else:
        target = Path("/dev/zero")
        words = "character device"
    before = _store_files(vault)
    done = run_cli("--config", str(vault.config_path), "archive", "ingest", str(target), expect=4, timeout=30)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any(str(target) in line and words in line and "regular file" in line for line in lines), lines
    assert _store_files(vault) == before


def test_a_fifo_inside_a_directory_is_named_and_the_archives_beside_it_ingested(vault: Vault,
                                                                                tmp_path: Path) -> None:
    disc = tmp_path / "disc"
    disc.mkdir()
    good = pinnacle_tar(vault.root, disc / "good.tar", [vault.patient_paths()[0]])
    os.mkfifo(disc / "pipe.tar")
    done = run_cli("--config", str(vault.config_path), "archive", "ingest", str(disc), "--json", expect=4,
                   timeout=60)
    result = first_json(done.stdout)
    assert [a["file"] for a in result["archives"]] == [good.name]
    [error] = result["errors"]
    assert error["file"] == str(disc / "pipe.tar") and "named pipe" in error["error"]


def test_a_fifo_in_the_inbox_is_reported_and_left_alone(vault: Vault, tmp_path: Path) -> None:
    good = pinnacle_tar(vault.root, vault.inbox / "good.tar", [vault.patient_paths()[0]])
    os.mkfifo(vault.inbox / "pipe.tar")
    done = run_cli("--config", str(vault.config_path), "archive", "sweep", "--json", timeout=60, expect=9)
    result = first_json(done.stdout)
    assert [a["file"] for a in result["ingested"]] == [good.name]
    [problem] = result["problems"]
    assert problem["file"] == str(vault.inbox / "pipe.tar") and "named pipe" in problem["message"]
    assert (vault.inbox / "pipe.tar").exists()
