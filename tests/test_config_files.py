"""The configuration: finding the file (option, environment, working directory), and validation against the
schema: unreadable and invalid files refused, every problem named by its dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.config import write
from rtvault.config import ENV_VAR, load, validate
from rtvault.errors import ConfigError, ExitCode

pytestmark = pytest.mark.usefixtures("no_config_env")


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path / "rtvault.toml", text))
    return caught.value.problems


# --- which file ----------------------------------------------------------------------------------------


@pytest.fixture
def three_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A file in the working directory, one named by $RTVAULT_CONFIG and one for --config."""
    files = {
        name: write(tmp_path / name / "rtvault.toml", f"[stores.{name}]\npath = '{name}'\n")
        for name in ("cwd", "env", "option")
    }
    monkeypatch.chdir(files["cwd"].parent)
    return files


def test_config_option_beats_the_environment(three_files: dict[str, Path], monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(three_files["env"]))
    assert list(load(three_files["option"]).stores) == ["option"]


def test_environment_beats_the_working_directory(three_files: dict[str, Path], monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(three_files["env"]))
    cfg = load(None)
    assert list(cfg.stores) == ["env"]
    assert cfg.file == three_files["env"]


def test_working_directory_file_is_the_default(three_files: dict[str, Path], monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, "")
    cfg = load(None)
    assert list(cfg.stores) == ["cwd"]
    assert cfg.file == three_files["cwd"]


def test_missing_default_file_says_how_to_create_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load(None)
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.file == str(tmp_path / "rtvault.toml")
    assert "not found" in message and ENV_VAR in message
    assert "rtvault config example > rtvault.toml" in message


def test_missing_file_named_by_the_environment_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "etc" / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml: .*not found \(from \$RTVAULT_CONFIG\)"):
        load(None)


def test_missing_file_given_with_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"given with --config.*example > .*nope\.toml"):
        load(tmp_path / "nope.toml")


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    file = write(tmp_path / "rtvault.toml", "[retention]\nkeep_daily = = 3\n")
    with pytest.raises(ConfigError) as caught:
        load(file)
    assert str(caught.value).startswith(f"{file}: invalid TOML: ")
    assert "line 2, column" in str(caught.value)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load(tmp_path)


def test_a_latin1_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    file = tmp_path / "rtvault.toml"
    file.write_bytes('[stores.a]\npath = "/mnt/données"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(file)


# --- invalid files: every problem names its dotted path --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[stores.nas1]\npath = 3\n", "stores.nas1.path: expected a string, got integer 3"),
        ('[stores.nas1]\npath = ""\n', "stores.nas1.path: must not be empty"),
        ("[stores.nas1]\n", "stores.nas1: set exactly one of path (a directory) or url (s3://bucket/prefix)"),
        ('[stores.nas1]\npath = "/mnt/nas1"\nurl = "s3://b/p"\n', "stores.nas1: set exactly one of path"),
        ('[stores.s3]\nurl = "http://b/p"\n', "stores.s3.url: must look like s3://bucket/prefix"),
        ('[stores.s3]\nurl = "s3://b"\nendpoint = "localhost:8333"\n', "stores.s3.endpoint: must start with http"),
        ('[stores.nas1]\npath = "/mnt/nas1"\nendpoint = "http://h"\n',
         "stores.nas1: endpoint only apply to an S3 store (url)"),
        ('[stores.s3]\nurl = "s3://b"\nretry_seconds = 0\n', "stores.s3.retry_seconds: must be more than 0"),
        ('[stores.s3]\nurl = "s3://b"\nencrypt = true\n', "stores.s3: encrypt = true and passphrase_file go together"),
        ("[retention]\nkeep_daily = -1\n", "retention.keep_daily: must be 0 or more, got -1"),
        ("[retention]\nkeep_daily = true\n", "retention.keep_daily: expected an integer, got boolean true"),
        ("[retention]\nkeep_daily = 1.5\n", "retention.keep_daily: expected an integer, got float 1.5"),
        ('[retention]\nkeep_daily = "7"\n', 'retention.keep_daily: expected an integer, got string "7"'),
        (
            '[catalog]\nurl = "mysql://h/db"\n',
            "catalog.url: must start with sqlite:/// or postgresql://, got 'mysql://h/db'",
        ),
        ('[catalog]\nurl = "sqlite:///"\n', "catalog.url: names no database file"),
        ('[source.pinnacle]\nroot = "  "\n', "source.pinnacle.root: must not be empty"),
        (
            '[source.pinnacle]\nexclude = "*~"\n',
            'source.pinnacle.exclude: expected an array of strings, got string "*~"',
        ),
        (
            '[source.pinnacle]\nexclude = ["*~", 3]\n',
            'source.pinnacle.exclude: expected an array of strings, got array ["*~", 3]',
        ),
        ("retention = 5\n", "retention: expected a table, got integer 5"),
        ("source = [1]\n", "source: expected a table, got array [1]"),
        ("stores = 1\n", "stores: expected a table of named tables, got integer 1"),
        ('[stores]\npath = "/mnt/nas"\n', 'stores.path: expected a table, got string "/mnt/nas"'),
        (
            '[stores."my nas"]\npath = "/mnt/nas"\n',
            "stores.\"my nas\": a name may only hold letters, digits, '-' and '_'",
        ),
        ("[source.pinnacle]\nroot = 2024-01-01\n", "source.pinnacle.root: expected a string, got date/time 2024-01-01"),
    ],
)
def test_each_kind_of_problem_names_its_dotted_path(tmp_path: Path, text: str, problem: str) -> None:
    assert [p[: len(problem)] for p in problems_of(tmp_path, text)] == [problem]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("colour = 1\n",
         "colour: unknown key (known keys: source, sources, stores, backup, archive, catalog, retention, verify, "
         "schedule, daemon, health, alerts, continuity, reconcile, dicom, site, web)"),
        ("[retention]\nkeep_dayly = 7\n", "retention.keep_dayly: unknown key (did you mean 'keep_daily'?)"),
        (
            "[source.pinnacle]\nroot = '/p'\nexcludes = []\n",
            "source.pinnacle.excludes: unknown key (did you mean 'exclude'?)",
        ),
        ("[source.dicom]\nport = 104\n", "source.dicom: unknown key (known keys: pinnacle)"),
        (
            "[stores.nas1]\npath = '/mnt/nas1'\nreadonly = true\n",
            "stores.nas1.readonly: unknown key (did you mean 'read_only'?)",
        ),
        (
            "[stores.nas1]\npath = '/mnt/nas1'\nworm = true\n",
            "stores.nas1.worm: unknown key (known keys: path, url, endpoint, region, credentials_file, "
            "retry_seconds, copy_of, encrypt, passphrase_file, offsite, read_only, object_lock_days, "
            "object_lock_mode)",
        ),
    ],
)
def test_unknown_keys_are_rejected_at_every_level(tmp_path: Path, text: str, problem: str) -> None:
    assert problems_of(tmp_path, text) == [problem]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
