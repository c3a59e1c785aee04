"""A mounted removable disk read as a store of archives: `rtvault restore --volume NAME` and the drills of
mounted disks restore a patient from the disk's own copy of an archive, never from a store.

The disk holds, per archive, the archive file byte for byte and its index (`archives/<id>/index.json`,
copies/volume_disk.py). `VolumeArchives` answers the few keys an archive restore reads (`archives/<id>.json`,
the listing of `archives/`); `member_reader` reads a member's bytes from the disk's archive file at the offset
the index gives (in the decompressed stream for a `.tar.gz`), each checked against the member's SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from rtvault.archive.formats import ArchiveMember, ArchiveRecord
from rtvault.copies import volume_disk as disk
from rtvault.errors import StoreError
from rtvault.store import Store

_RECORD = re.compile(r"archives/([0-9a-f]{64})\.json")
BLOCK = 1 << 20
Blocks = Callable[[], Iterator[bytes]]


class VolumeArchives:
    """The read-only backend of a mounted disk's archives (the keys an archive restore reads)."""

    def __init__(self, root: Path, label: str) -> None:
        self.root, self.location = root, f"volume {label} ({root})"

    def _folder(self, archive_id: str) -> Path:
        return self.root / disk.ARCHIVES / archive_id

    def list(self, prefix: str) -> list[str]:
        if prefix != "archives/":
            return []
        return [f"archives/{archive_id}.json" for archive_id in disk.complete_archives(self.root)]

    def get(self, key: str) -> bytes:
        match = _RECORD.fullmatch(key)
        if match is None:
            raise StoreError(f"{key} is not kept on {self.location}")
        try:
            return (self._folder(match[1]) / disk.INDEX).read_bytes()
        except OSError as error:
            raise StoreError(f"{self.location}: cannot read the index of archive {match[1][:12]} "
                             f"({error.strerror or error}): run `rtvault volume verify`") from None

    def exists(self, key: str) -> bool:
        match = _RECORD.fullmatch(key)
        return match is not None and (self._folder(match[1]) / disk.INDEX).is_file()

    def archive_file(self, record: ArchiveRecord) -> Path:
        return self._folder(record.id) / disk.file_name(record)


def open_volume(root: Path, label: str) -> Store:
    return Store(VolumeArchives(root, label), {})  # type: ignore[arg-type]


def member_reader(volume: VolumeArchives) -> Callable[[Store, ArchiveRecord, ArchiveMember], Blocks]:
    """How a member's content is read from the disk's archive file, checked against its hash."""

    def reader(_store: Store, record: ArchiveRecord, member: ArchiveMember) -> Blocks:
        def blocks() -> Iterator[bytes]:
            path = volume.archive_file(record)
            hasher, left = hashlib.sha256(), member.size
            try:
                with _open(path, record.compression) as archive:
                    archive.seek(member.data_offset or 0)
                    while left > 0 and (block := archive.read(min(BLOCK, left))):
                        hasher.update(block)
                        left -= len(block)
                        yield block
            except (OSError, EOFError, zlib.error) as error:
                raise StoreError(f"{volume.location}: {path.name} cannot be read at {member.name} ({error}): run "
                                 "`rtvault volume verify`, which repairs it from its recovery data") from None
            if left or hasher.hexdigest() != member.hash:
                raise StoreError(f"{volume.location}: {member.name} in {path.name} does not match the archive's "
                                 "index: run `rtvault volume verify`")

        return blocks

    return reader


def _open(path: Path, compression: str) -> BinaryIO:
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")  # type: ignore[return-value]
