"""The settings of the web interface (`[web]`, `[web.ldap]`), declared as every setting is (config/settings.py)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from rtvault.config.schema import OPTIONAL_PATH, about, positive


def _role(value: str) -> str | None:
    roles = ("viewer", "operator", "admin")
    return None if value in ("", *roles) else f"must be one of {', '.join(roles)} or empty, got {value!r}"


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"must be a TCP port (1 to 65535), got {value}"


@dataclass(frozen=True, kw_only=True)
class Ldap:
    """Optional sign-in with an LDAP or Active Directory password (local users are tried first)."""

    url: str = field(
        default="",
        metadata=about("Directory server; empty turns LDAP sign-in off.", example="ldaps://ad.chu-exemple.fr"),
    )
    user_dn: str = field(
        default="",
        metadata=about(
            "How a user name becomes the name to bind with: {user} is replaced by what the user typed.",
            example="uid={user},ou=people,dc=chu-exemple,dc=fr",
        ),
    )
    default_role: str = field(
        default="viewer",
        metadata=about(
            "Role of a directory user never added with `rtvault user add`; empty: only users added locally "
            "(with --ldap) may sign in.",
            check=_role,
        ),
    )
    timeout_seconds: int = field(default=10, metadata=about("Give up on the directory after this many seconds.",
                                                            check=positive))


def _group(value: str) -> str | None:
    import grp

    if not value:
        return None
    try:
        grp.getgrgid(int(value)) if value.isascii() and value.isdigit() else grp.getgrnam(value)
    except (KeyError, OverflowError):
        return f"names no group of this machine, got {value!r}"
    return None


def _public_url(value: str) -> str | None:
    parts = urllib.parse.urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
                  or parts.query or parts.fragment):
        return f"must be http(s)://host[:port] with no path, got {value!r}"
    return None


def _networks(value: list[str]) -> str | None:
    import ipaddress

    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"must list IP addresses or networks (10.0.0.0/24), got {item!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class Web:
    """The search web interface (`rtvault serve`)."""

    host: str = field(default="127.0.0.1", metadata=about("Address to listen on (put a reverse proxy in front)."))
    port: int = field(default=8080, metadata=about("TCP port to listen on.", check=_port))
    restore_dir: Path | None = field(
        default=None,
        metadata=about(
            "Pinnacle import directory where operators restore patients from the web interface; each restore "
            "goes into a new sub-directory.",
            example="/PrimaryPatientData/rtvault-restores",
        ),
    )
    restore_group: str = field(
        default="",
        metadata=about(
            "Group (name or number) that may read the folders restores create, for Pinnacle's import; empty: "
            "only the user running rtvault may read them.",
            example="", check=_group,
        ),
    )
    public_url: str = field(
        default="",
        metadata=about(
            "The address users open, when a reverse proxy serves rtvault (https://rtvault.example.org): an "
            "https address makes the session cookie Secure even when the proxy talks plain HTTP on this machine.",
            example="", check=_public_url,
        ),
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=about(
            "Addresses or networks (10.0.0.0/24) of the reverse proxies whose X-Forwarded-Proto and "
            "X-Forwarded-For headers are believed; anyone else's are ignored.",
            check=_networks,
        ),
    )
    session_hours: int = field(default=8, metadata=about("A web session ends after this many hours.",
                                                         check=positive))
    secure_cookies: bool = field(
        default=True,
        metadata=about("Send the session cookie over HTTPS only (loopback addresses excepted); set false only "
                       "when serving plain HTTP on a trusted network."),
    )
    metrics_from: tuple[str, ...] = field(
        default=("127.0.0.1", "::1"),
        metadata=about(
            "Addresses or networks allowed to read /metrics (Prometheus) without a session. Behind a reverse "
            "proxy every client looks like loopback: then empty this and use metrics_token_file.",
            check=_networks,
        ),
    )
    metrics_token_file: Path | None = field(
        default=None,
        metadata=about(
            "File holding a bearer token that also opens /metrics (Authorization: Bearer <token>), readable by "
            "its owner only; unset: addresses only.",
            example="", kind=OPTIONAL_PATH,
        ),
    )
    ldap: Ldap = field(default_factory=Ldap)