surprise = 1
[stores.nas1]
path = 3
[stores.nas2]
[catalog]
url = "ftp://x"
[retention]
keep_hourly = -2
keep_daily = false
"""
    file = write(tmp_path / "rtvault.toml", text)
    with pytest.raises(ConfigError) as caught:
        load(file)
    wheres = sorted(p.split(":")[0] for p in caught.value.problems)
    assert wheres == [
        "catalog.url",
        "retention.keep_daily",
        "retention.keep_hourly",
        "stores.nas1.path",
        "stores.nas2",
        "surprise",
    ]
    assert str(caught.value).startswith(f"{file}: 6 problems:\n  - ")


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ('[stores.a]\npath = "/a"\ncopy_of = "a"\n', ["stores.a.copy_of: a store cannot be a copy of itself"]),
        ('[stores.a]\npath = "/a"\n[stores.b]\npath = "/b"\ncopy_of = "nas"\n',
         ["stores.b.copy_of: no store named 'nas' (configured: a, b)"]),
        ('[stores.a]\npath = "/a"\ncopy_of = "c"\n[stores.b]\npath = "/b"\ncopy_of = "a"\n'
         '[stores.c]\npath = "/c"\ncopy_of = "b"\n[stores.d]\npath = "/d"\ncopy_of = "c"\n',
         ["stores.a.copy_of: the copies go round in a circle (a -> c -> b -> a): the first store of a chain of "
          "copies is the original, without copy_of"]),
        ('[stores."my nas"]\npath = "/a"\n[stores.b]\npath = "/b"\ncopy_of = "b"\n[stores.c]\npath = "/c"\n'
         'copy_of = "d"\n[stores.d]\npath = "/d"\ncopy_of = "c"\n[stores.e]\npath = "/e"\ncopy_of = "x"\n',
         ["stores.\"my nas\": a name may only hold letters, digits, '-' and '_'",
          "stores.b.copy_of: a store cannot be a copy of itself",
          "stores.e.copy_of: no store named 'x' (configured: my nas, b, c, d, e)",
          "stores.c.copy_of: the copies go round in a circle (c -> d -> c): the first store of a chain of copies "
          "is the original, without copy_of"]),
    ],
)
def test_copy_of_names_another_store_and_never_a_circle(tmp_path: Path, text: str, problems: list[str]) -> None:
    assert problems_of(tmp_path, text) == problems


def test_validate_names_the_file_it_is_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"stores": {"x": {}}}, tmp_path / "site.toml")
    assert str(caught.value) == (f"{tmp_path / 'site.toml'}: stores.x: set exactly one of path (a directory) or url "
                                 "(s3://bucket/prefix)")


@pytest.mark.parametrize(("value", "problem"), [
    ("1.5", "backup.max_shrink: must be a fraction between 0 and 1, got 1.5"),
    ("true", "backup.max_shrink: expected a number, got boolean true"),
])
def test_backup_max_shrink_is_a_fraction(tmp_path: Path, value: str, problem: str) -> None:
    file = write(tmp_path / "rtvault.toml", f"[backup]\nmax_shrink = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load(file)
    assert caught.value.problems == [problem]


def test_backup_max_shrink_accepts_an_integer(tmp_path: Path) -> None:
    assert load(write(tmp_path / "rtvault.toml", "[backup]\nmax_shrink = 0\n")).backup.max_shrink == 0.0


def test_an_s3_store_needs_a_credentials_file_only_its_owner_reads(tmp_path: Path) -> None:
    keys = write(tmp_path / "s3-keys", "aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t-value\n")
    text = ('[stores.offsite]\nurl = "s3://rtvault/site1"\nendpoint = "http://127.0.0.1:8333"\n'
            'credentials_file = "s3-keys"\n')
    keys.chmod(0o640)
    assert problems_of(tmp_path, text) == [f"stores.offsite: credentials_file: {keys} is readable by group or "
                                           f"others: run chmod 600 {keys}"]
    keys.chmod(0o600)
    cfg = load(write(tmp_path / "rtvault.toml", text))
    assert (cfg.stores["offsite"].url, cfg.stores["offsite"].credentials_file) == ("s3://rtvault/site1", keys)
    assert "s3cr3t" not in str(cfg.to_json())
