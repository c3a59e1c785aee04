"""`rtvault dicom delete`: legal destruction of a DICOM patient's received objects on every store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from rtvault.cli.dicom_group import dicom
from rtvault.cli.output import AppContext, reported
from rtvault.jobs import dicom_destruction


@dicom.command("delete", epilog="""\b
Examples:
  rtvault dicom delete --mrn CT-000123 --reason "retention ended, committee of 2046-03-02" --certificate d.pdf
  rtvault dicom delete --mrn 123456 --issuer HOSP-A --reason "..." --lang en --certificate d.html
  rtvault dicom delete --patient 3f2a9c0d1e2b4a5c --reason "..." --json
  rtvault dicom delete --mrn CT-000123 --certificate d.pdf     # again: the certificate as it stands
  rtvault dicom delete --pending --json       # finish what a store offline or the node's spool kept

\b
Refused (exit 4, nothing written) unless the patient is strictly past its keep-until date (the French rule of
`archive delete`: last visit = the latest study date and reception of its objects, and of the linked Pinnacle
patient's versions; a litigation hold recorded on an archive of that patient applies). Each store holding the
objects has its receipts rewritten without them and the objects' bytes deleted (packs rewritten); a store that
does not answer, or objects still in a running node's spool, stay pending (exit 9) until `--pending`, the next
`rtvault replicate` or `rtvault verify` carries the destruction on.
""")
@click.option("--mrn", help="The patient's DICOM PatientID (its MRN).")
@click.option("--issuer", help="IssuerOfPatientID, when the MRN is used by several issuers.")
@click.option("--patient", "key", metavar="KEY", help="The catalog patient's key (`rtvault search --json`).")
@click.option("--reason", help="Why the objects are destroyed (required the first time; in the certificate, with "
                               "your user name).")
@click.option("--certificate", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the destruction certificate to this file (.pdf or .html).")
@click.option("--lang", type=click.Choice(dicom_destruction.LANGUAGES), default="fr", show_default=True,
              help="Language of the certificate.")
@click.option("--pending", is_flag=True, help="Carry on every destruction of received objects not finished.")
@reported
@click.pass_obj
def delete_command(app: AppContext, mrn: str | None, issuer: str | None, key: str | None, reason: str | None,
                   out: Path | None, lang: str, pending: bool, as_json: bool) -> dicom_destruction.DicomDestroyed:
    """Legal destruction: remove every object the DICOM node received for a patient past its keep-until date
    from every store, and certify it.

    Admin only: run by the operating-system user who can write the stores and the catalog; that user, this host
    and --reason are recorded. Run again after a crash: it carries on.
    """
    if pending:
        if mrn or key or issuer or reason or out:
            raise click.UsageError("--pending takes no --mrn, --issuer, --patient, --reason or --certificate")
        return dicom_destruction.resume(app.load_config())
    if bool(mrn) == bool(key):
        raise click.UsageError("give --mrn PATIENTID (and --issuer) or --patient KEY, or --pending")
    if key and issuer:
        raise click.UsageError("--issuer goes with --mrn")
    return dicom_destruction.destroy(app.load_config(), reason, date.today(), mrn=mrn, issuer=issuer, patient=key,
                                     out=out, lang=lang)
