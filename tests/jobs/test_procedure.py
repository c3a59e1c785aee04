"""`rtvault procedure`: the site's printed procedures, as a user prints them: the PDF's first page rendered to an
image (not blank) and its text read back (this site's stores, the restore command with its configuration file, the
targets and the last drill's figures, whom to call); missing contacts give fields to complete and a note on
stderr; English on demand; nothing from the configuration ever becomes markup; a broken catalog costs only the
figures; bad output paths are one clear sentence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pypdfium2
import pytest

from kit.cli import rtvault, rtvault_json
from kit.config import write_config
from kit.faults import fill, small_disk
from rtvault.catalog import runs as catalog_runs
from rtvault.catalog import volumes as catalog_volumes
from rtvault.config import load
from rtvault.configured import open_catalog_for
from rtvault.jobs.journal import run_record
from rtvault.jobs.procedure import write_procedure

CONTACTS = ["Physicien: Dr Anne Martin, 01 23 45 67 89", "Informatique: astreinte, 01 23 45 67 00"]
DRILLS = [{"store": "primary", "kind": "patient", "key": "Institution_1/Mount_0/Patient_7", "bytes": 7_100_000,
           "seconds": 12.3, "mb_per_s": 0.58, "full_estimate_s": 1050.0, "within_rto": True, "result": "ok",
           "error": ""},
          {"store": "offsite", "kind": "patient", "key": "Institution_1/Mount_0/Patient_3", "bytes": 5_000_000,
           "seconds": 41.0, "mb_per_s": 0.12, "full_estimate_s": 2460.0, "within_rto": False, "result": "ok",
           "error": ""}]


def _site(base: Path, *, site: dict | None = None, primary: str = "nas1", drilled: bool = True) -> Path:
    (base / "imports").mkdir(parents=True, exist_ok=True)
    config = write_config(base / "rtvault.toml", root="/PrimaryPatientData/NewPatients",
                          stores={"primary": f"/mnt/{primary}/rtvault",
                                  "offsite": {"path": "/mnt/offsite/rtvault", "copy_of": "primary"}},
                          catalog={"url": f"sqlite:///{base / 'catalog.sqlite'}"},
                          web={"restore_dir": base / "imports"},
                          site={"name": "CHU d'Exemple, radiothérapie", "contacts": CONTACTS} if site is None
                          else site)
    with open_catalog_for(load(config)) as catalog:
        if drilled:
            start = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
            record = run_record("drill", "schedule", start, start, "ok", "", {"drills": DRILLS})
            catalog_runs.add(catalog, [{**record, "id": "20261201T053000Z-drill"}])
        catalog_volumes.register(catalog, catalog_volumes.Volume("archives-2025-a", "0f3c-uuid", "/media/usb-a",
                                                                 "2026-01-05T10:00:00Z", "2026-11-30T09:00:00Z"))
    return config


def _flat(text: str) -> str:
    """Text without any whitespace: a line the PDF wrapped reads as it was written."""
    return "".join(text.split())


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def test_the_pdf_tells_this_site_how_to_restore_a_patient_and_rebuild(tmp_path: Path) -> None:
    config = _site(tmp_path)
    out = tmp_path / "procedures.pdf"
    done = rtvault(config, "procedure", "--out", out)
    assert done.stderr == "" and str(out) in done.stdout
    page = pypdfium2.PdfDocument(out)[0].render(scale=1).to_pil().convert("L")
    dark = page.histogram()[:128]
    dark = sum(dark)
    assert dark > 0.005 * page.width * page.height  # words on the page, not a blank sheet
    text = _pdf_text(out)
    flat = _flat(text)
    for expected in ("CHU d'Exemple, radiothérapie", "Dr Anne Martin, 01 23 45 67 89", "/mnt/nas1/rtvault",
                     "/mnt/offsite/rtvault", f"rtvault --config {config} restore --patient <MRN> --to "
                     f"{tmp_path / 'imports'}/<MRN>",
                     f"rtvault --config {config} restore --all --store primary --to /PrimaryPatientData/NewPatients",
                     f"rtvault --config {config} restore --all --store offsite --to /PrimaryPatientData/NewPatients",
                     f"rtvault --config {config} failover --to offsite", f"rtvault --config {config} failback",
                     "(RTO) : 10 min", "(RTO) : 30 min", "(RPO) : 6h", "12.3 s", "17.5 min", "41.0 s", "41.0 min",
                     "archives-2025-a", "/media/usb-a", "Restaurer un patient", "physicien ou dosimétriste",
                     "Reconstruire le serveur Pinnacle", f"rtvault --config {config} reconcile",
                     f"rtvault --config {config} journal verify"):
        assert _flat(expected) in flat, expected
    assert "À compléter" not in text.replace("Rangé où", "")
    assert len(pypdf.PdfReader(out).pages) >= 3


@pytest.mark.slow
def test_missing_contacts_print_fields_to_complete_and_say_so(tmp_path: Path) -> None:
    config = _site(tmp_path, site={})
    out = tmp_path / "procedures.pdf"
    done = rtvault(config, "procedure", "--role", "physicist", "--out", out)
    assert "to be completed: [site] name, [site] contacts not set in the configuration" in done.stderr
    text = _pdf_text(out)
    assert text.count("À compléter") >= 5  # the centre, and each of the four people to call
    assert "Physique médicale" in text and "Informatique (astreinte)" in text
    assert "failover" not in text and "Disques amovibles" not in text  # a physicist's paper: restore and rebuild
    assert "Restaurer un patient" in text and "Reconstruire le serveur Pinnacle" in text
    assert rtvault_json(config, "procedure", "--out", tmp_path / "p.html")["missing"] == ["[site] name",
                                                                                        "[site] contacts"]


def test_english_on_demand(tmp_path: Path) -> None:
    config = _site(tmp_path, site={"contacts": CONTACTS})
    out = tmp_path / "operator.pdf"
    done = rtvault(config, "procedure", "--lang", "en", "--role", "operator", "--out", out)
    assert "[site] name" in done.stderr and "[site] contacts" not in done.stderr
    text = _pdf_text(out)
    for expected in ("Operating and emergency procedures", "To be completed", "Restore one patient",
                     "Fail over to the copy, and back", "Checks: IT operator", "Removable disks", "Whom to call"):
        assert expected in text, expected
    assert "Restaurer" not in text and "À compléter" not in text and "physicist" not in text


def test_nothing_from_the_configuration_becomes_markup(tmp_path: Path) -> None:
    config = _site(tmp_path, primary="<script>alert(1)</script>",
                   site={"name": "<b>CHU</b> & co", "contacts": ["Physique: <img src=x onerror=alert(1)>, 0102"]})
    out = write_procedure(load(config), tmp_path / "p.html", "fr")
    html = out.read_text(encoding="utf-8")
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "/mnt/&lt;script&gt;alert(1)&lt;/script&gt;/rtvault" in html
    assert "&lt;b&gt;CHU&lt;/b&gt; &amp; co" in html and "&lt;img src=x onerror=alert(1)&gt;, 0102" in html


def test_a_broken_catalog_costs_only_the_figures(tmp_path: Path) -> None:
    config = _site(tmp_path)
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    out = tmp_path / "p.html"
    rtvault(config, "procedure", "--out", out)
    html = out.read_text(encoding="utf-8")
    assert "Chiffres mesurés indisponibles : le catalogue n&#39;a pas pu être lu" in html
    assert "restore --all --store primary --to /PrimaryPatientData/NewPatients" in html


def test_no_drill_yet_says_to_run_one(tmp_path: Path) -> None:
    config = _site(tmp_path, drilled=False)
    html = write_procedure(load(config), tmp_path / "p.html", "en").read_text(encoding="utf-8")
    assert "No restore drill is recorded: run one" in html and f"rtvault --config {config} drill" in html


@pytest.mark.parametrize(("name", "message"), [
    ("procedures.txt", "cannot tell the format of"),
    ("missing/procedures.pdf", "does not exist: create it or give another --out"),
])
def test_a_wrong_output_is_one_sentence(tmp_path: Path, name: str, message: str) -> None:
    config = _site(tmp_path)
    done = rtvault(config, "procedure", "--out", tmp_path / name, expect=4)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_full_disk_is_one_sentence_and_leaves_no_half_file(tmp_path: Path) -> None:
    config = _site(tmp_path)
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk)
        done = rtvault(config, "procedure", "--out", disk / "p.pdf", expect=4)
        assert f"cannot write {disk / 'p.pdf'}" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no half-written procedure, no temporary


def test_bad_contacts_are_refused_with_the_form_to_use(tmp_path: Path) -> None:
    config = _site(tmp_path)
    config.write_text(config.read_text().replace(CONTACTS[0], "Dr Martin 0123"))
    done = rtvault(config, "config", "check", expect=3)
    assert 'each contact must read "Role: Name, phone"' in done.stderr
