"""Browser test kit: Debian's Chromium driven by Playwright, a real deployment (synthetic Pinnacle database,
store, catalog, users) served by `rtvault serve` in a subprocess, and numbered screenshots kept as artifacts.

The fixtures (`chromium`, `deployment`, `shots`: one browser and one server per module) are in e2e/conftest.py.
Playwright's own browser download is never used (`playwright install` is not reachable from here or CI).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kit.cli import run_cli
from kit.config import write_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PASSWORDS = {"viewer": "viewer-pass-2026!", "operator": "operator-pass-2026!", "admin": "admin-pass-2026!"}
SEED, PATIENTS, IMAGE_MB = 7, 8, 0.2  # seed 7 holds DURAND-LEFÈVRE Jean-François
STORY_PATIENT = "DURAND-LEF\u00c8VRE"
HOSTILE_NAME = "<script>alert('rtvault-last')</script>"
HOSTILE_FIRST = "<img src=x onerror=alert('rtvault-first')>"
HOSTILE_MRN = "XSS0000001"
STARTUP_SECONDS = 20.0


# --- the browser -----------------------------------------------------------------------------------------------

class Screenshots:
    """Writes `test-artifacts/screenshots/<prefix>-NN-name.png`, numbered in the order a test takes them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{prefix}-*.png"):  # a rerun must not leave a stale step behind
            old.unlink()

    def take(self, page: object, name: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path


# --- the deployment --------------------------------------------------------------------------------------------

@dataclass
class Deployment:
    """A working directory with rtvault.toml, the Pinnacle database, a store, the catalog and restore_dir."""

    home: Path
    database: Path
    restore_dir: Path
    url: str = ""

    @property
    def config(self) -> Path:
        return self.home / "rtvault.toml"

    def rtvault(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.config, cwd=self.home, stdin=stdin)


def write_site_config(home: Path, port: int) -> Path:
    return write_config(home / "rtvault.toml", root=home / "pinnacle", stores={"primary": home / "store"},
                        catalog={"url": "sqlite:///catalog.sqlite"},
                        web={"host": "127.0.0.1", "port": port, "restore_dir": "restores", "secure_cookies": False})


def patient_dir(database: Path, last_name: str) -> Path:
    """The directory of the patient whose Patient file (Latin-1, as Pinnacle writes it) has this last name."""
    wanted = f'LastName = "{last_name}";'.encode("latin-1")
    for found in sorted(database.glob("Institution_*/Mount_*/Patient_*/Patient")):
        if wanted in found.read_bytes():
            return found.parent
    raise AssertionError(f"no patient {last_name} under {database}")


def set_field(patient_file: Path, field: str, value: str) -> None:
    text = patient_file.read_bytes().decode("latin-1")
    text = re.sub(rf'(?m)^(\s*{field} = )"[^"]*";', lambda m: f'{m.group(1)}"{value}";', text)
    patient_file.write_bytes(text.encode("latin-1"))


def add_hostile_patient(database: Path, model: str) -> None:
    """A copy of a patient, named with markup (a patient may be named `<script>`); only in its directory,
    not in the Institution file's list, as a patient copied in by hand would be."""
    source = patient_dir(database, model)
    copy = source.parent / "Patient_99001"
    shutil.copytree(source, copy)
    text = (copy / "Patient").read_bytes().decode("latin-1")
    text = re.sub(r"PatientID = \d+;", "PatientID = 99001;", text).replace(source.name, copy.name)
    (copy / "Patient").write_bytes(text.encode("latin-1"))
    for field, value in (("LastName", HOSTILE_NAME), ("FirstName", HOSTILE_FIRST),
                         ("MedicalRecordNumber", HOSTILE_MRN), ("MRN", HOSTILE_MRN)):
        set_field(copy / "Patient", field, value)


def edit_story_patient(database: Path) -> None:
    """A clinical edit of the story's patient, so its two backups hold two different versions."""
    patient = patient_dir(database, STORY_PATIENT) / "Patient"
    set_field(patient, "Comment", "Contention masque 5 points, revue du 2026-01-06")


def prepare(home: Path, port: int) -> Deployment:
    """Two backups around one clinical day (so: two versions of the story's patient and an archived patient),
    a patient named with markup, and three users."""
    home.mkdir(parents=True, exist_ok=True)
    run_cli("demo", "generate", "--out", str(home / "pinnacle"), "--patients", str(PATIENTS),
            "--seed", str(SEED), "--image-mb", str(IMAGE_MB), cwd=home)
    write_site_config(home, port)
    deployment = Deployment(home, home / "pinnacle", home / "restores")
    deployment.restore_dir.mkdir()
    add_hostile_patient(deployment.database, "GAUTHIER")
    deployment.rtvault("init")
    deployment.rtvault("backup")
    run_cli("demo", "evolve", "--db", str(deployment.database), "--day", "1", cwd=home)
    edit_story_patient(deployment.database)
    deployment.rtvault("backup")
    for role, password in PASSWORDS.items():
        deployment.rtvault("user", "add", role, "--role", role, stdin=password + "\n")
    return deployment


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"rtvault serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/login", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if not with 200
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"rtvault serve did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
