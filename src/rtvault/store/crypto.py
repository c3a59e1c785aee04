"""Client-side encryption of a store: `EncryptedBackend` wraps any backend, so an offsite store (an S3 bucket, a
disk that leaves the building) only ever holds ciphertext.

Every store file is sealed with AES-256-GCM in 1 MiB chunks under a key of its own, derived from the store's
master key and a random salt in the file's header; the chunk counter and a final-chunk flag make the nonces,
and the final chunk's associated data names the file, so a truncated, reordered, swapped or altered file fails
to open. A SHA-256 of the whole ciphertext ends every file: bit rot shows without the key (`check_sealed`).
The master key lives in the store (`keys/master.json`) wrapped under a key derived from a passphrase with
scrypt. docs/encryption.md gives the format byte by byte, the threat model and the recovery procedure.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag

from rtvault.errors import StoreError
from rtvault.store.backend import Backend, Staged
from rtvault.store.keyfile import MasterKey, create_master, is_encrypted, load_master
from rtvault.store.readers import PositionedReader, read_exact

MAGIC = b"RTVE"
VERSION = 1
CHUNK_SHIFT = 20
TAG = 16
HEADER = 32  # magic, version, chunk shift, 2 zero bytes, key id (8), salt (16)
TRAILER = 32  # SHA-256 of header and chunks
PLAIN = ("rtvault-store.json",)  # readable without the key: the store says what it is (no patient data)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + bytes([final])


def unlock(inner: Backend, passphrase: bytes, *, create: bool = False,
           kdf: dict[str, int] | None = None) -> EncryptedBackend:
    """The store on `inner`, decrypted with its master key; `create` makes the key first when there is none
    (`rtvault init` of an empty store). A store without a key file is refused: it is not an encrypted store."""
    if create and not is_encrypted(inner):
        create_master(inner, passphrase, kdf)
    return EncryptedBackend(inner, load_master(inner, passphrase))


# --- sealed files ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where the chunks of a sealed file of a given size are."""

    chunk: int  # plaintext bytes per chunk
    chunks: int
    body: int  # ciphertext bytes between header and trailer

    @classmethod
    def of(cls, size: int, shift: int = CHUNK_SHIFT) -> Layout:
        step, body = (1 << shift) + TAG, size - HEADER - TRAILER
        chunks = max(1, -(-body // step))
        if body < TAG or body - (chunks - 1) * step < TAG:
            raise ValueError(f"{size} bytes is not the size of a sealed file (truncated?)")
        return cls(1 << shift, chunks, body)

    @property
    def plaintext(self) -> int:
        return self.body - self.chunks * TAG

    def span(self, index: int) -> tuple[int, int]:
        start = index * (self.chunk + TAG)
        return HEADER + start, min(self.chunk + TAG, self.body - start)


def _parse_header(header: bytes, key: str, where: str) -> tuple[int, bytes, bytes]:
    """(chunk shift, key id, salt) of a sealed file's header."""
    if len(header) < HEADER or header[:4] != MAGIC:
        raise StoreError(f"{where}: {key} is not an encrypted rtvault file (no {MAGIC.decode()} header)")
    if header[4] != VERSION or not 10 <= header[5] <= 30:
        raise StoreError(f"{where}: {key} has encryption format {header[4]}, this rtvault reads {VERSION}")
    return header[5], header[8:16], header[16:32]


class _Sealer:
    """Encrypts a stream into `sink`, one chunk behind the writer: the last chunk is only known to be the final
    one (and sealed with the file's name) at `finish`."""

    def __init__(self, master: MasterKey, sink: BinaryIO) -> None:
        salt = secrets.token_bytes(16)
        self.header = MAGIC + bytes([VERSION, CHUNK_SHIFT, 0, 0]) + master.key_id + salt
        self.cipher, self.sink, self.hasher = master.file_cipher(salt), sink, hashlib.sha256()
        self.pending, self.index, self.written = bytearray(), 0, 0
        self._emit(self.header)

    def _emit(self, data: bytes) -> None:
        self.hasher.update(data)
        self.sink.write(data)

    def _seal(self, data: bytes | bytearray, final: bool, aad: bytes) -> None:
        self._emit(self.cipher.encrypt(_nonce(self.index, final), data, aad))
        self.index += 1

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size, chunk = view.nbytes, 1 << CHUNK_SHIFT
        self.written += size
        while view:
            if len(self.pending) == chunk:  # more bytes after a full chunk: it was not the final one
                self._seal(self.pending, False, self.header)
                self.pending = bytearray()
            room = chunk - len(self.pending)
            self.pending += view[:room]
            view = view[room:]
        return size

    def finish(self, key: str) -> None:
        self._seal(self.pending, True, self.header + key.encode("utf-8"))
        self.sink.write(self.hasher.digest())


def seal(master: MasterKey, key: str, data: bytes) -> bytes:
    """The sealed file holding `data` at `key`."""
    sink = io.BytesIO()
    sealer = _Sealer(master, sink)
    sealer.write(data)
    sealer.finish(key)
    return sink.getvalue()


class _Unsealed(PositionedReader):
    """A sealed file read as its plaintext: seekable, decrypting one chunk at a time. Opening authenticates the
    final chunk at once, so a file under another file's name or cut short fails before any byte is read."""

    def __init__(self, master: MasterKey, raw: BinaryIO, key: str, size: int, where: str) -> None:
        self.raw, self.key, self.where, self.position = raw, key, where, 0
        shift, key_id, salt = _parse_header(raw.read(HEADER), key, where)
        if key_id != master.key_id:
            raise StoreError(f"{where}: {key} was encrypted with another key (id {key_id.hex()}, this store's "
                             f"is {master.key_id.hex()})")
        self.header = MAGIC + bytes([VERSION, shift, 0, 0]) + key_id + salt
        try:
            self.layout = Layout.of(size, shift)
        except ValueError as error:
            raise StoreError(f"{where}: {key} is damaged: {error}") from None
        self.length = self.layout.plaintext
        self.cipher = master.file_cipher(salt)
        last = self.layout.chunks - 1
        self.cached = (last, self._chunk(last))

    def _chunk(self, index: int) -> bytes:
        start, length = self.layout.span(index)
        self.raw.seek(start)
        sealed = read_exact(self.raw, length)
        final = index == self.layout.chunks - 1
        aad = self.header + (self.key.encode("utf-8") if final else b"")
        try:
            return self.cipher.decrypt(_nonce(index, final), sealed, aad)
        except InvalidTag:
            raise StoreError(f"{self.where}: {self.key} is damaged or is not the file of that name (chunk "
                             f"{index} fails authentication)") from None

    def chunks(self) -> Iterator[bytes]:
        for index in range(self.layout.chunks):
            yield self.cached[1] if index == self.cached[0] else self._chunk(index)

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.length:
            return 0
        index, offset = divmod(self.position, self.layout.chunk)
        if self.cached[0] != index:
            self.cached = (index, self._chunk(index))
        data = self.cached[1]
        count = min(len(buffer), len(data) - offset)
        buffer[:count] = data[offset : offset + count]
        self.position += count
        return count

    def close(self) -> None:
        self.raw.close()
        super().close()


def unseal(master: MasterKey, key: str, data: bytes, where: str) -> bytes:
    """The plaintext of a sealed file read whole."""
    return b"".join(_Unsealed(master, io.BytesIO(data), key, len(data), where).chunks())


def check_sealed(inner: Backend, key: str) -> int:
    """Check a sealed file without the key: its header, its length and the SHA-256 of its ciphertext (bit rot,
    a cut, a lost write); returns the bytes read. Only a read with the key proves authenticity."""
    size = inner.size(key)
    with inner.open(key) as raw:
        header = read_exact(raw, HEADER)
        shift = _parse_header(header, key, inner.location)[0]
        try:
            Layout.of(size, shift)
        except ValueError as error:
            raise StoreError(f"{inner.location}: {key} is damaged: {error}") from None
        hasher, left = hashlib.sha256(header), size - HEADER - TRAILER
        while left > 0 and (block := raw.read(min(left, 1 << 20))):
            hasher.update(block)
            left -= len(block)
        if read_exact(raw, TRAILER) != hasher.digest() or left:
            raise StoreError(f"{inner.location}: {key} is damaged: its ciphertext does not match its checksum")
    return size


# --- the backend ---------------------------------------------------------------------------------------------


def _plain(key: str) -> bool:
    return key in PLAIN or key.startswith("keys/")


class EncryptedBackend:
    """A backend whose files are sealed on the way in and opened on the way out; names, listings, existence,
    deletion and times pass through unchanged (names are content hashes: see docs/encryption.md)."""

    def __init__(self, inner: Backend, master: MasterKey) -> None:
        self.inner, self.master = inner, master
        self.location = inner.location

    def stage(self) -> Staged:
        return _SealedStage(self)

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        self.inner.put(key, data if _plain(key) else seal(self.master, key, data), durable=durable)

    def barrier(self) -> None:
        self.inner.barrier()

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        return data if _plain(key) else unseal(self.master, key, data, self.location)

    def open(self, key: str) -> BinaryIO:
        """A seekable reader of the plaintext; each 1 MiB chunk is read and authenticated when first needed."""
        if _plain(key):
            return self.inner.open(key)
        raw = self.inner.open(key)
        try:
            size = raw.seek(0, io.SEEK_END)  # no second request for the size on S3
            raw.seek(0)
            return io.BufferedReader(_Unsealed(self.master, raw, key, size, self.location), 1 << CHUNK_SHIFT)
        except BaseException:
            raw.close()
            raise

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        """The plaintext size, from the ciphertext's length alone (80 bytes + 16 per MiB less)."""
        size = self.inner.size(key)
        if _plain(key):
            return size
        try:
            return Layout.of(size).plaintext
        except ValueError as error:
            raise StoreError(f"{self.location}: {key} is damaged: {error}") from None

    def list(self, prefix: str) -> Iterator[str]:
        """Every key but the key files: they belong to the encryption, not to the store that verification,
        replication and repair see (each store has its own master key)."""
        return (key for key in self.inner.list(prefix) if not key.startswith("keys/"))

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        return self.inner.create_exclusive(key, data if _plain(key) else seal(self.master, key, data))

    def replace(self, key: str, data: bytes) -> None:
        self.inner.replace(key, data if _plain(key) else seal(self.master, key, data))

    def modified(self, key: str) -> float:
        return self.inner.modified(key)

    def clean_staging(self, older_than_s: float, now: float) -> int:
        return self.inner.clean_staging(older_than_s, now)


class _SealingFile(io.RawIOBase):
    """The writable file of a staged sealed file: plaintext in, ciphertext to the inner staged file."""

    def __init__(self, sealer: _Sealer) -> None:
        self.sealer = sealer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.sealer.write(data)

    def tell(self) -> int:
        return self.sealer.written


class _SealedStage:
    """A staged file sealed as it is written; the final chunk is sealed with the file's name at commit."""

    def __init__(self, backend: EncryptedBackend) -> None:
        self.inner = backend.inner.stage()
        try:
            self.sealer = _Sealer(backend.master, self.inner.file)
        except BaseException:
            self.inner.discard()
            raise
        self.file: BinaryIO = _SealingFile(self.sealer)  # type: ignore[assignment]

    def commit(self, key: str, *, durable: bool = False) -> bool:
        if _plain(key):
            self.inner.discard()
            raise StoreError(f"{key} is never staged: it is written whole and unencrypted")
        try:
            self.sealer.finish(key)
        except BaseException:
            self.inner.discard()
            raise
        return self.inner.commit(key, durable=durable)

    def discard(self) -> None:
        self.inner.discard()

