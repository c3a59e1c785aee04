"""What the encryption tests share: the passphrase of their encrypted stores."""

from __future__ import annotations

PASSPHRASE = b"correct horse battery staple"
