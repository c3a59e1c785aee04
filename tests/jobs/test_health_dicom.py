"""The DICOM senders watched by health ([dicom.peers.NAME] silent_after): a peer that sent recently is OK with the
time since its last object, one silent longer than its limit (or never heard from) is WARNING, in `rtvault
health`, its Nagios line, `/metrics` and the alerts (the seed's "plus d'échanges pendant plusieurs heures")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.alerts import webhook
from kit.config import write_config
from rtvault.catalog import dicom
from rtvault.config import load
from rtvault.configured import init_stores, open_catalog_for
from rtvault.jobs.alerts import notify
from rtvault.jobs.health import Status, evaluate
from rtvault.jobs.health_nagios import nagios_line
from rtvault.store.receipts import ReceivedInstance
from rtvault.web.metrics import exposition

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
PEERS = {"scanner": {"ae_title": "CT_SIM", "silent_after": "4h"}, "tps": {"ae_title": "TPS", "silent_after": "2h"},
         "pacs": {"ae_title": "PACS", "silent_after": "1d"}, "orthanc": {"ae_title": "ORTHANC"}}


def instance(n: int, sender: str, received: datetime) -> ReceivedInstance:
    tags = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": f"2.25.{n}", "PatientID": "P1",
            "StudyInstanceUID": "2.25.100", "SeriesInstanceUID": "2.25.200", "Modality": "CT"}
    return ReceivedInstance(f"{n:064x}", 100, received.strftime("%Y-%m-%dT%H:%M:%SZ"), calling_ae=sender, tags=tags)


def site(tmp_path: Path, hook_url: str = "") -> Path:
    path = write_config(tmp_path / "rtvault.toml", stores={"primary": tmp_path / "store"},
                        catalog={"url": f"sqlite:///{tmp_path / 'catalog.sqlite'}"},
                        daemon={"state_dir": tmp_path / "state"},
                        dicom={"peers": PEERS}, alerts={"webhook": {"url": hook_url}} if hook_url else None)
    config = load(path)
    init_stores(config)
    with open_catalog_for(config) as catalog:  # the scanner sent 30 min ago, twice the same object; the TPS 3 h ago
        dicom.add(catalog, "store-id", "r1", "", [instance(1, "CT_SIM", NOW - timedelta(hours=5)),
                                                   instance(2, "TPS", NOW - timedelta(hours=3))])
        dicom.add(catalog, "store-id", "r2", "", [instance(3, "CT_SIM", NOW - timedelta(minutes=30)),
                                                   instance(3, "CT_SIM", NOW - timedelta(minutes=30))])
    return path


def test_each_watched_sender_is_a_check_with_the_time_since_its_last_object(tmp_path: Path) -> None:
    config = load(site(tmp_path))
    report = evaluate(config, NOW)
    checks = {c.name: c for c in report.checks if c.kind == "dicom"}
    assert sorted(checks) == ["dicom:pacs", "dicom:scanner", "dicom:tps"]  # orthanc has no silent_after
    scanner, tps, pacs = checks["dicom:scanner"], checks["dicom:tps"], checks["dicom:pacs"]
    assert (scanner.status, scanner.value, scanner.threshold) == (Status.OK, 1800, 4 * 3600)
    assert "30 min ago" in scanner.message and "2 instance(s)" in scanner.message
    assert (tps.status, tps.value, tps.threshold) == (Status.WARNING, 3 * 3600, 2 * 3600)
    assert "nothing received from tps (AE title TPS) for 3.0 h (limit 2h)" in tps.message
    assert (pacs.status, pacs.value) == (Status.WARNING, None) and "nothing received yet from pacs" in pacs.message
    assert report.to_json()["checks"][[c.name for c in report.checks].index("dicom:tps")]["status"] == "WARNING"
    line = nagios_line(config, report)
    assert "dicom:tps WARNING: nothing received from tps" in line and "'dicom:scanner'=1800s;14400;;0" in line


def test_metrics_give_each_peers_last_object_and_instances(tmp_path: Path) -> None:
    text = exposition(load(site(tmp_path))).decode()
    last = (NOW - timedelta(minutes=30)).timestamp()
    assert f'rtvault_dicom_last_received_timestamp_seconds{{peer="scanner"}} {last:.7e}' in text
    assert 'rtvault_dicom_instances_received{peer="scanner"} 2.0' in text
    assert 'rtvault_dicom_instances_received{peer="pacs"} 0.0' in text
    assert 'rtvault_dicom_last_received_timestamp_seconds{peer="pacs"}' not in text  # never: no sample
    assert 'rtvault_health_status{check="dicom:tps"} 1.0' in text


def test_a_silent_sender_is_alerted_in_french(tmp_path: Path) -> None:
    with webhook() as hook:
        config = load(site(tmp_path, hook.url))
        notify(config, evaluate(config, NOW).checks, NOW)
        [sent] = hook.delivered
    told = {c["name"]: c for c in sent["checks"]}
    assert set(told) >= {"dicom:tps", "dicom:pacs"} and "dicom:scanner" not in told
    assert "réception DICOM de tps : plus d'échanges depuis 3 h" in sent["text"]
    assert "Plus d'échanges avec cet émetteur depuis plusieurs heures" in sent["text"]
