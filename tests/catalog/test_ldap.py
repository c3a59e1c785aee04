"""Signing in with a directory password, against a real OpenLDAP server (slapd) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kit.files import free_port
from kit.ldap import PEOPLE, SLAPD, USER_DN, Directory, running_slapd
from rtvault.catalog import open_catalog
from rtvault.catalog.users import (
    add_user,
    authenticate,
    disable_user,
    get_user,
    ldap_bind,
    list_users,
    set_role,
)
from rtvault.config.web import Ldap
from rtvault.errors import DirectoryUnavailable, InputError

HELENE, HELENE_PASSWORD = "hlefevre", PEOPLE["hlefevre"][1]
JB, JB_PASSWORD = "jbndiaye", PEOPLE["jbndiaye"][1]


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Iterator[Directory]:
    if not SLAPD.exists():
        pytest.skip(f"{SLAPD} is absent: install the Debian package slapd to run the LDAP tests")
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def ldap(directory) -> Ldap:
    return Ldap(url=directory.url, user_dn=USER_DN, default_role="viewer", timeout_seconds=3)


@pytest.fixture
def db(tmp_path):
    with open_catalog("sqlite:///" + str(tmp_path / "c.sqlite")) as catalog:
        yield catalog


def test_a_directory_user_added_locally_gets_their_local_role(db, ldap):
    add_user(db, HELENE, "operator", None, source="ldap")
    user = authenticate(db, ldap, HELENE, HELENE_PASSWORD)
    assert user is not None and (user.name, user.role, user.source) == (HELENE, "operator", "ldap")


@pytest.mark.parametrize(("name", "password"), [
    (HELENE, "Radiothérapie-2025!"),  # wrong password
    (HELENE, ""),  # empty: an "unauthenticated" bind, which Active Directory accepts
    ("inconnu", "Radiothérapie-2026!"),  # not in the directory
    ("*", HELENE_PASSWORD),
    ("hlefevre,ou=people", HELENE_PASSWORD),  # not a user name: never reaches the directory
])
def test_wrong_directory_credentials_are_refused(db, ldap, name, password):
    add_user(db, HELENE, "admin", None, source="ldap")
    assert authenticate(db, ldap, name, password) is None
    assert get_user(db, "inconnu") is None


def test_empty_password_is_refused_even_by_the_bind_helper(ldap):
    assert ldap_bind(ldap, HELENE, HELENE_PASSWORD)
    assert not ldap_bind(ldap, HELENE, "")


def test_an_unknown_directory_user_gets_the_default_role_on_first_login(db, ldap):
    first = authenticate(db, replace(ldap, default_role="operator"), JB, JB_PASSWORD)
    assert first is not None and (first.role, first.source) == ("operator", "ldap")
    assert get_user(db, JB) == first
    assert db.one("SELECT password_hash FROM users WHERE name = ?", (JB,))[0] is None
    assert authenticate(db, ldap, JB, JB_PASSWORD) == first  # the stored role wins over a later default
    disable_user(db, JB)
    assert authenticate(db, ldap, JB, JB_PASSWORD) is None


def test_an_empty_default_role_admits_only_users_added_locally(db, ldap):
    closed = replace(ldap, default_role="")
    assert authenticate(db, closed, JB, JB_PASSWORD) is None
    assert get_user(db, JB) is None
    add_user(db, JB, "viewer", None, source="ldap")
    assert authenticate(db, closed, JB, JB_PASSWORD).role == "viewer"


def test_a_local_user_is_checked_locally_only(db, ldap):
    add_user(db, HELENE, "admin", "mot de passe local")
    assert authenticate(db, ldap, HELENE, HELENE_PASSWORD) is None
    assert authenticate(db, ldap, HELENE, "mot de passe local").source == "local"


def test_an_unreachable_directory_is_a_clear_error(db):
    down = Ldap(url=f"ldap://127.0.0.1:{free_port()}", user_dn=USER_DN, default_role="viewer", timeout_seconds=2)
    with pytest.raises(DirectoryUnavailable, match="cannot be reached") as raised:
        authenticate(db, down, HELENE, HELENE_PASSWORD)
    assert down.url in str(raised.value)
    add_user(db, "e.dupre", "viewer", "Élodie-Dupré-2026")
    assert authenticate(db, down, "e.dupre", "Élodie-Dupré-2026") is not None  # local users still sign in


def test_directory_user_names_are_compared_regardless_of_case(db, ldap):
    add_user(db, HELENE, "operator", None, source="ldap")
    with pytest.raises(InputError, match="already exists"):
        add_user(db, "HLefevre", "admin", None, source="ldap")
    typed = authenticate(db, ldap, "HLefevre", HELENE_PASSWORD)  # the directory ignores case: so does rtvault
    assert typed is not None and (typed.name, typed.role) == (HELENE, "operator")
    assert [u.name for u in list_users(db)] == [HELENE]
    set_role(db, "HLEFEVRE", "admin")
    assert get_user(db, HELENE).role == "admin"  # type: ignore[union-attr]


def test_a_new_directory_user_is_kept_lowercased(db, ldap):
    first = authenticate(db, ldap, "JBNdiaye", JB_PASSWORD)
    again = authenticate(db, ldap, JB, JB_PASSWORD)
    assert first is not None and again is not None and first.name == again.name == JB
    assert [u.name for u in list_users(db)] == [JB]
