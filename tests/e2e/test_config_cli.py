"""`rtvault config ...` run as a user runs it: in a subprocess, from a working directory."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from kit.cli import run_cli


def rtvault(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`rtvault ARGS` in `cwd` (with `env` on top of a clean environment); the caller checks the exit code."""
    return run_cli(*args, expect=None, cwd=cwd, env=env, timeout=60)


def no_traceback(result: subprocess.CompletedProcess[str]) -> bool:
    return "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def example_file(tmp_path: Path) -> Path:
    """The generated example, written as a user would: rtvault config example > rtvault.toml."""
    result = rtvault("config", "example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    file = tmp_path / "rtvault.toml"
    file.write_text(result.stdout, encoding="utf-8")
    return file


def test_example_then_check_is_ok(example_file: Path) -> None:
    result = rtvault("config", "check", cwd=example_file.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"OK: {example_file}"
    assert "/PrimaryPatientData/NewPatients" in lines[1]
    assert "primary (/mnt/nas1/rtvault)" in lines[2]
    assert f"sqlite:///{example_file.parent}/rtvault-catalog.sqlite" in lines[3]


def test_check_json_gives_file_validity_and_settings(example_file: Path, tmp_path: Path) -> None:
    result = rtvault("--config", str(example_file), "config", "check", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == ["file", "valid", "config"]
    assert report["file"] == str(example_file) and report["valid"] is True
    assert list(report["config"]) == ["source", "sources", "stores", "backup", "archive", "catalog", "retention",
                                      "verify", "schedule", "daemon", "health", "alerts", "continuity", "reconcile",
                                      "dicom", "site", "web"]
    assert report["config"]["health"]["backup_max_age"] == "6h"
    assert report["config"]["stores"] == {"primary": {"path": "/mnt/nas1/rtvault", "url": "", "endpoint": "",
                                                      "region": "", "retry_seconds": 30, "copy_of": "",
                                                      "encrypt": False, "offsite": False, "read_only": False,
                                                      "object_lock_days": 0, "object_lock_mode": "compliance"}}
    assert report["config"]["retention"]["keep_daily"] == 14


def test_invalid_config_exits_3_naming_the_file_and_every_problem(tmp_path: Path) -> None:
    file = tmp_path / "site.toml"
    file.write_text("[stores.x]\npath = 3\n[retention]\nkeep_daily = -1\n", encoding="utf-8")
    result = rtvault("--config", str(file), "config", "check", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    assert str(file) in result.stderr
    assert "stores.x.path: expected a string, got integer 3" in result.stderr
    assert "retention.keep_daily: must be 0 or more, got -1" in result.stderr
    assert no_traceback(result)


def test_every_command_refuses_a_copy_of_naming_no_other_store(tmp_path: Path) -> None:
    (tmp_path / "rtvault.toml").write_text('[stores.a]\npath = "a"\ncopy_of = "a"\n[stores.b]\npath = "b"\n'
                                           'copy_of = "nas"\n', encoding="utf-8")
    for command in (["config", "check"], ["init"], ["replicate"], ["status"]):
        result = rtvault(*command, cwd=tmp_path)
        assert result.returncode == 3 and no_traceback(result), result.stderr
        assert "2 problems" in result.stderr and "stores.a.copy_of: a store cannot be a copy of itself" in \
            result.stderr and "stores.b.copy_of: no store named 'nas' (configured: a, b)" in result.stderr
    assert not (tmp_path / "a").exists()


def test_invalid_config_with_json_prints_a_json_error(tmp_path: Path) -> None:
    file = tmp_path / "site.toml"
    file.write_text("[stores.x]\n", encoding="utf-8")
    result = rtvault("--config", str(file), "config", "check", "--json", cwd=tmp_path)
    assert result.returncode == 3
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 3
    assert "stores.x: set exactly one of path (a directory) or url" in error["message"]
    assert no_traceback(result)


def test_missing_config_says_how_to_create_one(tmp_path: Path) -> None:
    result = rtvault("config", "check", cwd=tmp_path)
    assert result.returncode == 3
    assert str(tmp_path / "rtvault.toml") in result.stderr
    assert "rtvault config example > rtvault.toml" in result.stderr
    assert no_traceback(result)


def test_toml_syntax_error_exits_3_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "rtvault.toml").write_text("[stores.a\npath = '/x'\n", encoding="utf-8")
    result = rtvault("config", "check", cwd=tmp_path)
    assert result.returncode == 3
    assert "invalid TOML" in result.stderr and "line 1" in result.stderr
    assert no_traceback(result)


def test_environment_variable_names_the_file(example_file: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = rtvault("config", "check", cwd=elsewhere, env={"RTVAULT_CONFIG": str(example_file)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: {example_file}\n")


def test_reference_is_markdown_of_every_key(tmp_path: Path, example_file: Path) -> None:
    result = rtvault("config", "reference", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Configuration reference\n")
    settings = tomllib.loads(example_file.read_text(encoding="utf-8"))
    for key in settings["retention"]:
        assert f"`retention.{key}`" in result.stdout


@pytest.mark.parametrize("command", [[], ["example"], ["check"], ["reference"]], ids=" ".join)
def test_help_shows_examples(tmp_path: Path, command: list[str]) -> None:
    result = rtvault("config", *command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout
    assert f"rtvault config {command[0] if command else 'check'}" in result.stdout


def test_catalog_fill_refuses_a_store_named_synthetic_as_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "rtvault.toml"
    config.write_text(f'[stores.synthetic]\npath = "{tmp_path / "s"}"\n\n[catalog]\n'
                      f'url = "sqlite:///{tmp_path / "c.sqlite"}"\n', encoding="utf-8")
    done = run_cli("catalog", "fill", "--patients", "10", config=config, expect=3, timeout=60)
    assert "stores.synthetic: that store name is reserved" in done.stderr and "internal error" not in done.stderr
