"""The master key of an encrypted store and the passphrase that unlocks it.

A random 256-bit master key, kept in the store itself wrapped (AES-256-GCM) under a key derived from the
passphrase with scrypt; the parameters and the salt are in the key file, so a stronger setting later needs no
format change. The key file is written twice (`keys/master.json`, `keys/master-copy.json`): losing it loses the
store. Changing the passphrase re-wraps the master key; no data file changes (docs/encryption.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from rtvault.errors import StoreError
from rtvault.store.backend import Backend
from rtvault.utc import now_iso

KEY_FILES = ("keys/master.json", "keys/master-copy.json")
SCRYPT = {"n": 2**17, "r": 8, "p": 1}  # 128 MiB and about 0.4 s per derivation
_MAX_SCRYPT_N = 2**22  # a key file asking for more is refused rather than exhausting memory
_FILE_KEY_INFO = b"rtvault file key v1"
_WRAP_AAD = b"rtvault master key "


@dataclass(frozen=True, repr=False)
class MasterKey:
    """The store's 256-bit master key and its public 8-byte id (written in every file's header)."""

    secret: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(b"rtvault key id\0" + self.secret).digest()[:8]

    def file_cipher(self, salt: bytes) -> AESGCM:
        """The cipher of one file: its own key, derived from the master key and the file's random salt."""
        return AESGCM(HKDF(hashes.SHA256(), 32, salt, _FILE_KEY_INFO).derive(self.secret))


def passphrase_problem(path: Path) -> str | None:
    """Why a passphrase file must not be used: unreadable, empty, or readable by group or others (as ssh)."""
    try:
        mode, text = path.stat().st_mode, path.read_bytes()
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if mode & 0o077:
        return f"{path} is readable by group or others: run chmod 600 {path}"
    if not text.strip():
        return f"{path} is empty"
    return None


def read_passphrase(path: Path) -> bytes:
    """The passphrase: the file's bytes without the final line break."""
    if problem := passphrase_problem(path):
        raise StoreError(f"passphrase file: {problem}")
    return path.read_bytes().rstrip(b"\r\n")


@functools.lru_cache(maxsize=8)
def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # cached: a command opening the same store several times pays for scrypt once
    return Scrypt(salt, 32, n, r, p).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def wrap(master: MasterKey, passphrase: bytes, kdf: dict[str, int] | None = None) -> bytes:
    """The key file: the master key encrypted under a key derived from the passphrase (fresh salt and nonce)."""
    params, salt, nonce = {**SCRYPT, **(kdf or {})}, secrets.token_bytes(16), secrets.token_bytes(12)
    wrapping = AESGCM(_derive(passphrase, salt, params["n"], params["r"], params["p"]))
    record = {"format": "rtvault-key", "version": 1, "key_id": master.key_id.hex(), "cipher": "AES-256-GCM",
              "kdf": {"name": "scrypt", **params, "salt": _b64(salt)}, "nonce": _b64(nonce),
              "wrapped_key": _b64(wrapping.encrypt(nonce, master.secret, _WRAP_AAD + master.key_id)),
              "written": now_iso()}
    return json.dumps(record, indent=2).encode("ascii") + b"\n"


def unwrap(key_file: bytes, passphrase: bytes, where: str) -> MasterKey:
    """The master key from a key file; StoreError when the passphrase is wrong or the file is damaged."""
    try:
        record = json.loads(key_file)
        kdf, key_id = record["kdf"], bytes.fromhex(record["key_id"])
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        salt, nonce = base64.b64decode(kdf["salt"]), base64.b64decode(record["nonce"])
        wrapped = base64.b64decode(record["wrapped_key"])
        if record.get("format") != "rtvault-key" or kdf.get("name") != "scrypt" or not 1 < n <= _MAX_SCRYPT_N:
            raise ValueError(f"unsupported key file (format {record.get('format')!r}, kdf {kdf.get('name')!r})")
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"{where} is unreadable: {error}") from None
    try:
        master = MasterKey(AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, wrapped, _WRAP_AAD + key_id))
    except InvalidTag:
        raise StoreError(f"{where}: wrong passphrase (the store's encryption key does not open with it)") from None
    if master.key_id != key_id:
        raise StoreError(f"{where} is damaged: its key does not match its key id")
    return master


def is_encrypted(inner: Backend) -> bool:
    return any(inner.exists(key) for key in KEY_FILES)


def load_master(inner: Backend, passphrase: bytes) -> MasterKey:
    """The master key from the first key file that opens; the first failure when none does."""
    failures: list[StoreError] = []
    for key in KEY_FILES:
        try:
            return unwrap(inner.get(key), passphrase, f"{inner.location}/{key}")
        except StoreError as error:
            failures.append(error)
    if not is_encrypted(inner):
        raise StoreError(f"{inner.location} has no {KEY_FILES[0]}: it is not an encrypted store (remove encrypt "
                         "= true, or initialise an empty store with it)")
    raise failures[0]


def create_master(inner: Backend, passphrase: bytes, kdf: dict[str, int] | None = None) -> None:
    """Make the store's master key (`rtvault init`); two inits at once: the first one's key is kept."""
    wrapped = wrap(MasterKey(secrets.token_bytes(32)), passphrase, kdf)
    if inner.create_exclusive(KEY_FILES[0], wrapped):
        inner.replace(KEY_FILES[1], wrapped)


def change_passphrase(inner: Backend, old: bytes, new: bytes, kdf: dict[str, int] | None = None) -> None:
    """Re-wrap the master key under a new passphrase, in both key files; no data file changes."""
    wrapped = wrap(load_master(inner, old), new, kdf)
    for key in KEY_FILES:
        inner.replace(key, wrapped)


def damaged_key_files(inner: Backend, passphrase: bytes) -> dict[str, str]:
    """Each key file that is missing or does not open with the passphrase, with why: losing both loses the
    store. A copy byte-identical to a good file is good without a second key derivation."""
    damaged: dict[str, str] = {}
    good: bytes | None = None
    for key in KEY_FILES:
        try:
            data = inner.get(key)
            if data != good:
                unwrap(data, passphrase, f"{inner.location}/{key}")
            good = data
        except StoreError as error:
            damaged[key] = str(error)
    return damaged


def mend_key_files(inner: Backend, passphrase: bytes) -> list[str]:
    """Rewrite each damaged key file from a good one; the keys rewritten. StoreError when none is good."""
    damaged = damaged_key_files(inner, passphrase)
    good = [key for key in KEY_FILES if key not in damaged]
    if damaged and not good:
        raise StoreError(f"{inner.location}: no key file opens ({'; '.join(damaged.values())}): restore keys/ "
                         "from the copy kept with the recovery procedure (docs/encryption.md)")
    for key in damaged:
        inner.replace(key, inner.get(good[0]))
    return sorted(damaged)
