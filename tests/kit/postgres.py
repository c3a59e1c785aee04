"""A real PostgreSQL 15 server for the test session: Debian's initdb and pg_ctl on a free loopback port, trust
authentication, one fresh database per test, stopped and removed at the end.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user (the data directory is a
temporary directory it owns); as any other user they run as that user. Test databases use a French ICU
collation, as a hospital's server would, so that the catalog is tested where text order is not byte order.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kit.files import free_port
from rtvault.catalog import open_catalog

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
# A linguistic collation (accents and punctuation ignored at first level): byte-order ranges must not rely on it.
DATABASE_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'"


def missing() -> str | None:
    """Why no server can be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (BIN / tool).is_file():
            return f"PostgreSQL 15 is not installed ({BIN / tool} missing; Debian package `postgresql`)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as the postgres user"
    return None


def _as_owner(*command: str) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else list(command)


def _run(*command: str) -> None:
    done = subprocess.run(_as_owner(*command), capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class PostgresServer:
    """One running server; `new_database()` gives the URL of an empty database of its own."""

    directory: Path
    port: int
    user: str
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    _template: bool = False

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, *, migrated: bool = True) -> str:
        """An empty database, or by default a copy of one with the catalog schema already applied: applying
        the migrations takes a second on PostgreSQL, copying a small template a tenth of one."""
        name = f"test_{next(self._numbers)}"
        if not migrated:
            self.admin(f"CREATE DATABASE {name} {DATABASE_OPTIONS}")
            return self.url(name)
        if not self._template:
            self.admin(f"CREATE DATABASE catalog_template {DATABASE_OPTIONS}")
            open_catalog(self.url("catalog_template")).close()  # no session may stay on a template being copied
            self._template = True
        self.admin(f"CREATE DATABASE {name} TEMPLATE catalog_template")
        return self.url(name)

    def stop(self) -> None:
        try:  # immediate: no shutdown checkpoint of every test database, the directory goes anyway
            _run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_or_skip() -> PostgresServer:
    """A started server; skips the test, with the reason, when none can be started here."""
    if reason := missing():
        pytest.skip(reason)
    return start()


def start() -> PostgresServer:
    """initdb in a fresh temporary directory and start the server on a free port of 127.0.0.1."""
    directory = Path(tempfile.mkdtemp(prefix="rtvault-pg-"))
    user = SUPERUSER if os.geteuid() == 0 else _current_user()
    if os.geteuid() == 0:
        shutil.chown(directory, SUPERUSER, SUPERUSER)
    server = PostgresServer(directory, free_port(), user)
    try:
        _run(str(BIN / "initdb"), "-D", str(server.data), "-U", user, "--auth=trust", "--encoding=UTF8",
             "--locale=C.UTF-8", "--no-sync")
        options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {directory} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        _run(str(BIN / "pg_ctl"), "-D", str(server.data), "-o", options, "-l", str(directory / "server.log"),
             "-w", "start")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return server


def _current_user() -> str:
    import getpass

    return getpass.getuser()
