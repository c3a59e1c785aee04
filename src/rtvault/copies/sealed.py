"""Checking an encrypted store without its key (what an offsite provider, or a site without the passphrase at
hand, can do): every sealed file's header, length and ciphertext checksum (docs/encryption.md). It finds bit
rot, cut and lost files; only a read with the key (`rtvault verify`) proves that nobody altered a file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rtvault.errors import Problem, StoreError
from rtvault.store import crypto, keyfile
from rtvault.store.backend import Backend

# every sealed file lives in one of these (packs/ and index/: a version 2 store's small objects and trees)
FOLDERS = ("data/", "trees/", "packs/", "index/", "snapshots/", "archives/", "verify/", "copies/",
           "journal/", "catalog/")


@dataclass
class SealedReport:
    store: str
    files: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"store": self.store, "files": self.files, "bytes": self.bytes, "duration_s": self.duration_s,
                "problems": [p.to_json() for p in self.problems], "healthy": not self.problems}


def check_without_key(name: str, inner: Backend) -> SealedReport:
    """Every sealed file of the store behind `inner`; a store that is not encrypted is refused."""
    if not keyfile.is_encrypted(inner):
        raise StoreError(f"store {name} is not encrypted: `rtvault verify` checks it completely without any key")
    started, report = time.monotonic(), SealedReport(name)
    for key in sorted(k for folder in FOLDERS for k in inner.list(folder)):
        try:
            report.bytes += crypto.check_sealed(inner, key)
            report.files += 1
        except StoreError as error:
            report.problems.append(Problem(key, str(error).split(f"{key} ", 1)[-1]))
    report.duration_s = round(time.monotonic() - started, 3)
    return report
