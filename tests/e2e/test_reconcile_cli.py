"""`rtvault reconcile` and `rtvault archive now` as a physicist runs them: the story from a fresh backup to the
patients safe to delete from Pinnacle, the JSON's three lists and the CSV; and the faults: the source unmounted,
the catalog lost, a patient folder the service user cannot read, wrong options."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.faults import WITHOUT_ROOT_READ, can_drop_read_capabilities
from kit.reconcile import ReconcileSite, touch
from rtvault.errors import ExitCode


@pytest.fixture
def site(tmp_path: Path) -> ReconcileSite:
    return ReconcileSite.made(tmp_path)


def test_from_backup_to_safe_to_delete_through_the_command_line(site: ReconcileSite) -> None:
    paths = site.paths()
    touch(site.root / paths[-1] / "Patient")  # in use today: never idle
    site.cli("backup")
    first = site.cli("reconcile")
    assert "0 safe to delete from Pinnacle" in first.stdout and "idle but not safe to delete yet" in first.stdout
    assert "rtvault archive now --idle" in first.stdout and first.stderr == ""

    made = site.cli_json("archive", "now", "--idle")
    assert sorted(a["patients"][0]["path"] for a in made["archived"]) == paths[:-1]
    assert made["already"] == [] and made["not_archived"] == []
    site.cli("replicate")
    site.cli("verify", "--all")
    found = site.cli_json("reconcile")
    assert list(found) == ["never_captured", "under_copied", "safe_to_delete"]
    assert sorted(e["path"] for e in found["safe_to_delete"]) == paths[:-1]
    assert all({"key", "name", "mrn"} <= set(e) and e["offsite"] == ["offsite"] for e in found["safe_to_delete"])

    table = list(csv.DictReader(io.StringIO(site.cli("reconcile", "--csv").stdout)))
    assert sorted(row["path"] for row in table) == paths[:-1] and {row["list"] for row in table} == {"safe_to_delete"}
    assert [row["key"] for row in sorted(table, key=lambda r: r["path"])] == \
        [e["key"] for e in sorted(found["safe_to_delete"], key=lambda e: e["path"])]
    again = site.cli_json("archive", "now", "--patient", paths[0], "--patient", paths[1])
    assert again["archived"] == [] and sorted(a["path"] for a in again["already"]) == paths[:2]


def test_the_source_unmounted_is_refused(site: ReconcileSite) -> None:
    shutil.rmtree(site.root)
    site.root.mkdir()  # the empty mount point of a share that is not mounted
    done = site.cli("reconcile", expect=ExitCode.SOURCE_REFUSED)
    assert done.stdout == "" and f"source {site.root} is empty: is the Pinnacle share mounted?" in done.stderr
    site.root.rmdir()
    error = json.loads(site.cli("reconcile", "--json", expect=ExitCode.SOURCE_REFUSED).stdout)["error"]
    assert "does not exist" in error["message"] and error["exit_code"] == ExitCode.SOURCE_REFUSED
    assert "is the Pinnacle share mounted" in site.cli("archive", "now", "--idle", expect=5).stderr


def test_the_catalog_lost_is_refused_not_made_anew(site: ReconcileSite) -> None:
    site.catalog_path.unlink()
    done = site.cli("reconcile", expect=ExitCode.CATALOG)
    assert "does not exist" in done.stderr and "rtvault catalog rebuild" in done.stderr
    assert not site.catalog_path.exists()
    site.cli("catalog", "rebuild")
    assert site.cli_json("reconcile")["never_captured"] == []


def test_a_patient_folder_that_cannot_be_read_is_named_and_the_result_partial(site: ReconcileSite) -> None:
    if (why := can_drop_read_capabilities()) is not None:
        pytest.skip(why)
    site.made_safe()
    locked = site.root / site.paths()[0]
    locked.chmod(0o000)
    try:
        done = run_cli("reconcile", "--json", config=site.config_path, expect=ExitCode.PARTIAL, via=WITHOUT_ROOT_READ)
    finally:
        locked.chmod(0o755)
    found = json.loads(done.stdout)
    assert site.paths()[0] not in [e["path"] for e in found["safe_to_delete"]]
    assert sorted(e["path"] for e in found["safe_to_delete"]) == site.paths()[1:]
    assert f"{site.paths()[0]}: 1 file(s) or folder(s) cannot be read" in done.stderr


def test_wrong_options_are_usage_errors(site: ReconcileSite) -> None:
    assert "--csv and --json do not go together" in site.cli("reconcile", "--csv", "--json", expect=2).stderr
    assert "--patient KEY (repeatable) or --idle" in site.cli("archive", "now", expect=2).stderr
    assert "--patient KEY (repeatable) or --idle" in site.cli("archive", "now", "--idle", "--patient", "x",
                                                               expect=2).stderr
    unknown = site.cli_json("archive", "now", "--patient", "no-such-mrn", expect=ExitCode.PARTIAL)
    assert unknown["not_archived"][0]["path"] == "no-such-mrn" and "no snapshot" in unknown["not_archived"][0]["reason"]
