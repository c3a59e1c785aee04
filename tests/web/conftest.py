"""A real synthetic site for the web tests, built once per session: a generated Pinnacle database (one
patient renamed `<script>alert(1)</script>` in its Patient file), backed up, one clinical day played (a
patient deleted, hence archived), backed up again, the catalog synced; three users, one per role."""

from __future__ import annotations

import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtvault.catalog import open_catalog
from rtvault.catalog.users import add_user, create_token
from rtvault.config import Config, load
from rtvault.configured import init_stores
from rtvault.demo import evolve_database, generate_database
from rtvault.jobs.backup import run_backup
from rtvault.jobs.catalog import refresh
from rtvault.store import Store

with warnings.catch_warnings():  # starlette asks for httpx2, not installed; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rtvault.web.app import create_app

sys.modules["web_kit"] = sys.modules[__name__]  # test modules import the helpers as `web_kit`

PASSWORD = "correct horse battery staple"
XSS_NAME = "<script>alert(1)</script>"
XSS_PATIENT = "Institution_1/Mount_0/Patient_11612"
ROLES = ("viewer", "operator", "admin")


@dataclass
class Site:
    root: Path
    config: Config
    app: object
    tokens: dict[str, str]
    password: str = PASSWORD

    def client(self, address: str = "127.0.0.1", base_url: str = "http://127.0.0.1") -> TestClient:
        return TestClient(self.app, base_url, client=(address, 50000), follow_redirects=False)  # type: ignore[arg-type]

    def login(self, name: str, address: str = "127.0.0.1") -> TestClient:
        client = self.client(address)
        answer = sign_in(client, name, PASSWORD)
        assert answer.status_code == 303, answer.text
        return client

    def bearer(self, role: str) -> TestClient:
        return TestClient(self.app, headers={"Authorization": f"Bearer {self.tokens[role]}"},  # type: ignore[arg-type]
                          follow_redirects=False)

    def audit(self, **filters: str) -> list[dict]:
        """The audit trail as the admin reads it through the API, details decoded."""
        entries = self.bearer("admin").get("/api/audit", params={**filters, "per_page": "1000"}).json()["entries"]
        for entry in entries:
            if entry["detail"].startswith("{"):
                entry["detail"] = json.loads(entry["detail"])
        return entries

    def key_of(self, last_name: str) -> str:
        found = self.bearer("viewer").get("/api/search", params={"last_name": last_name}).json()["patients"]
        assert found, last_name
        return found[0]["key"]

    sign_in = staticmethod(lambda *args, **kw: sign_in(*args, **kw))
    csrf_of = staticmethod(lambda *args, **kw: csrf_of(*args, **kw))


def login_token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    return re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def sign_in(client: TestClient, name: str, password: str, next_path: str = "/"):
    return client.post("/login", data={"username": name, "password": password, "next": next_path,
                                       "login_token": login_token(client)})


def csrf_of(client: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def _rename(root: Path, patient: str, name: str) -> None:
    patient_file = root / patient / "Patient"
    data = patient_file.read_bytes()
    renamed = re.sub(rb'^LastName = "[^"]*";', f'LastName = "{name}";'.encode("latin-1"), data, count=1,
                     flags=re.MULTILINE)
    assert renamed != data
    patient_file.write_bytes(renamed)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("web-site")
    generate_database(root / "pinnacle", patients=8, seed=7, image_mb=0.2)
    _rename(root / "pinnacle", XSS_PATIENT, XSS_NAME)
    (root / "restores").mkdir()
    (root / "rtvault.toml").write_text("\n".join([
        "[source.pinnacle]", 'root = "pinnacle"', "", "[stores.primary]", 'path = "store"', "",
        "[catalog]", 'url = "sqlite:///catalog.sqlite"', "", "[web]", 'restore_dir = "restores"', ""]),
        encoding="utf-8")
    config = load(root / "rtvault.toml")
    init_stores(config)
    store = Store.open(config.stores["primary"].path)
    run_backup(config, store)
    evolve_database(root / "pinnacle", 1)
    run_backup(config, store)
    refresh(config)
    tokens = {}
    with open_catalog(config.catalog.url) as db:
        for role in ROLES:
            add_user(db, role, role, PASSWORD)
            tokens[role] = create_token(db, role, "tests")
    return Site(root, config, create_app(config), tokens)

