"""The patient access bundle as a library caller gets it (`jobs.bundle.export_bundle`): a patient whose name is
markup and format fields is printed as text in the summary and the README; a bundle whose CT the store lost is
written without slices, what is missing named, and the destination is whole or absent."""

from __future__ import annotations

from pathlib import Path

import pypdf
import pytest

from kit.archive import make_vault
from kit.files import set_field
from kit.store import lose
from rtvault.errors import InputError
from rtvault.jobs.bundle import export_bundle
from rtvault.store.objects import data_key

HOSTILE = "<b>Zoé</b> & {mrn} %s"


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages).split())


@pytest.fixture
def vault(tmp_path: Path):
    from rtvault.demo import generate_database

    generate_database(tmp_path / "pinnacle", patients=1, seed=5, image_mb=0.05)
    patient = next((tmp_path / "pinnacle").glob("Institution_*/Mount_*/Patient_*"))
    set_field(patient / "Patient", "FirstName", HOSTILE)
    made = make_vault(tmp_path / "site", tmp_path / "pinnacle")
    made.backup()
    return made


def test_a_name_made_of_markup_is_printed_as_text(tmp_path: Path, vault) -> None:
    path = vault.patient_paths()[0]
    report = export_bundle(vault.config, vault.store, path, tmp_path / "bundle", lang="en")
    assert report.missing == [] and report.verdict().code == 0
    assert HOSTILE in _text(tmp_path / "bundle" / "summary.pdf")
    readme = (tmp_path / "bundle" / "README.txt").read_text(encoding="utf-8")
    assert HOSTILE in readme and "Produced by rtvault" in readme
    with pytest.raises(InputError, match="unknown language"):
        export_bundle(vault.config, vault.store, path, tmp_path / "other", lang="de")
    assert not (tmp_path / "other").exists()


def test_a_ct_the_store_lost_gives_a_bundle_without_slices_and_names_it(tmp_path: Path, vault) -> None:
    path = vault.patient_paths()[0]
    store = vault.store
    snapshot = store.manifests()[-1]
    tree = store.get_tree(snapshot.patient(path).tree)
    lose(vault.store_path, data_key(tree.by_name()["ImageSet_0.img"].hash))
    report = export_bundle(vault.config, vault.store, path, tmp_path / "bundle")
    assert report.verdict().code == 9
    assert any("no slices in summary.pdf" in m for m in report.missing), report.missing
    summary = _text(tmp_path / "bundle" / "summary.pdf")
    assert "Non exporté" in summary and "Pas de coupe" in summary and "UM par fraction" in summary
    assert "Non exporté" in (tmp_path / "bundle" / "README.txt").read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".bundle*"))  # no temporary sibling left
