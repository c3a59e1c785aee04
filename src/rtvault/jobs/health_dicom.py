"""The `dicom` health check: with `[dicom] port` set, whether the DICOM node listens there (the daemon runs it:
`rtvault dicom serve`); no check when no node is configured."""

from __future__ import annotations

import socket

from rtvault.jobs.health_survey import Survey
from rtvault.jobs.health_types import Check, Status

CONNECT_TIMEOUT_S = 3.0


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
        return Check("dicom", Status.CRITICAL, 0, 1,
                     f"the DICOM node ({dicom.ae_title}) does not listen on {where} ({error.strerror or error}): "
                     "peers cannot send; start `rtvault daemon` (it runs `rtvault dicom serve`) and read its log")
    return Check("dicom", Status.OK, 1, 1, f"the DICOM node ({dicom.ae_title}) listens on {where}")
