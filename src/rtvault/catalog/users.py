"""Who may use the web interface and the API: users and roles, passwords (Argon2) or an LDAP/Active Directory
bind, API tokens and browser sessions (sign-in rate limiting is `logins.py`).

Secrets never reach the database in clear: passwords are Argon2 hashes, tokens and session cookies are
stored as their SHA-256 (they are long random values, so a fast hash suffices), and a session's CSRF token
is derived from its cookie, never stored. The user row is read again
on every request, so a new role or a disabled account takes effect at once. A change made `by` an actor is
audited in the transaction that makes it: both happen, or neither.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rtvault.catalog import audit
from rtvault.catalog.audit import Actor
from rtvault.catalog.db import Catalog
from rtvault.config.web import Ldap
from rtvault.errors import DirectoryUnavailable, InputError
from rtvault.utc import iso, now_iso

ROLES = ("viewer", "operator", "admin")
SOURCES = ("local", "ldap")
MIN_PASSWORD = 12
MAX_PASSWORD_BYTES = 1024  # Argon2 hashes whatever it is given: a megabyte "password" would cost a megabyte's work
TOKEN_PREFIX = "rtv_"
TOKEN_ID_CHARS = 12  # shown by `token list`: enough to name a token, useless to forge one

_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_HASHER = PasswordHasher()
_USER_COLUMNS = "u.name, u.role, u.source, u.created, u.disabled, u.sites"
MAX_SITE = 200  # characters of a site label


@dataclass(frozen=True)
class User:
    name: str
    role: str
    source: str
    created: str
    disabled: bool
    sites: tuple[str, ...] = ()  # the only sites whose patients this user sees; none: every site

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "sites": list(self.sites)}

    @property
    def searched_sites(self) -> tuple[str, ...]:
        """The sites its searches are limited to; none (every site) for an admin or a user limited to none."""
        return () if self.role == "admin" else self.sites

    def sees(self, site: str) -> bool:
        """Whether this user may see (search, view, download, restore) a patient of `site`: an admin and a
        user limited to no site see every patient, a user limited to sites only those of these sites."""
        return not self.searched_sites or site in self.searched_sites


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: User
    csrf: str
    expires: str


def role_allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may: each role can do what the ones before it in ROLES can."""
    if needed not in ROLES:
        raise ValueError(f"unknown role {needed!r}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _user(row: tuple) -> User:
    return User(name=row[0], role=row[1], source=row[2], created=row[3], disabled=bool(row[4]),
                sites=tuple(json.loads(row[5])) if row[5] else ())


def _check_sites(name: str, role: str, sites: Iterable[str]) -> tuple[str, ...]:
    """The sites a user is limited to, sorted, each once; refused for an admin, who sees every site."""
    chosen = tuple(sorted({site.strip() for site in sites}))
    for site in chosen:
        if not site or len(site) > MAX_SITE or not site.isprintable():
            raise InputError(f"site {site!r} is not a site label: 1 to {MAX_SITE} printable characters, as "
                             "[sources.NAME] site names it")
    if chosen and role == "admin":
        raise InputError(f"{name} is an admin, and an admin sees every site: give no --site, or another role")
    return chosen


def _sites_text(sites: tuple[str, ...]) -> str:
    return json.dumps(list(sites), ensure_ascii=False) if sites else ""


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")


def _check_password(password: str | None) -> str:
    if password is None or len(password) < MIN_PASSWORD:
        raise InputError(f"a password must have at least {MIN_PASSWORD} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InputError(f"a password must have at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    return _HASHER.hash(password)


def _audit(db: Catalog, by: Actor | None, action: str, detail: dict) -> None:
    if by is not None:
        audit.record(db, user=by.user, address=by.address, action=action, detail=detail)


def _existing(db: Catalog, name: str) -> User:
    user = get_user(db, name)
    if user is None:
        raise InputError(f"no user named {name!r} (see `rtvault user list`)")
    return user


# --- users -------------------------------------------------------------------------------------------------


def add_user(db: Catalog, name: str, role: str, password: str | None, *, source: str = "local",
             by: Actor | None = None, sites: Iterable[str] = ()) -> User:
    """Add a user; a directory ('ldap') user has no local password and signs in with the directory's. A
    directory compares user names regardless of case, so a directory user is kept lowercased. `sites`: the only
    sites whose patients the user sees (none: every site; never for an admin)."""
    typed = name
    if source == "ldap":
        name = name.lower()
    if not _NAME.fullmatch(name):
        raise InputError(f"user name {name!r} is not valid: 1 to 64 letters, digits or . _ - @")
    _check_role(role)
    limited = _check_sites(name, role, sites)
    if source not in SOURCES:
        raise InputError(f"unknown user source {source!r}: choose one of {', '.join(SOURCES)}")
    if source == "ldap" and password is not None:
        raise InputError(f"{name} signs in with the directory's password: give no local password")
    password_hash = _check_password(password) if source == "local" else None
    with db.transaction():
        if get_user(db, name) is not None:
            raise InputError(f"user {name!r} already exists (use `rtvault user role` or `rtvault user passwd`)")
        created = now_iso()
        db.execute("INSERT INTO users (name, role, password_hash, source, created, disabled, sites) "
                   "VALUES (?, ?, ?, ?, ?, 0, ?)", (name, role, password_hash, source, created, _sites_text(limited)))
        _audit(db, by, "user_add", {"name": typed, "role": role, "source": source,
                                    **({"sites": list(limited)} if limited else {})})
    return User(name=name, role=role, source=source, created=created, disabled=False, sites=limited)


def get_user(db: Catalog, name: str) -> User | None:
    """The user named exactly `name`, else the directory user of that name in any case (`HLefevre` is the
    directory's `hlefevre`)."""
    row = db.one(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.name = ?", (name,))
    if row is None and name != name.lower():
        row = db.one(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.name = ? AND u.source = 'ldap'", (name.lower(),))
    return _user(row) if row else None


def list_users(db: Catalog) -> list[User]:
    return [_user(row) for row in db.execute(f"SELECT {_USER_COLUMNS} FROM users u ORDER BY u.name")]


def set_password(db: Catalog, name: str, password: str, *, by: Actor | None = None) -> None:
    """Change a local user's password and end their browser sessions (their API tokens stay valid)."""
    user = _existing(db, name)
    if user.source != "local":
        raise InputError(f"{user.name} signs in with the directory's password, which rtvault cannot change")
    password_hash = _check_password(password)
    with db.transaction():
        db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))
        db.execute("DELETE FROM sessions WHERE username = ?", (name,))
        _audit(db, by, "user_passwd", {"name": name})


def set_role(db: Catalog, name: str, role: str, *, by: Actor | None = None) -> None:
    _check_role(role)
    with db.transaction():
        user = _existing(db, name)
        if role == "admin" and user.sites:
            raise InputError(f"{user.name} is limited to sites ({', '.join(user.sites)}) and an admin sees every "
                             f"site: lift the limit first (`rtvault user sites {user.name}` with no --site)")
        db.execute("UPDATE users SET role = ? WHERE name = ?", (role, user.name))
        _audit(db, by, "user_role", {"name": name, "role": role})


def set_sites(db: Catalog, name: str, sites: Iterable[str], *, by: Actor | None = None) -> User:
    """Limit a user to these sites (none: every site again); it applies to their next request."""
    with db.transaction():
        user = _existing(db, name)
        limited = _check_sites(user.name, user.role, sites)
        db.execute("UPDATE users SET sites = ? WHERE name = ?", (_sites_text(limited), user.name))
        _audit(db, by, "user_sites", {"name": user.name, "sites": list(limited)})
    return User(user.name, user.role, user.source, user.created, user.disabled, limited)


def disable_user(db: Catalog, name: str, *, by: Actor | None = None) -> None:
    """Refuse the user from now on: their sessions end and their API tokens are revoked."""
    with db.transaction():
        found = _existing(db, name).name
        db.execute("UPDATE users SET disabled = 1 WHERE name = ?", (found,))
        db.execute("DELETE FROM sessions WHERE username = ?", (found,))
        db.execute("DELETE FROM tokens WHERE username = ?", (found,))
        _audit(db, by, "user_disable", {"name": name})


def enable_user(db: Catalog, name: str, *, by: Actor | None = None) -> None:
    """Let a disabled user sign in again (tokens revoked when disabling stay revoked)."""
    with db.transaction():
        db.execute("UPDATE users SET disabled = 0 WHERE name = ?", (_existing(db, name).name,))
        _audit(db, by, "user_enable", {"name": name})


# --- signing in --------------------------------------------------------------------------------------------


@cache
def _decoy_hash() -> str:
    return _HASHER.hash(secrets.token_hex(16))


def _verify_local(db: Catalog, user: User, password: str) -> bool:
    row = db.one("SELECT password_hash FROM users WHERE name = ?", (user.name,))
    stored = row[0] if row and row[0] else _decoy_hash()
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if _HASHER.check_needs_rehash(stored):  # the hasher's parameters were raised since this hash was made
        db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_HASHER.hash(password), user.name))
    return True


