"""What the fault tests share: a small tmpfs (a disk that fills up, or is remounted read-only), a command run
without root's power to read everything (as rtvault's service user would be), and a site with a synthetic
database, a configuration and a store."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kit.cli import run_cli
from kit.config import write_config

# Run as root, the tests would read everything: the command drops the capabilities that bypass file
# permissions (what a service user lacks), so a mode-000 directory is unreadable to it.
WITHOUT_ROOT_READ = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def can_drop_read_capabilities() -> str | None:
    """Why an unreadable file cannot be simulated here, or None when it can."""
    if os.geteuid() != 0:
        return None  # an ordinary user already cannot read a mode-000 file
    try:
        done = subprocess.run([*WITHOUT_ROOT_READ, "true"], capture_output=True, timeout=10)
    except FileNotFoundError:
        return "setpriv (util-linux) is not installed: cannot drop root's read capabilities"
    return None if done.returncode == 0 else f"setpriv cannot drop capabilities here: {done.stderr.decode()}"


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (skipped, with the reason, where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the disk-full test (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


def fill(disk: Path) -> Path:
    """Fill a small file system until it is full; returns the filler, to delete to free the space."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
        except OSError:
            pass
    return filler


@dataclass
class Site:
    """A synthetic Pinnacle database, a configuration and a store; `run` is rtvault as the operator types it."""

    root: Path
    db: Path
    store: Path
    config: Path
    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, expect: int | None = 0, unprivileged: bool = False,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        via = WITHOUT_ROOT_READ if unprivileged and os.geteuid() == 0 else []
        done = run_cli(*args, config=self.config, expect=None, timeout=timeout, via=via)
        text = done.stdout + done.stderr
        self.outputs.append(text)
        assert "internal error" not in text, text
        if expect is not None:
            assert done.returncode == expect, f"rtvault {' '.join(args)}: exit {done.returncode}\n{text}"
        return done

    def json(self, *args: str, expect: int | None = 0, unprivileged: bool = False) -> dict:
        return json.loads(self.run(*args, "--json", expect=expect, unprivileged=unprivileged).stdout)

    def patients(self) -> list[Path]:
        return sorted(self.db.glob("Institution_*/Mount_*/Patient_*"))

    def staged(self) -> list[Path]:
        return sorted((self.store / "tmp").glob("*")) if (self.store / "tmp").is_dir() else []


def make_site(root: Path, *, store: Path | None = None, patients: int = 4, image_mb: float = 0.2,
              seed: int = 5) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    db, store = root / "db", store or root / "store"
    run_cli("demo", "generate", "--out", db, "--patients", str(patients), "--seed", str(seed), "--image-mb",
            str(image_mb))
    config = write_config(root / "rtvault.toml", root=db, stores={"primary": store},
                          catalog={"url": f"sqlite:///{root / 'catalog.sqlite'}"})
    site = Site(root, db, store, config)
    site.run("init")
    return site


def backed_up_site(root: Path, patients: int) -> Site:
    """A site already backed up once, for tests that run rtvault without root's read capabilities (skipped,
    with the reason, where they cannot be dropped)."""
    if reason := can_drop_read_capabilities():
        pytest.skip(reason)
    site = make_site(root, patients=patients)
    site.run("backup")
    return site
