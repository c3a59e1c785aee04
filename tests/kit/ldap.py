"""A real OpenLDAP server (Debian `slapd`) on a free loopback port, for the LDAP sign-in tests.

The server uses a throw-away slapd.conf and mdb database in a temporary directory, base dc=example,dc=org,
and holds two people whose passwords are known; it is stopped when the test ends.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit.files import free_port

SLAPD = Path("/usr/sbin/slapd")
BASE = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "admin-secret-for-tests"
USER_DN = f"uid={{user}},ou=people,{BASE}"
# Synthetic staff: uid -> (common name, password).
PEOPLE = {
    "hlefevre": ("Hélène Lefèvre", "Radiothérapie-2026!"),
    "jbndiaye": ("Jean-Baptiste N'Diaye", "dosimétrie correcte"),
}

_CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {dir}/data
"""


@dataclass(frozen=True)
class Directory:
    url: str
    port: int


def _wait_until_listening(port: int, process: subprocess.Popen, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}: {process.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"slapd did not listen on port {port} within {seconds} s")


def _load_people(url: str) -> None:
    import ldap3

    with ldap3.Connection(ldap3.Server(url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True) as conn:
        conn.add(BASE, ["dcObject", "organization"], {"o": "Centre de radiothérapie", "dc": "example"})
        conn.add(f"ou=people,{BASE}", ["organizationalUnit"], {"ou": "people"})
        for uid, (cn, password) in PEOPLE.items():
            conn.add(USER_DN.format(user=uid), ["inetOrgPerson"],
                     {"cn": cn, "sn": cn.split()[-1], "uid": uid, "userPassword": password})
            assert conn.result["result"] == 0, conn.result


@contextmanager
def running_slapd(workdir: Path) -> Iterator[Directory]:
    (workdir / "data").mkdir(parents=True)
    config = workdir / "slapd.conf"
    config.write_text(_CONFIG.format(dir=workdir, base=BASE, admin=ADMIN_DN, password=ADMIN_PASSWORD))
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d 0 keeps slapd in the foreground (so we own its process) without debug output.
    process = subprocess.Popen([str(SLAPD), "-f", str(config), "-h", url + "/", "-d", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_listening(port, process)
        _load_people(url)
        yield Directory(url=url, port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