def _spend_time_like_a_check(password: str) -> None:
    # An unknown name answers as slowly as a wrong password, so timing does not reveal which names exist.
    with contextlib.suppress(VerificationError):
        _HASHER.verify(_decoy_hash(), password)


def authenticate(db: Catalog, ldap_settings: Ldap | None, name: str, password: str) -> User | None:
    """The user if `password` is theirs, else None (wrong password, disabled, unknown, empty password).

    Local users are checked against their Argon2 hash. A name with no local user, or added with --ldap, is
    checked by a bind to the directory when [web.ldap] url is set; a directory user not yet known here gets
    [web.ldap] default_role (none if it is empty). An unreachable directory raises DirectoryUnavailable rather
    than answering "wrong password", so that the sign-in page can say so and not count it as a failure.
    """
    if not password or not _NAME.fullmatch(name) or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return None  # an empty password would be an anonymous LDAP bind, which "succeeds"; a huge one costs
    user = get_user(db, name)
    if user is not None and user.disabled:
        return None
    if user is not None and user.source == "local":
        return user if _verify_local(db, user, password) else None
    if ldap_settings is None or not ldap_settings.url:
        _spend_time_like_a_check(password)
        return None
    if not ldap_bind(ldap_settings, name, password):
        return None
    if user is not None:
        return user
    if not ldap_settings.default_role:
        return None
    try:
        return add_user(db, name, ldap_settings.default_role, None, source="ldap")
    except InputError:  # added by a concurrent first login
        return get_user(db, name)


