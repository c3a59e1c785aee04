"""What the encryption tests share: the passphrase of their encrypted stores, and an encrypted directory store's
settings."""

from __future__ import annotations

from pathlib import Path

PASSPHRASE = b"correct horse battery staple"


def sealed_store(folder: Path, store: Path) -> dict[str, object]:
    """The settings of an encrypted directory store at `store`, its passphrase written (0600) in `folder`/pass."""
    secret = folder / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    return {"path": store, "encrypt": True, "passphrase_file": secret}
