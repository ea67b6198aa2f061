"""`asl tokens`: make, list and revoke the service's API tokens.

Anyone who can open the database can make tokens: that is how the first admin is made.
`create` prints the token, and nothing else, on standard output; only its hash is kept.
Making and revoking are recorded in the decision log as the OS user (`cli:USER`).
"""

from __future__ import annotations

import click

from cli.options import EXIT_REJECTED, dumps, fail
from cli.render import table
from cli.store_options import db_option, open_store
from store import tokens


@click.group("tokens", context_settings={"help_option_names": ["-h", "--help"]})
def tokens_group() -> None:
    """Make, list and revoke API tokens for `asl serve`.

    \b
    Examples:
      asl tokens create --name alice-admin --role admin --user alice
      asl tokens list
      asl tokens revoke alice-admin
    """


@tokens_group.command("create")
@click.option("--name", required=True, help="A name for the token (unique among live ones).")
@click.option("--role", required=True, type=click.Choice(tokens.ROLES),
              help="viewer reads; analyst also assesses; rule-author also uploads draft "
              "packs; admin does everything.")
@click.option("--user", "person", metavar="PERSON",
              help="The person it belongs to (default: the token's name); four-eyes "
              "activation compares people.")
@click.option("--expires", type=click.IntRange(1, tokens.MAX_EXPIRY_DAYS), metavar="DAYS",
              help="Expire the token after DAYS days (default: never).")
@db_option
def create(name: str, role: str, person: str | None, expires: int | None,
           db: str | None) -> None:
    """Make a token and print it (shown this once: only its hash is stored)."""
    try:
        text, _ = tokens.create(open_store(db).engine, name, role, person, expires)
    except tokens.TokenError as exc:
        fail(str(exc), EXIT_REJECTED)
    click.echo(text)


@tokens_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@db_option
def list_command(fmt: str, db: str | None) -> None:
    """Every token: name, person, role, state, expiry and last use (never a secret)."""
    found = tokens.list_tokens(open_store(db).engine)
    if fmt == "json":
        click.echo(dumps([t.to_json() for t in found]))
        return
    if not found:
        click.echo("no tokens; asl tokens create makes one")
        return
    click.echo(table([[t.name, t.person, t.role, t.state(), _day(t.expires_at),
                        _day(t.last_used_at), t.id] for t in found],
                      ["name", "user", "role", "state", "expires", "last used", "id"]))


def _day(stamp: str | None) -> str:
    return "-" if stamp is None else stamp[:16].replace("T", " ")


@tokens_group.command("revoke")
@click.argument("name")
@db_option
def revoke(name: str, db: str | None) -> None:
    """Revoke the live token NAME; it is refused from the next request on."""
    try:
        token = tokens.revoke(open_store(db).engine, name)
    except tokens.TokenError as exc:
        fail(str(exc), EXIT_REJECTED)
    click.echo(f"revoked {token.name} ({token.person}, {token.role})")