def ldap_bind(settings: Ldap, name: str, password: str) -> bool:
    """Whether the directory accepts `password` for `name` (a simple bind as user_dn with {user} = name)."""
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.dn import escape_rdn

    if not password:
        return False
    dn = settings.user_dn.format(user=escape_rdn(name))
    server = ldap3.Server(settings.url, connect_timeout=settings.timeout_seconds, get_info=ldap3.NONE)
    connection = ldap3.Connection(server, user=dn, password=password, read_only=True, raise_exceptions=False,
                                  receive_timeout=settings.timeout_seconds, authentication=ldap3.SIMPLE)
    try:
        return bool(connection.bind())
    except LDAPException as error:
        raise DirectoryUnavailable(f"the directory {settings.url} cannot be reached ({error}); directory users "
                                   "cannot sign in until it answers (check [web.ldap] url)") from None
    finally:
        connection.unbind()


# --- API tokens --------------------------------------------------------------------------------------------


def _active(db: Catalog, name: str) -> User:
    user = _existing(db, name)
    if user.disabled:
        raise InputError(f"user {name!r} is disabled (`rtvault user enable {name}` first)")
    return user


def create_token(db: Catalog, username: str, label: str = "", *, by: Actor | None = None) -> str:
    """A new API token for `username`; only its SHA-256 is kept, so this is the only time it is seen."""
    if len(label) > 200 or not label.isprintable():
        raise InputError("a token label is at most 200 printable characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction():
        db.execute("INSERT INTO tokens (hash, username, label, created, last_used) VALUES (?, ?, ?, ?, NULL)",
                   (_digest(token), _active(db, username).name, label, now_iso()))
        _audit(db, by, "token_create", {"user": username, "label": label, "id": token_id(token)})
    return token


def token_id(token: str) -> str:
    """The short name `token list` shows for a token."""
    return _digest(token)[:TOKEN_ID_CHARS]


def token_user(db: Catalog, token: str) -> User | None:
    """The active user a token belongs to, or None; notes when the token was last used."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(token)
    row = db.one(f"SELECT {_USER_COLUMNS}, t.last_used FROM tokens t JOIN users u ON u.name = t.username "
                 "WHERE t.hash = ?", (digest,))
    if row is None or row[4]:
        return None
    now = now_iso()
    if row[6] != now:  # at most one write per token per second
        db.execute("UPDATE tokens SET last_used = ? WHERE hash = ?", (now, digest))
    return _user(row)


_TOKEN_COLUMNS = "hash, username, label, created, last_used"


def _token(row: tuple) -> dict:
    return {"id": row[0][:TOKEN_ID_CHARS], "user": row[1], "label": row[2], "created": row[3], "last_used": row[4]}


def list_tokens(db: Catalog, username: str | None = None) -> list[dict]:
    """Tokens as {"id", "user", "label", "created", "last_used"}; `id` is what `revoke_token` takes."""
    where, params = ("WHERE username = ?", (username,)) if username else ("", ())
    return [_token(r) for r in db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens {where} ORDER BY username, created",
                                          params)]


def revoke_token(db: Catalog, ref: str, *, by: Actor | None = None) -> dict:
    """Revoke the one token named by its id from `list_tokens` (or any hex prefix of 8 or more), or by the
    token itself; returns what it was."""
    if ref.startswith(TOKEN_PREFIX):
        rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?", (_digest(ref),))
    elif re.fullmatch(r"[0-9a-fA-F]{8,64}", ref):  # hex only, so LIKE sees no wildcard
        rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash LIKE ?", (ref.lower() + "%",))
    else:
        raise InputError(f"{ref!r} names no token: give an id from `rtvault token list` or the token itself")
    if len(rows) != 1:
        found = "no token" if not rows else f"{len(rows)} tokens (give more characters)"
        raise InputError(f"{ref!r} names {found}: see `rtvault token list`")
    with db.transaction():
        db.execute("DELETE FROM tokens WHERE hash = ?", (rows[0][0],))
        _audit(db, by, "token_revoke", {"ids": [_token(rows[0])["id"]]})
    return _token(rows[0])


def revoke_user_tokens(db: Catalog, username: str, *, by: Actor | None = None) -> list[dict]:
    """Revoke every token of a user; returns what they were (as `list_tokens`)."""
    with db.transaction():
        name = _existing(db, username).name
        gone = list_tokens(db, name)
        db.execute("DELETE FROM tokens WHERE username = ?", (name,))
        _audit(db, by, "token_revoke", {"ids": [t["id"] for t in gone]})
    return gone


# --- browser sessions --------------------------------------------------------------------------------------


def create_session(db: Catalog, username: str, address: str, hours: int) -> tuple[str, Session]:
    """A new session for an active user: (the cookie value, kept only by the browser; the session)."""
    user = _active(db, username)
    cookie = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session = Session(token_hash=_digest(cookie), user=user, csrf=csrf_token(cookie),
                      expires=iso(now + timedelta(hours=hours)))
    with db.transaction():
        db.execute("DELETE FROM sessions WHERE expires <= ?", (iso(now),))
        db.execute("INSERT INTO sessions (hash, username, csrf, created, expires, address) VALUES (?, ?, '', ?, ?, ?)",
                   (session.token_hash, user.name, iso(now), session.expires, address))
    return cookie, session


def csrf_token(cookie_value: str) -> str:
    """A session's CSRF token: an HMAC keyed by its cookie, which only the browser keeps (the catalog holds
    the cookie's SHA-256), so reading the catalog gives neither the cookie nor the token."""
    mac = hmac.new(cookie_value.encode("utf-8"), b"rtvault csrf token", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def get_session(db: Catalog, cookie_value: str) -> Session | None:
    """The live session a cookie names, or None when unknown, expired or its user is disabled."""
    if not cookie_value:
        return None
    digest = _digest(cookie_value)
    row = db.one(f"SELECT {_USER_COLUMNS}, s.expires FROM sessions s JOIN users u ON u.name = s.username "
                 "WHERE s.hash = ?", (digest,))
    if row is None or row[4]:
        return None
    if row[6] <= now_iso():
        db.execute("DELETE FROM sessions WHERE hash = ?", (digest,))
        return None
    return Session(token_hash=digest, user=_user(row), csrf=csrf_token(cookie_value), expires=row[6])


def end_session(db: Catalog, cookie_value: str) -> None:
    db.execute("DELETE FROM sessions WHERE hash = ?", (_digest(cookie_value),))
