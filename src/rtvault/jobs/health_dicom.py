"""The DICOM node's health checks. `dicom_node`: with `[dicom] port` set, whether the node listens there (the
daemon runs it: `rtvault dicom serve`); no check when no node is configured. `dicom:<peer>` and the metrics: per
[dicom.peers.NAME] with `silent_after`, how long since its last object was received (the newest `dicom_instances`
row whose calling AE title is the peer's): WARNING when longer than silent_after, or when nothing was ever received
from it; OK otherwise. The same reading gives `/metrics` the time of each peer's last object and how many instances
it sent that the vault holds."""

from __future__ import annotations

import socket
from collections.abc import Callable

from rtvault.catalog import Catalog
from rtvault.config.unattended import seconds
from rtvault.errors import RtvaultError
from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status

CONNECT_TIMEOUT_S = 3.0


def watched(survey: Survey) -> list[tuple[str, Callable[[], Check | None]]]:
    """(check name, producer) of each peer with `silent_after`, in the configuration's order."""
    peers = survey.config.dicom.peers
    return [(f"dicom:{name}", lambda name=name: sender_check(survey, name)) for name, peer in peers.items()
            if peer.silent_after]


def last_received(catalog: Catalog, ae_title: str) -> tuple[str | None, int]:
    """When the newest instance from this AE title was received (None: never) and how many distinct instances
    from it the catalog holds; one index range (calling_ae, received)."""
    row = catalog.one("SELECT MAX(received), COUNT(DISTINCT sop_instance) FROM dicom_instances WHERE calling_ae = ?",
                      (ae_title,))
    return (row[0], int(row[1] or 0)) if row else (None, 0)


def _span(age: float) -> str:
    if age < 3600:
        return f"{age / 60:.0f} min"
    return f"{age / 3600:.1f} h" if age < 172800 else f"{age / 86400:.1f} days"


def sender_check(survey: Survey, name: str) -> Check:
    peer = survey.config.dicom.peers[name]
    check, limit = f"dicom:{name}", float(seconds(peer.silent_after))
    try:
        newest, count = last_received(survey.catalog(), peer.ae_title)
    except RtvaultError as error:
        return Check(check, Status.UNKNOWN, None, limit, f"cannot read what {name} sent: {error}", "s")
    if newest is None:
        return Check(check, Status.WARNING, None, limit,
                     f"nothing received yet from {name} (AE title {peer.ae_title}): check that it sends to this node "
                     "(`rtvault dicom echo " + name + "`, its destination's AE title, host and port)", "s")
    age = max(0.0, survey.age_of(newest) or 0.0)
    if age > limit:
        return Check(check, Status.WARNING, age, limit,
                     f"nothing received from {name} (AE title {peer.ae_title}) for {_span(age)} (limit "
                     f"{peer.silent_after}), its last object at {newest}: check that it is running and still sends "
                     "to this node (`rtvault dicom echo " + name + "`)", "s")
    return Check(check, Status.OK, age, limit, f"last object from {name} received {_span(age)} ago, at {newest} "
                 f"({count} instance(s) held)", "s")


def dicom_check(survey: Survey) -> Check | None:
    dicom = survey.config.dicom
    if not dicom.port:
        return None
    host = "127.0.0.1" if dicom.host in ("", "0.0.0.0") else "::1" if dicom.host == "::" else dicom.host
    where = f"{host}:{dicom.port}"
    try:
        with socket.create_connection((host, dicom.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        return Check("dicom_node", Status.CRITICAL, 0, 1,
                     f"the DICOM node ({dicom.ae_title}) does not listen on {where} ({error.strerror or error}): "
                     "peers cannot send; start `rtvault daemon` (it runs `rtvault dicom serve`) and read its log")
    return Check("dicom_node", Status.OK, 1, 1, f"the DICOM node ({dicom.ae_title}) listens on {where}")
