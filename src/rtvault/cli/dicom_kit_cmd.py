"""`rtvault dicom echo|send|find|move|check`: the test kit of a DICOM peer named in `[dicom.peers.NAME]`, rtvault
calling with `[dicom] ae_title` (jobs/dicom_peers.py and its siblings do the work)."""

from __future__ import annotations

from pathlib import Path

import click

from rtvault.cli.dicom_group import dicom
from rtvault.cli.output import AppContext, reported
from rtvault.jobs.dicom_check import Checked, check
from rtvault.jobs.dicom_peer_query import LEVELS, Criteria, Found, Moved, find, move
from rtvault.jobs.dicom_peer_send import Sent, send
from rtvault.jobs.dicom_peers import Echoed, echo

EXIT_CODES = """\b
Exit codes: 3 PEER is not a [dicom.peers.NAME] with a host and port; 11 the peer cannot be reached (port closed,
host unknown or silent), rejects the association (the message says which AE title to fix), accepts none of
the SOP classes proposed, aborts, or answers a failure status."""


@dicom.command("echo", epilog=f"""\b
Examples:
  rtvault dicom echo orthanc
  rtvault dicom echo pacs --json
{EXIT_CODES}
""")
@click.argument("peer")
@reported
@click.pass_obj
def echo_command(app: AppContext, peer: str, as_json: bool) -> Echoed:
    """Send a C-ECHO to PEER and say how long it took to answer."""
    return echo(app.load_config(), peer)


@dicom.command("send", epilog=f"""\b
Examples:
  rtvault dicom send orthanc /media/cdrom/DICOM
  rtvault dicom send pacs ct/ rtplan.dcm rtdose.dcm --json
{EXIT_CODES}
  9 some objects were not stored (each named with the peer's status or why).
""")
@click.argument("peer")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@reported
@click.pass_obj
def send_command(app: AppContext, peer: str, paths: tuple[Path, ...], as_json: bool) -> Sent:
    """Send DICOM files (or every file under folders) to PEER by C-STORE, byte for byte, and say each object's
    status."""
    return send(app.load_config(), peer, paths)


@dicom.command("find", epilog=f"""\b
Examples:
  rtvault dicom find orthanc --patient-id 2021993744
  rtvault dicom find pacs --level series --study-uid 1.2.840.1234 --modality RTPLAN --json
  rtvault dicom find pacs --name 'DUPONT*'
{EXIT_CODES}
""")
@click.argument("peer")
@click.option("--level", type=click.Choice(LEVELS), default="study", show_default=True, help="What to list.")
@click.option("--patient-id", default="", help="PatientID (wildcards * and ? allowed by most peers).")
@click.option("--name", default="", help="PatientName, as DICOM writes it (LAST^FIRST), wildcards * and ?.")
@click.option("--study-uid", default="", help="StudyInstanceUID.")
@click.option("--modality", default="", help="Modality (CT, RTSTRUCT, RTPLAN, RTDOSE ...).")
@reported
@click.pass_obj
def find_command(app: AppContext, peer: str, level: str, patient_id: str, name: str, study_uid: str, modality: str,
                 as_json: bool) -> Found:
    """Query PEER by C-FIND at the patient, study, series or image level."""
    return find(app.load_config(), peer, level, Criteria(patient_id=patient_id, name=name, study_uid=study_uid,
                                                         modality=modality))


@dicom.command("move", epilog=f"""\b
Examples:
  rtvault dicom move orthanc --to storescp --study-uid 1.2.840.1234
  rtvault dicom move pacs --to rtvault --patient-id 2021993744 --json
{EXIT_CODES}
  9 the peer sent some objects and failed others.
""")
@click.argument("peer")
@click.option("--to", "to", required=True, help="The destination: another [dicom.peers.NAME], known to PEER.")
@click.option("--patient-id", default="", help="Move every study of this patient.")
@click.option("--study-uid", default="", help="Move this study.")
@click.option("--series-uid", default="", help="Move this series.")
@reported
@click.pass_obj
def move_command(app: AppContext, peer: str, to: str, patient_id: str, study_uid: str, series_uid: str,
                 as_json: bool) -> Moved:
    """Ask PEER by C-MOVE to send a patient, a study or a series to another peer."""
    return move(app.load_config(), peer, to, Criteria(patient_id=patient_id, study_uid=study_uid,
                                                      series_uid=series_uid))


@dicom.command("check", epilog="""\b
Examples:
  rtvault dicom check orthanc
  rtvault dicom check pacs --json | jq '.steps[] | select(.ok | not)'
\b
Three steps, each ok or failed with why: echo (C-ECHO), store (C-STORE of a synthetic Secondary Capture image
of patient RTVAULT-TEST, TEST^RTVAULT, left on the peer), find (C-FIND of its study).
Exit codes: 0 every step passed; 3 PEER is not a [dicom.peers.NAME] with a host and port; 7 a step failed.
""")
@click.argument("peer")
@reported
@click.pass_obj
def check_command(app: AppContext, peer: str, as_json: bool) -> Checked:
    """Check PEER: echo, store a synthetic test object, find it; say what works."""
    return check(app.load_config(), peer)
