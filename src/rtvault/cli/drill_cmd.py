"""`rtvault drill`: restores from each store, timed and checked against the continuity targets."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, reported
from rtvault.jobs.drill import DrillReport, drill


@click.command("drill", epilog="""\b
Examples:
  rtvault drill                      # every store: a patient and an archived patient, timed and checked
  rtvault drill --store offsite --json
  rtvault drill --full               # also the whole newest snapshot, for real (takes as long as a disaster)
\b
Each drill restores into [continuity] drill_dir (emptied afterwards, whatever happens), re-reads every file and
compares it with the store's hashes, and holds its time against [continuity] rto_patient_minutes; the full restore
of the newest snapshot is extrapolated from the patient's data rate and held against rto_full_minutes. Recorded in
the run journal (`rtvault runs --job drill`); `rtvault health` warns when the last one is older than
drill_every_days. Exit 7 when a drill failed or missed its target, 8 when a store could not be drilled.
""")
@click.option("--store", "store_name", default=None, metavar="NAME", help="Drill only this store.")
@click.option("--full", is_flag=True, help="Also restore the whole newest snapshot of each store.")
@click.option("--patient", "patient", default=None, metavar="KEY",
              help="Drill this patient (MRN, PatientID or path) instead of one chosen at random.")
@reported
@click.pass_obj
def drill_command(app: AppContext, store_name: str | None, full: bool, patient: str | None,
                  as_json: bool) -> DrillReport:
    """Restore drills: prove that each store gives its patients back, and how fast."""
    return drill(app.load_config(), store_name, full=full, patient=patient)
