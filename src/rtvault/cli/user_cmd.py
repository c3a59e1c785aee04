"""`rtvault user ...`, `rtvault token ...` and `rtvault audit`: who may use the web interface, and what they did.

Each change made here is itself recorded in the audit trail, in the same transaction, under the operating-system
user and address "cli".
"""

from __future__ import annotations

import click

from rtvault.catalog import Catalog, audit
from rtvault.catalog import users as accounts
from rtvault.cli.output import AppContext, echo, emit_csv, journalled, reported, safe
from rtvault.configured import open_catalog_for
from rtvault.errors import InputError
from rtvault.report import Plain

_role_choice = click.Choice(accounts.ROLES)
_site_option = click.option(
    "--site", "sites", multiple=True,
    help="Only the patients of this site (repeat for several; the site of [sources.NAME] site); none: every "
         "site. Never for an admin.")


def _open(app: AppContext) -> Catalog:
    return open_catalog_for(app.load_config())


def _read_password() -> str:
    """A hidden prompt, asked twice, for a person at a terminal; one line of stdin for scripts."""
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("no password on stdin: pipe it as one line, or run the command at a terminal to be asked")
    return password




@click.group("user", epilog="""\b
Examples:
  rtvault user add e.dupre --role operator
  echo 'a long passphrase' | rtvault user add script --role viewer
  rtvault user add hlefevre --role admin --ldap
  rtvault user add m.roux --role viewer --site "Site A"
  rtvault user list --json
""")
def user() -> None:
    """Users of the web interface and the API, and their roles (viewer < operator < admin)."""


@user.command("add", epilog="""\b
Examples:
  rtvault user add e.dupre --role operator
  echo 'a long passphrase' | rtvault user add script --role viewer --json
  rtvault user add hlefevre --role admin --ldap
  rtvault user add m.roux --role operator --site "Site A" --site "Site B"
""")
@click.argument("name")
@click.option("--role", required=True, type=_role_choice,
              help="viewer searches and views; operator also downloads and restores; admin also manages users "
                   "and reads the audit trail.")
@click.option("--ldap", "directory", is_flag=True, help="Signs in with the LDAP/Active Directory password.")
@_site_option
@reported
@click.pass_obj
def add_command(app: AppContext, name: str, role: str, directory: bool, sites: tuple[str, ...],
                as_json: bool) -> Plain:
    """Add a user; the password (12 characters or more) is asked twice, or read as one line from stdin."""
    with _open(app) as db:
        password = None if directory else _read_password()
        added = accounts.add_user(db, name, role, password, source="ldap" if directory else "local", by=None,
                                  sites=sites)
    return Plain.of(added.to_json(),
                    f"added {added.name}: {added.role}, {added.source}{', DISABLED' if added.disabled else ''}"
                    f", {_sites_text(added)}")


def _sites_text(found: accounts.User) -> str:
    return f"sites {', '.join(found.sites)}" if found.sites else "every site"


@user.command("list", epilog="""\b
Examples:
  rtvault user list
  rtvault user list --json
""")
@reported
@click.pass_obj
def list_command(app: AppContext, as_json: bool) -> Plain:
    """List the users with their role, where their password lives and whether they are disabled."""
    with _open(app) as db:
        found = accounts.list_users(db)
    return Plain.of({"users": [u.to_json() for u in found]},
                    *(f"{u.name:<24} {u.role:<9} {u.source:<6} since {u.created}  {_sites_text(u)}"
                      f"{'  DISABLED' if u.disabled else ''}" for u in found), f"{len(found)} user(s)")


@user.command("passwd", epilog="""\b
Examples:
  rtvault user passwd e.dupre
  echo 'another long passphrase' | rtvault user passwd script
""")
@click.argument("name")
@journalled
@click.pass_obj
def passwd_command(app: AppContext, name: str) -> None:
    """Set a local user's password (asked twice, or one line from stdin); their web sessions end."""
    with _open(app) as db:
        accounts.set_password(db, name, _read_password(), by=None)
    echo(f"password of {name} changed")


@user.command("role", epilog="""\b
Examples:
  rtvault user role e.dupre admin
""")
@click.argument("name")
@click.argument("role", type=_role_choice)
@journalled
@click.pass_obj
def role_command(app: AppContext, name: str, role: str) -> None:
    """Give a user another role; it applies to their next request."""
    with _open(app) as db:
        accounts.set_role(db, name, role, by=None)
    echo(f"{name} is now {role}")


@user.command("sites", epilog="""\b
Examples:
  rtvault user sites m.roux --site "Site A"
  rtvault user sites m.roux --site "Site A" --site "Site B" --json
  rtvault user sites m.roux
""")
@click.argument("name")
@_site_option
@reported
@click.pass_obj
def sites_command(app: AppContext, name: str, sites: tuple[str, ...], as_json: bool) -> Plain:
    """Limit a user to the patients of these sites, or with no --site let them see every site again."""
    with _open(app) as db:
        changed = accounts.set_sites(db, name, sites, by=None)
    seen = f"the patients of {', '.join(changed.sites)}" if changed.sites else "the patients of every site"
    return Plain.of(changed.to_json(), f"{changed.name} now sees {seen}")


