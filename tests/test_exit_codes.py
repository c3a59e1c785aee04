"""Each error class leaves the command line with the exit code of the one table (`rtvault.errors`), and a
catalog fault is a catalog fault (exit 10), never a damaged store (exit 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write_config
from rtvault import errors
from rtvault.cli import main
from rtvault.errors import ExitCode

# What a user or a monitoring script sees for each class: written out, not read from the table under test.
EXIT_CODES: list[tuple[errors.RtvaultError, int]] = [
    (errors.ConfigError("rtvault.toml", ["no store configured"]), 3),
    (errors.Unavailable("the server does not answer"), 3),
    (errors.DirectoryUnavailable("the directory does not answer"), 3),
    (errors.InputError("unreadable date and time 'x'"), 4),
    (errors.NotFound("no patient 'x' in the catalog"), 4),
    (errors.SourceRefused("the source is empty"), 5),
    (errors.LockBusy("the store is locked"), 6),
    (errors.CheckFailed("3 problems"), 7),
    (errors.StoreError("the store is damaged"), 8),
    (errors.PartialResult("2 files not restored"), 9),
    (errors.CatalogError("the catalog database refused a statement: database is locked"), 10),
    (errors.CatalogUnavailable("catalog /x.sqlite is unusable: file is not a database"), 10),
    (errors.PeerError("peer orthanc rejected the association"), 11),
    (errors.PeerUnreachable("peer orthanc refused the connection"), 11),
]


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "rtvault.toml", root=tmp_path / "db", stores={"primary": tmp_path / "store"},
                        catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})


@pytest.mark.parametrize(("error", "code"), EXIT_CODES, ids=lambda v: type(v).__name__ if isinstance(v, Exception)
                         else str(v))
def test_every_error_leaves_the_cli_with_its_exit_code(tmp_path: Path, monkeypatch, capsys, error, code) -> None:
    def fails(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr("rtvault.cli.catalog_cmd.search", fails)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(_config(tmp_path)), "search", "--last-name", "martin", "--json"])
    assert exited.value.code == code == error.exit_code
    assert json.loads(capsys.readouterr().out)["error"] == {"message": str(error), "exit_code": code}


def test_every_exit_code_is_in_the_table() -> None:
    assert {int(c) for c in errors.EXIT_CODE_MEANINGS} == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 130}
    assert ExitCode.CATALOG == 10 and "catalog" in errors.EXIT_CODE_MEANINGS[ExitCode.CATALOG]


def test_a_damaged_catalog_is_exit_10(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not a SQLite database, it was overwritten\n" * 100)
    for args in (["search", "--last-name", "martin"], ["catalog", "sync"], ["user", "list"]):
        done = run_cli(*args, config=config, expect=ExitCode.CATALOG, timeout=60)
        assert "catalog" in done.stderr and "is unusable" in done.stderr and "Traceback" not in done.stderr
