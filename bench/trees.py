"""The databases of bench/backup.py: generating each kind, hashing trees, checking restores, picking patients."""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tools import EXCLUDES

MB_PER_PATIENT = 18.9e6  # measured at --image-mb 8, seed 1: a first guess, corrected after generation


def apparent_bytes(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def file_count(path: Path) -> int:
    """`find PATH -type f | wc -l`."""
    return sum(len(files) for _dir, _dirs, files in os.walk(path))


def rtvault_cli(args: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-m", "rtvault", *args], check=True, stdout=out, stderr=out)


def generate_patients(db: Path, patients: int, image_mb: float, log: Path) -> dict[str, object]:
    shutil.rmtree(db, ignore_errors=True)
    rtvault_cli(["demo", "generate", "--out", str(db), "--patients", str(patients), "--seed", "1",
                 "--image-mb", f"{image_mb:g}"], log)
    size = apparent_bytes(db)
    print(f"generated {patients} patients, {size / 1e9:.2f} GB, image-mb {image_mb:g}", flush=True)
    return {"patients": patients, "image_mb": image_mb, "bytes": size, "files": file_count(db)}


def generate_size(db: Path, size_gb: float, image_mb: float, log: Path) -> dict[str, object]:
    """At least size_gb GiB (apparent size); regenerated with more patients when short."""
    target = int(size_gb * 2**30)
    n = math.ceil(target / MB_PER_PATIENT * 1.03)
    while True:
        database = generate_patients(db, n, image_mb, log)
        if int(database["bytes"]) >= target:
            return database
        n = math.ceil(n * target / int(database["bytes"]) * 1.02)


def hash_tree(root: Path, skip_transient: bool) -> dict[str, tuple[int, str]]:
    """Every regular file under root: relative path -> (size, SHA-256)."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if skip_transient and any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDES):
                continue
            with open(path := Path(dirpath) / name, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            found[path.relative_to(root).as_posix()] = (path.stat().st_size, digest)
    return found


def compare(expected: dict[str, tuple[int, str]], root: Path) -> str:
    got = hash_tree(root, skip_transient=False)
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    differ = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    if not (missing or extra or differ):
        return f"verified ({len(got)} files)"
    examples = sorted(missing | extra)[:3] + differ[:3]
    return f"MISMATCH: {len(missing)} missing, {len(extra)} extra, {len(differ)} differ (e.g. {examples})"


def patient_sizes(source: dict[str, tuple[int, str]]) -> Counter[str]:
    sizes: Counter[str] = Counter()
    for rel, (size, _digest) in source.items():
        if rel.count("/") >= 3:  # Institution_I/Mount_M/Patient_P/...
            sizes["/".join(rel.split("/")[:3])] += size
    return sizes


def pick_patient(source: dict[str, tuple[int, str]]) -> tuple[str, int]:
    """The patient of median size: Institution_I/Mount_M/Patient_P and its bytes."""
    ranked = sorted(patient_sizes(source).items(), key=lambda item: item[1])
    return ranked[len(ranked) // 2]


def patient_dirs(db: Path) -> set[str]:
    """Institution_I/Mount_M/Patient_P of every patient directory."""
    return {p.relative_to(db).as_posix() for p in db.glob("Institution_*/Mount_*/Patient_*") if p.is_dir()}
