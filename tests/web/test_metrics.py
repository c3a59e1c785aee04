"""`GET /metrics` for Prometheus: open without a session to the addresses of [web] metrics_from (as the site
tells the client's address, behind a trusted proxy too) and to the bearer of the token of [web]
metrics_token_file; 403 for anyone else. The exposition is parsed with the client library's own parser and its
names, labels and values checked against the site (the session's synthetic web site)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kit.files import free_port
from kit.web import Site
from rtvault.catalog import open_catalog
from rtvault.store import Store
from rtvault.web.app import create_app

TOKEN = "s3cr3t-prometheus-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) -> value of every sample of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def runs(site: Site) -> Iterator[None]:
    """Two runs of `sweep` in the run journal (the last one failed) and one of `retention`; removed after."""
    rows = [("t/1", "sweep", "2026-12-01T10:00:00Z", "2026-12-01T10:00:30Z", "ok"),
            ("t/2", "sweep", "2026-12-01T11:00:00Z", "2026-12-01T11:00:04Z", "failed"),
            ("t/3", "retention", "2026-12-01T03:30:00Z", "2026-12-01T03:32:00Z", "ok")]
    with open_catalog(site.config.catalog.url) as db:
        db.many("INSERT INTO runs (id, job, trigger, started, ended, result, error, host, record) "
                "VALUES (?, ?, 'schedule', ?, ?, ?, '', 'host', '{}')", rows)
    yield
    with open_catalog(site.config.catalog.url) as db:
        db.execute("DELETE FROM runs WHERE id LIKE 't/%'")


def _app(site: Site, token_file: Path | None = None, **web: object) -> object:
    settings = dataclasses.replace(site.config.web, metrics_token_file=token_file, **web)
    return create_app(dataclasses.replace(site.config, web=settings))


def _token_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "metrics.token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    return path


def test_metrics_from_loopback_name_the_site(site: Site, runs: None) -> None:
    answer = site.client("127.0.0.1").get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
    found = samples(answer.text)
    store = Store.open(site.config.stores["primary"].path)
    newest = store.manifests()[-1]
    backup = found[("rtvault_last_success_timestamp_seconds", (("job", "backup"), ("source", "pinnacle")))]
    assert backup == datetime.strptime(newest.id[:16] + "+0000", "%Y%m%dT%H%M%SZ%z").timestamp()  # the id's time
    with open_catalog(site.config.catalog.url) as db:
        by_status = dict(db.execute("SELECT status, COUNT(*) FROM patients GROUP BY status"))
    assert {k[1][0][1]: v for k, v in found.items() if k[0] == "rtvault_patients"} == by_status
    assert by_status["active"] == 8 and by_status["archived"] == 1  # 8 generated; day 1 deleted one, admitted one
    assert found[("rtvault_health_status", (("check", "backup:pinnacle"),))] == 0
    assert found[("rtvault_health_status", (("check", "daemon"),))] == 2  # no daemon runs here
    assert 0 < found[("rtvault_health_value", (("check", "space:primary"),))] <= 100
    assert found[("rtvault_store_up", (("store", "primary"),))] == 1
    assert found[("rtvault_store_snapshots", (("store", "primary"),))] == len(store.manifests()) == 2
    assert found[("rtvault_store_free_bytes", (("store", "primary"),))] > 0
    assert found[("rtvault_job_duration_seconds", (("job", "sweep"),))] == 4  # the last run's
    assert found[("rtvault_job_last_run_success", (("job", "sweep"),))] == 0
    assert found[("rtvault_job_last_run_success", (("job", "retention"),))] == 1
    sweep_ok = datetime.fromisoformat("2026-12-01T10:00:30+00:00").timestamp()
    assert found[("rtvault_last_success_timestamp_seconds", (("job", "sweep"),))] == sweep_ok
    assert found[("rtvault_catalog_up", ())] == 1
    assert not [k for k in found if k[0] == "rtvault_store_bytes"]  # no sample with a size taken yet


def test_every_status_is_a_number_from_0_to_3(site: Site) -> None:
    found = samples(site.client("::1").get("/metrics").text)
    checks = {dict(labels)["check"]: value for (name, labels), value in found.items()
              if name == "rtvault_health_status"}
    assert {"backup:pinnacle", "source:pinnacle", "verify:primary", "space:primary", "daemon", "copies",
            "jobs"} <= set(checks)
    assert set(checks.values()) <= {0, 1, 2, 3}


def test_refused_from_an_address_not_allowed(site: Site) -> None:
    answer = site.client("10.1.2.3").get("/metrics")
    assert answer.status_code == 403 and "metrics_from" in answer.text and "réservé" in answer.text
    assert "rtvault_" not in answer.text


def test_behind_a_trusted_proxy_the_forwarded_client_is_judged(site: Site) -> None:
    app = _app(site, trusted_proxies=("127.0.0.1",))
    client = type(site.client())(app, "http://127.0.0.1", client=("127.0.0.1", 50000))  # type: ignore[arg-type]
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert client.get("/metrics").status_code == 200  # the proxy's own request, from loopback


def test_the_bearer_token_opens_it_from_anywhere(site: Site, tmp_path: Path) -> None:
    app = _app(site, _token_file(tmp_path), metrics_from=())
    client = type(site.client())(app, "http://127.0.0.1", client=("10.9.8.7", 50000))  # type: ignore[arg-type]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "rtvault_health_status" in right.text


def test_a_token_file_others_may_read_is_not_used(site: Site, tmp_path: Path, caplog) -> None:
    app = _app(site, _token_file(tmp_path, 0o644), metrics_from=())
    client = type(site.client())(app, "http://127.0.0.1", client=("10.9.8.7", 50000))  # type: ignore[arg-type]
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    assert "readable by group or others: run chmod 600" in caplog.text


def test_a_catalog_that_cannot_be_read_still_gives_the_stores(site: Site, tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"not a database, " * 300)
    config = dataclasses.replace(site.config, catalog=dataclasses.replace(site.config.catalog,
                                                                          url=f"sqlite:///{broken}"))
    from rtvault.web.metrics import exposition

    found = samples(exposition(config).decode())
    assert found[("rtvault_catalog_up", ())] == 0
    assert found[("rtvault_health_status", (("check", "copies"),))] == 3
    assert found[("rtvault_store_up", (("store", "primary"),))] == 1
    assert not [k for k in found if k[0] == "rtvault_patients"]


def test_served_by_rtvault_serve_over_real_http(site: Site) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config.file), "serve",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                    text = answer.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server never answered"
                time.sleep(0.1)
        assert samples(text)[("rtvault_store_up", (("store", "primary"),))] == 1
    finally:
        server.terminate()
        server.wait(timeout=20)
