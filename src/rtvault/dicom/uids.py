"""Deterministic DICOM UIDs (docs/design.md, "DICOM export"): exporting the same patient version twice gives the
same UIDs, byte for byte the same files; two versions, two patients or two objects never share one.

A UID is the configured root (`[dicom] uid_root`, by default `2.25`, the UUID-derived root that needs no
registration) followed by one decimal number: the first 128 bits of the SHA-256 of the parts that name the
object (the patient's identity, the source version: a tree hash or an archive id, then what the object is),
cut to the digits that keep the UID within DICOM's 64 characters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_LENGTH = 64  # a UI value's length (PS3.5 table 6.2-1)
DEFAULT_ROOT = "2.25"


def derive(root: str, *parts: str) -> str:
    """The UID of the object `parts` name, under `root`: digits of a 128-bit hash, without a leading zero."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    number = str(int.from_bytes(digest[:16], "big"))
    room = MAX_LENGTH - len(root) - 1
    if room < 20:  # ~66 bits at least: settings refuse a root longer than 32 characters
        raise ValueError(f"UID root {root!r} leaves too little room for a unique number")
    number = number[:room].lstrip("0") or "1"
    return f"{root}.{number}"


@dataclass(frozen=True)
class Ids:
    """The UIDs of one export: of a patient (`patient`: its identity, e.g. the catalog key) as one source
    version holds it (`version`: the tree hash of a snapshot's version, or the archive id)."""

    root: str
    patient: str
    version: str

    def of(self, *what: str) -> str:
        """The UID of one thing of this export: `ids.of("study")`, `ids.of("ct", "ImageSet_0", "series")`,
        `ids.of("ct", "ImageSet_0", "slice", "12")`."""
        return derive(self.root, self.patient, self.version, *what)

    @property
    def study(self) -> str:
        return self.of("study")

    def frame_of_reference(self, image_set: str) -> str:
        return self.of("frame-of-reference", image_set)
