"""Users, passwords, API tokens, sessions and login rate limiting, on a real SQLite catalog."""

from __future__ import annotations

import pytest

from rtvault.catalog.users import (
    ROLES,
    add_user,
    authenticate,
    create_session,
    create_token,
    csrf_token,
    disable_user,
    enable_user,
    end_session,
    get_session,
    get_user,
    list_tokens,
    list_users,
    revoke_token,
    revoke_user_tokens,
    role_allows,
    set_password,
    set_role,
    token_user,
)
from rtvault.config.web import Ldap
from rtvault.errors import InputError

PASSWORD = "Élodie-Dupré-2026"
NO_LDAP = Ldap()


@pytest.fixture
def db(catalog):  # conftest.py: each test runs on SQLite and on PostgreSQL
    return catalog


def test_roles_are_ordered():
    assert role_allows("admin", "viewer") and role_allows("operator", "operator")
    assert not role_allows("viewer", "operator") and not role_allows("operator", "admin")
    assert not role_allows("root", "viewer")
    assert ROLES == ("viewer", "operator", "admin")


def test_passwords_are_stored_as_argon2_hashes_only(db):
    user = add_user(db, "e.dupre", "operator", PASSWORD)
    assert (user.name, user.role, user.source, user.disabled) == ("e.dupre", "operator", "local", False)
    stored = db.one("SELECT password_hash FROM users WHERE name = ?", ("e.dupre",))[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert authenticate(db, NO_LDAP, "e.dupre", PASSWORD) == user


@pytest.mark.parametrize(("name", "password"), [
    ("e.dupre", "Élodie-Dupré-2027"),  # wrong password
    ("E.DUPRE", PASSWORD),  # names are exact
    ("nobody", PASSWORD),  # unknown user
    ("e.dupre", ""),  # empty password
])
def test_wrong_credentials_are_refused(db, name, password):
    add_user(db, "e.dupre", "viewer", PASSWORD)
    assert authenticate(db, NO_LDAP, name, password) is None


def test_disabled_user_is_refused_and_loses_sessions_and_tokens(db):
    add_user(db, "m.nguyen", "admin", PASSWORD)
    cookie, _ = create_session(db, "m.nguyen", "10.0.0.7", 8)
    token = create_token(db, "m.nguyen", "nightly export")
    disable_user(db, "m.nguyen")
    assert get_user(db, "m.nguyen").disabled
    assert authenticate(db, NO_LDAP, "m.nguyen", PASSWORD) is None
    assert get_session(db, cookie) is None and token_user(db, token) is None
    assert list_tokens(db, "m.nguyen") == []
    with pytest.raises(InputError, match="disabled"):
        create_token(db, "m.nguyen")
    enable_user(db, "m.nguyen")
    assert authenticate(db, NO_LDAP, "m.nguyen", PASSWORD).name == "m.nguyen"
    assert token_user(db, token) is None  # revoked for good


@pytest.mark.parametrize(("name", "role", "password", "message"), [
    ("", "viewer", PASSWORD, "not valid"),
    ("jean baptiste", "viewer", PASSWORD, "not valid"),
    ("x" * 65, "viewer", PASSWORD, "not valid"),
    ("o'brien", "viewer", PASSWORD, "not valid"),
    ("ok", "superuser", PASSWORD, "unknown role"),
    ("ok", "viewer", "short-pass", "at least 12"),
    ("ok", "viewer", None, "at least 12"),
])
def test_add_user_refuses_bad_input(db, name, role, password, message):
    with pytest.raises(InputError, match=message):
        add_user(db, name, role, password)


def test_add_user_refuses_a_duplicate_and_directory_users_have_no_password(db):
    add_user(db, "a.berge@chu.fr", "viewer", PASSWORD)
    with pytest.raises(InputError, match="already exists"):
        add_user(db, "a.berge@chu.fr", "admin", PASSWORD)
    directory = add_user(db, "hlefevre", "operator", None, source="ldap")
    assert directory.source == "ldap"
    assert db.one("SELECT password_hash FROM users WHERE name = 'hlefevre'")[0] is None
    assert authenticate(db, NO_LDAP, "hlefevre", "anything-at-all") is None  # no directory configured
    with pytest.raises(InputError, match="directory"):
        set_password(db, "hlefevre", PASSWORD)
    assert [u.name for u in list_users(db)] == ["a.berge@chu.fr", "hlefevre"]


def test_password_and_role_changes(db):
    add_user(db, "c.roux", "viewer", PASSWORD)
    cookie, _ = create_session(db, "c.roux", "10.0.0.7", 8)
    set_password(db, "c.roux", "nouveau mot de passe")
    assert authenticate(db, NO_LDAP, "c.roux", PASSWORD) is None
    assert authenticate(db, NO_LDAP, "c.roux", "nouveau mot de passe") is not None
    assert get_session(db, cookie) is None  # a password change ends the sessions
    set_role(db, "c.roux", "operator")
    assert get_user(db, "c.roux").role == "operator"
    with pytest.raises(InputError, match="unknown role"):
        set_role(db, "c.roux", "god")
    with pytest.raises(InputError, match="no user"):
        set_role(db, "nobody", "admin")


def test_an_outdated_hash_is_upgraded_at_login(db):
    from argon2 import PasswordHasher

    add_user(db, "old.hash", "viewer", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    db.execute("UPDATE users SET password_hash = ? WHERE name = 'old.hash'", (weak,))
    assert authenticate(db, NO_LDAP, "old.hash", PASSWORD) is not None
    upgraded = db.one("SELECT password_hash FROM users WHERE name = 'old.hash'")[0]
    assert upgraded != weak and upgraded.startswith("$argon2id$")
    assert authenticate(db, NO_LDAP, "old.hash", PASSWORD) is not None


def test_token_create_use_list_revoke(db):
    add_user(db, "script", "operator", PASSWORD)
    token = create_token(db, "script", "export de nuit")
    assert token.startswith("rtv_") and len(token) > 40
    assert db.one("SELECT COUNT(*) FROM tokens WHERE hash = ?", (token,))[0] == 0  # only its hash is kept
    assert token_user(db, token).name == "script"
    [listed] = list_tokens(db)
    assert listed["user"] == "script" and listed["label"] == "export de nuit" and listed["last_used"]
    assert token_user(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert token_user(db, "Bearer nonsense") is None
    assert revoke_token(db, listed["id"])["label"] == "export de nuit"
    assert token_user(db, token) is None
    other = create_token(db, "script")
    assert revoke_token(db, other)["user"] == "script"  # by the token itself
    with pytest.raises(InputError, match="no token"):
        revoke_token(db, listed["id"])
    with pytest.raises(InputError, match="names no token"):
        revoke_token(db, "%")
    create_token(db, "script")
    create_token(db, "script")
    assert len(revoke_user_tokens(db, "script")) == 2 and list_tokens(db) == []
    with pytest.raises(InputError, match="no user"):
        create_token(db, "nobody")


def test_sessions_live_and_expire(db):
    add_user(db, "e.dupre", "viewer", PASSWORD)
    cookie, session = create_session(db, "e.dupre", "10.1.2.3", 8)
    assert cookie not in session.token_hash and len(session.csrf) >= 32
    found = get_session(db, cookie)
    assert found == session and found.user.role == "viewer"
    set_role(db, "e.dupre", "admin")
    assert get_session(db, cookie).user.role == "admin"  # a role change applies at once
    assert db.one("SELECT COUNT(*) FROM sessions WHERE hash = ?", (cookie,))[0] == 0
    other, _ = create_session(db, "e.dupre", "10.1.2.3", 8)
    assert get_session(db, other).csrf not in (session.csrf, "")  # one token per session


def test_csrf_tokens_are_derived_from_the_cookie_never_stored(db):
    add_user(db, "e.dupre", "viewer", PASSWORD)
    cookie, session = create_session(db, "e.dupre", "10.1.2.3", 8)
    assert get_session(db, cookie).csrf == session.csrf == csrf_token(cookie) and len(session.csrf) >= 32
    stored = [value for row in db.execute("SELECT * FROM sessions") for value in row]
    assert not any(session.csrf in str(value) or cookie in str(value) for value in stored)
    end_session(db, cookie)
    assert get_session(db, cookie) is None
    stale, _ = create_session(db, "e.dupre", "10.1.2.3", 0)
    assert get_session(db, stale) is None
    cookie, _ = create_session(db, "e.dupre", "10.1.2.3", 8)
    db.execute("UPDATE sessions SET expires = '2020-01-01T00:00:00Z'")  # as if 8 hours went by
    assert get_session(db, cookie) is None and get_session(db, "") is None
    with pytest.raises(InputError, match="no user"):
        create_session(db, "nobody", "10.1.2.3", 8)


def test_an_account_change_and_its_audit_row_are_one_transaction(db):
    from rtvault.catalog import audit
    from rtvault.catalog.audit import Actor

    admin = Actor("root", "cli")
    add_user(db, "e.dupre", "viewer", "a long passphrase", by=admin)
    set_role(db, "e.dupre", "operator", by=admin)
    with pytest.raises(InputError):  # refused: neither the change nor an audit row
        set_role(db, "nobody", "admin", by=admin)
    found, total = audit.entries(db)
    assert total == 2 and [(e.user, e.address, e.action) for e in found] == [
        ("root", "cli", "user_role"), ("root", "cli", "user_add")]
    assert '"role":"operator"' in found[0].detail
