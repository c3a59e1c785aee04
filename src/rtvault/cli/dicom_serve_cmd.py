"""`rtvault dicom serve`: the DICOM node in the foreground (jobs/dicom_node.py)."""

from __future__ import annotations

import signal
from datetime import datetime

import click

from rtvault.cli.dicom_group import dicom
from rtvault.cli.output import AppContext, echo, reported
from rtvault.report import Report


@dicom.command("serve", epilog="""\b
Examples:
  rtvault dicom serve                              # [dicom] host, port, ae_title; Ctrl-C or SIGTERM to stop
  rtvault dicom serve --port 11112 --max-associations 20
  rtvault dicom serve --json                       # the summary as JSON when it stops
\b
Verification, Storage (CT, MR, PET, RT objects, registration, secondary capture: stored byte for byte in the
store of [dicom] store), Query/Retrieve (C-FIND at patient, study, series and image level, C-MOVE to a
[dicom.peers.NAME], C-GET). Calling AE titles not in [dicom.peers] are refused unless accept_unknown = true;
TLS with tls_cert_file and tls_key_file. One line per association, store, find and retrieve on stderr, each
also in the audit trail. SIGTERM or Ctrl-C: no new association, those under way end (10 s), what was received
is sealed into the store, exit 0. The daemon runs it itself when [dicom] port is set.
""")
@click.option("--host", default=None, help="Address to listen on (default: [dicom] host).")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="TCP port (default: [dicom] port; 0 here: any free port, said on the first line).")
@click.option("--max-associations", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Associations served at once; more are refused (transient, the peer retries).")
@click.option("--max-pdu", default=4 << 20, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Largest PDU peers may send us, in bytes (each is held in memory while it is decoded; 0: no "
                   "limit).")
@reported
@click.pass_obj
def serve_command(app: AppContext, host: str | None, port: int | None, max_associations: int, max_pdu: int,
                  as_json: bool) -> Report:
    """Run the DICOM node (Verification, Storage, Query/Retrieve) until stopped."""
    from rtvault.errors import ConfigError
    from rtvault.jobs.dicom_node import Node

    config = app.load_config()
    if port is None and not config.dicom.port:
        raise ConfigError(str(config.file), ["[dicom] port is not set (0: no DICOM node): set it, or give --port"])
    node = Node(config, log=_log, host=host, port=port, max_associations=max_associations, max_pdu=max_pdu)

    def on_signal(number: int, _frame: object) -> None:
        _log(f"{signal.Signals(number).name}: stopping (associations under way may end first)")
        node.stop()

    previous = signal.signal(signal.SIGTERM, on_signal), signal.signal(signal.SIGINT, on_signal)
    try:
        node.start()
        node.wait()
    finally:
        summary = node.close()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    return summary


def _log(line: str) -> None:
    """One line on stderr (stdout is the summary's, and --json's)."""
    echo(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S} dicom: {line}", err=True)
