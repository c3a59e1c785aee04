"""Machines read from the real sample (a PinnacleSiteData machine and a plan's plan.Pinnacle.Machines), from the
demo's files, and from hostile ones: truncated at every kind of place, Latin-1, keys missing or of the wrong type.
A patient record names the machines its plans name, and only then writes the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtvault.demo.machines import MACHINE_NAMES, machines_bytes
from rtvault.pinnacle.model import PatientRecord
from rtvault.pinnacle.patient import read_patient
from rtvault.pinnacle.physics import Energy, read_machine_file, read_machines

SAMPLE_MACHINE = "Physics/ReadOnlyMachineDB/Machine.0/Pinnacle.Machine"
SAMPLE_PATIENT = "Institution_1/Mount_0/Patient_1"
STAMP = b"\n/* \x8a\x13 */\n"


def machine_text(name: str = "Salle 2", timestamp: str = "2021-06-30 18:05:00", extra: str = "") -> bytes:
    return (f'Name = "{name}";\nMachineType = "Elekta Synergy";\nVersionTimestamp = "{timestamp}";\n'
            f'VersionDescription = "recette apr\xe8s changement de t\xeate";\n{extra}'
            'ObjectVersion ={\n  CreateTimeStamp = "2011-02-03 09:00:00";\n  WriteTimeStamp = "2021-06-30 18:05:00";\n'
            '  LastModifiedTimeStamp = "";\n};\n'
            'PhotonEnergyList ={\n  MachineEnergy ={\n    Value = 6;\n    Name = "6X";\n'
            '    PhysicsData ={\n      OutputFactor ={\n        DosePerMuAtCalibration = 0.8074;\n      };\n    };\n'
            '  };\n};\nElectronEnergyList ={\n  MachineEnergy ={\n    Value = 12;\n    Name = "12E";\n  };\n};\n'
            ).encode("latin-1") + STAMP


def test_the_sample_machine_of_the_physics_tree(pinnacle_sample: Path) -> None:
    reading = read_machine_file(pinnacle_sample / SAMPLE_MACHINE, SAMPLE_MACHINE)
    assert reading.warnings == []
    [machine] = reading.machines
    assert (machine.name, machine.version_timestamp) == ("RogueOne", "2020-01-01T10:00:00")
    assert machine.energies == (Energy("photon", "6X", 6.0), Energy("photon", "15X", 15.0),
                                Energy("electron", "6E", 6.0), Energy("electron", "9E", 9.0))


def test_the_machines_a_sample_plan_names(pinnacle_sample: Path) -> None:
    name = f"{SAMPLE_PATIENT}/Plan_0/plan.Pinnacle.Machines"
    reading = read_machine_file(pinnacle_sample / name, name)
    assert reading.warnings == []
    [machine] = reading.machines
    assert machine.to_json() | {"energies": []} == {
        "name": "Clinac iX", "machine_type": "Varian Clinac-2100", "version_timestamp": "2019-03-13T11:12:23",
        "version_description": "gantry angle config and jaw decimal places", "commissioned_by": "",
        "commission_version": "Pinnacle v16.0", "created": "2000-07-04T17:35:04", "written": "2019-12-12T10:10:53",
        "modified": None, "energies": []}
    assert [e.name for e in machine.energies if e.kind == "photon"] == ["6X", "15X"]
    assert [e.name for e in machine.energies if e.kind == "electron"] == ["6E", "9E", "12E", "15E", "18E", "22E"]


def test_the_demo_plans_name_its_two_machines() -> None:
    reading = read_machines(machines_bytes(), "plan.Pinnacle.Machines")
    assert reading.warnings == []
    assert tuple(m.name for m in reading.machines) == MACHINE_NAMES
    assert {e.name for e in reading.machines[1].energies} == {"6X", "10X", "6X FFF", "9E", "16E"}


def test_latin1_names_and_dates_are_read_as_pinnacle_wrote_them() -> None:
    reading = read_machines(machine_text("Salle \xe9t\xe9"), "Pinnacle.Machine")
    [machine] = reading.machines
    assert reading.warnings == []
    assert (machine.name, machine.version_description) == ("Salle été", "recette après changement de tête")
    assert (machine.created, machine.written, machine.modified) == ("2011-02-03T09:00:00", "2021-06-30T18:05:00",
                                                                     None)
    assert machine.energies == (Energy("photon", "6X", 6.0), Energy("electron", "12E", 12.0))


@pytest.mark.parametrize("cut", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_truncated_machine_file_gives_what_it_holds_and_says_so(cut: float, pinnacle_sample: Path) -> None:
    whole = (pinnacle_sample / f"{SAMPLE_PATIENT}/Plan_0/plan.Pinnacle.Machines").read_bytes()
    reading = read_machines(whole[: int(len(whole) * cut)], "plan.Pinnacle.Machines")
    assert reading.warnings and all(w.file == "plan.Pinnacle.Machines" for w in reading.warnings)
    assert [m.name for m in reading.machines] == ["Clinac iX"]  # the name comes first


@pytest.mark.parametrize(("data", "says"), [
    (b"", "no machine in this file"),
    (b"\x00\xff garbage {{{ ;;", "no machine"),
    (b'#0 ={\n  MachineType = "x";\n};\n', "a machine without a Name"),
    (machine_text(timestamp="31/31/2021"), "VersionTimestamp: impossible date"),
    (machine_text(timestamp="03/04/2021 10:00"), "ambiguous date"),
    (b"\xef\xbb\xbf" + machine_text(), "byte order mark"),
])
def test_hostile_machine_files_are_warnings_never_exceptions(data: bytes, says: str) -> None:
    reading = read_machines(data, "Pinnacle.Machine")
    assert any(says in w.message for w in reading.warnings), reading.warnings


def test_keys_of_the_wrong_type_are_left_empty() -> None:
    data = (b'Name = "A";\nVersionTimestamp ={ x = 1; };\nPhotonEnergyList ={\n  MachineEnergy ={ Value = "six"; };\n'
            b'  MachineEnergy = 3;\n};\nElectronEnergyList = 4;\n')
    reading = read_machines(data, "Pinnacle.Machine")
    [machine] = reading.machines
    assert machine.version_timestamp is None and machine.energies == (Energy("photon", "", None),)


def test_a_machine_file_that_cannot_be_read_is_a_warning(tmp_path: Path) -> None:
    os.symlink("/etc/passwd", tmp_path / "Pinnacle.Machine")
    (tmp_path / "dir").mkdir()
    for name in ("Pinnacle.Machine", "dir", "missing"):
        reading = read_machine_file(tmp_path / name, name)
        assert reading.machines == [] and [w.file for w in reading.warnings] == [name]


def _plan(patient: Path, plan: int, data: bytes) -> None:
    (patient / f"Plan_{plan}").mkdir(parents=True, exist_ok=True)
    (patient / f"Plan_{plan}" / "plan.Pinnacle.Machines").write_bytes(data)


def test_a_patient_records_the_machines_of_all_its_plans(tmp_path: Path, pinnacle_sample: Path) -> None:
    assert read_patient(pinnacle_sample / SAMPLE_PATIENT, SAMPLE_PATIENT).machines == ["Clinac iX"]
    patient = tmp_path / "Patient_3"
    patient.mkdir()
    (patient / "Patient").write_bytes(b'PatientID = 3;\nLastName = "A";\nPlanList ={\n  Plan ={ PlanID = 0; };\n'
                                      b'  Plan ={ PlanID = 1; };\n  Plan ={ PlanID = 2; };\n};\n' + STAMP)
    _plan(patient, 0, machines_bytes())
    _plan(patient, 1, b"#0 ={\n" + machine_text("Salle \xe9t\xe9").replace(b"\n", b"\n  ") + b"};\n")
    _plan(patient, 2, machines_bytes()[:1000])  # cut: its first machine's name is still read
    record = read_patient(patient, "Institution_1/Mount_0/Patient_3")
    assert record.machines == ["Clinac iX", "Salle été", "TrueBeam STx"]
    assert any(w.file == "Institution_1/Mount_0/Patient_3/Plan_2/plan.Pinnacle.Machines" for w in record.warnings)
    assert PatientRecord.from_json(record.to_json()) == record


def test_a_record_without_machines_is_written_as_before() -> None:
    record = PatientRecord(path="Institution_1/Mount_0/Patient_1", last_name="A")
    assert "machines" not in record.to_json()
    named = PatientRecord(path="Institution_1/Mount_0/Patient_1", machines=["Clinac iX"])
    assert named.to_json()["machines"] == ["Clinac iX"]
    with pytest.raises(ValueError, match="machines"):
        PatientRecord.from_json({**named.to_json(), "machines": "Clinac iX"})