@user.command("disable", epilog="""\b
Examples:
  rtvault user disable e.dupre
""")
@click.argument("name")
@journalled
@click.pass_obj
def disable_command(app: AppContext, name: str) -> None:
    """Refuse a user from now on: their sessions end and their API tokens are revoked."""
    with _open(app) as db:
        accounts.disable_user(db, name, by=None)
    echo(f"{name} is disabled; their sessions and tokens are gone")


@user.command("enable", epilog="""\b
Examples:
  rtvault user enable e.dupre
""")
@click.argument("name")
@journalled
@click.pass_obj
def enable_command(app: AppContext, name: str) -> None:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    with _open(app) as db:
        accounts.enable_user(db, name, by=None)
    echo(f"{name} may sign in again")


@click.group("token", epilog="""\b
Examples:
  rtvault token create --user script --label "nightly export"
  rtvault token list
  rtvault token revoke 3f2a9c0e11b4
""")
def token() -> None:
    """API tokens, sent by scripts as `Authorization: Bearer <token>` to /api/*."""


@token.command("create", epilog="""\b
Examples:
  rtvault token create --user script --label "nightly export"
  rtvault token create --user script --json
""")
@click.option("--user", "username", required=True, help="The user the token acts as (with that user's role).")
@click.option("--label", default="", help="What the token is for, shown by `token list`.")
@reported
@click.pass_obj
def token_create_command(app: AppContext, username: str, label: str, as_json: bool) -> Plain:
    """Create a token and print it: this is the only time it is shown (only its hash is kept)."""
    with _open(app) as db:
        value = accounts.create_token(db, username, label, by=None)
    return Plain.of({"token": value, "id": accounts.token_id(value), "user": username, "label": label}, value)


@token.command("list", epilog="""\b
Examples:
  rtvault token list
  rtvault token list --user script --json
""")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
@reported
@click.pass_obj
def token_list_command(app: AppContext, username: str | None, as_json: bool) -> Plain:
    """List tokens by id (not the token itself, which is not kept), user, label and last use."""
    with _open(app) as db:
        found = accounts.list_tokens(db, username)
    return Plain.of({"tokens": found}, *(f"{t['id']}  {t['user']:<20} created {t['created']}  last used "
                                        f"{t['last_used'] or 'never':<20}  {t['label']}" for t in found),
                    f"{len(found)} token(s)")


@token.command("revoke", epilog="""\b
Examples:
  rtvault token revoke 3f2a9c0e11b4
  rtvault token revoke --user script
""")
@click.argument("ref", required=False)
@click.option("--user", "username", default=None, help="Revoke every token of this user instead.")
@reported
@click.pass_obj
def token_revoke_command(app: AppContext, ref: str | None, username: str | None, as_json: bool) -> Plain:
    """Revoke one token, named by its id from `token list` (or the token itself), or all of a user's."""
    if (ref is None) == (username is None):
        raise click.UsageError("give either a token id or --user NAME")
    with _open(app) as db:
        gone = [accounts.revoke_token(db, ref, by=None)] if ref is not None else \
            accounts.revoke_user_tokens(db, username or "", by=None)
    return Plain.of({"revoked": gone}, f"{len(gone)} token(s) revoked")


@click.command("audit", epilog="""\b
Examples:
  rtvault audit --limit 20
  rtvault audit --user e.dupre --since 2026-11-01 --until 2026-11-30
  rtvault audit --action download --json
  rtvault audit --patient 3f2a9c0e11b4d7a8 --csv > dupont-accesses.csv
""")
@click.option("--user", default="", help="Only what this user did.")
@click.option("--action", default="",
              help="Only this action: login, login_failed, logout, search, view, download, restore, refused, "
                   "user_add ...")
@click.option("--patient", default="", help="Only what concerns this patient (catalog key).")
@click.option("--since", default="", help="From this date or date-time (UTC), e.g. 2026-11-01.")
@click.option("--until", default="", help="Up to this date (the whole day) or date-time (UTC).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(0, audit.MAX_LIMIT),
              help="At most this many entries.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0), help="Skip the newest N.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV for a spreadsheet.")
@reported
@click.pass_obj
def audit_command(app: AppContext, limit: int, offset: int, as_csv: bool, as_json: bool,
                  **filters: str) -> Plain | None:
    """Print the audit trail, newest first: who did what, when, from where, to which patient."""
    if as_csv and as_json:
        raise click.UsageError("--csv and --json do not go together")
    with _open(app) as db:
        found, total = audit.entries(db, limit=limit, offset=offset, **filters)
    if as_csv:
        emit_csv(audit.to_csv(found, clean=safe))
        return None
    return Plain.of({"entries": [e.to_json() for e in found], "total": total},
                    *(f"{e.time}  {e.user:<16} {e.address:<15} {e.action:<13} {e.patient or '-':<16} {e.result:<7} "
                      f"{e.detail}" for e in found), f"{len(found)} of {total} entries")
