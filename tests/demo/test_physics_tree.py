"""A synthetic physics tree: the machines the generated plans name, commissioning data, scripts and solid models,
the same bytes for the same seed; each evolved day gives one machine a new version, and a real tree is refused."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.demo import parse_any, stamp_of, text_files, tree_state
from rtvault.demo import GeneratedDatabase, evolve_database, generate_physics
from rtvault.errors import InputError
from rtvault.pinnacle.physics import read_machine_file

MACHINE_0 = "Physics/ReadOnlyMachineDB/Machine.0/Pinnacle.Machine"
MACHINE_1 = "Physics/ReadOnlyMachineDB/Machine.1/Pinnacle.Machine"


def machine(root: Path, name: str):
    reading = read_machine_file(root / name, name)
    assert reading.warnings == []
    [found] = reading.machines
    return found


@pytest.fixture(scope="module")
def physics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("physics") / "PinnacleSiteData"
    generate_physics(out)
    return out


def test_the_tree_holds_the_machines_the_generated_plans_name(physics: Path, small_db: GeneratedDatabase) -> None:
    [plan] = sorted(small_db.out.glob("Institution_1/Mount_0/Patient_*/Plan_*/plan.Pinnacle.Machines"))[:1]
    named = read_machine_file(plan, plan.name).machines
    in_tree = [machine(physics, MACHINE_0), machine(physics, MACHINE_1)]
    assert [(m.name, m.version_timestamp, m.energies) for m in in_tree] == \
           [(m.name, m.version_timestamp, m.energies) for m in named]
    assert {m.commissioned_by for m in in_tree} == {"rtvault demo"}
    kinds = {p.relative_to(physics).parts[1] if p.parts[-2] != "Commissioning" else "Commissioning"
             for p in physics.rglob("*") if p.is_file()}
    assert kinds == {"ReadOnlyMachineDB", "Commissioning", "HotScripts", "SolidModels"}
    for path in text_files(physics):  # every file is Pinnacle text, stamped, read without a problem
        assert parse_any(path).problems == [] and stamp_of(path) is not None, path


def test_the_same_seed_writes_the_same_bytes_and_times(physics: Path, tmp_path: Path) -> None:
    generate_physics(tmp_path / "again")
    assert tree_state(tmp_path / "again") == tree_state(physics)
    generate_physics(tmp_path / "other", seed=5)
    assert tree_state(tmp_path / "other") != tree_state(physics)


def test_each_day_gives_one_machine_a_new_version(physics: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(physics, root, copy_function=shutil.copy2)
    first = machine(root, MACHINE_0)
    seen = [first]
    for day, edited in ((1, MACHINE_0), (2, MACHINE_1), (3, MACHINE_0)):
        before = tree_state(root)
        result = evolve_database(root, day)
        after = tree_state(root)
        assert result.edited == [edited] and result.added == result.deleted == []
        assert [p for p in after if p in before and after[p][0] != before[p][0]] == [edited]
        changed = machine(root, edited)
        assert result.recommissioned == [changed.name]
        assert changed.version_timestamp > first.version_timestamp
        written = datetime.fromtimestamp((root / edited).stat().st_mtime, UTC).replace(tzinfo=None)
        assert written.isoformat() == changed.version_timestamp  # the file's time is the new version's
        seen.append(changed)
    again = machine(root, MACHINE_0)
    assert len({m.version_timestamp for m in seen if m.name == again.name}) == 3  # three versions of Machine.0
    calibration = (root / MACHINE_0).read_text("latin-1").split("DosePerMuAtCalibration = ", 1)[1].split(";")[0]
    assert float(calibration) != 0.84  # its first energy's calibration moved


def test_the_same_day_on_two_copies_gives_the_same_bytes(physics: Path, tmp_path: Path) -> None:
    copies = [tmp_path / "a", tmp_path / "b"]
    for copy in copies:
        shutil.copytree(physics, copy, copy_function=shutil.copy2)
        evolve_database(copy, 7)
    assert tree_state(copies[0]) == tree_state(copies[1])


def test_a_real_physics_tree_is_never_changed(pinnacle_sample: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(pinnacle_sample / "Physics", real / "Physics")
    before = tree_state(real)
    with pytest.raises(InputError, match="not written by `rtvault demo physics`"):
        evolve_database(real, 1)
    assert tree_state(real) == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_bytes(b"")
    with pytest.raises(InputError, match="not an empty directory"):
        generate_physics(tmp_path / "full")


def test_the_commands(tmp_path: Path) -> None:
    from rtvault.cli import cli

    out = tmp_path / "site"
    made = CliRunner().invoke(cli, ["demo", "physics", "--out", str(out), "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["machines"] == ["Clinac iX", "TrueBeam STx"]
    day = CliRunner().invoke(cli, ["demo", "evolve", "--db", str(out), "--day", "2"])
    assert day.exit_code == 0 and "recommissioned TrueBeam STx" in day.output, day.output
