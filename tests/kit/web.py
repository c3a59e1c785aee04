"""The web tests' kit: the synthetic site (built by the `site` fixture, web/conftest.py), clients signed in
as each role, and the sign-in and CSRF forms as a browser fills them."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from rtvault.config import Config

with warnings.catch_warnings():  # starlette asks for httpx2, not installed; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

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


def login_token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    return re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def sign_in(client: TestClient, name: str, password: str, next_path: str = "/"):
    return client.post("/login", data={"username": name, "password": password, "next": next_path,
                                       "login_token": login_token(client)})


def csrf_of(client: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]
