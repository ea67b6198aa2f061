"""`asl db check`: is the record sound? And what a batch says when the record fails it:
damaged before it starts, or a write failing (disk full, an I/O error) while it runs.
(`asl db upgrade` lives with `asl batch`.)"""

from __future__ import annotations

from typing import NoReturn

import click
from sqlalchemy.exc import DBAPIError

from cli.options import EXIT_FAILED, EXIT_REJECTED, fail
from cli.store_options import db_option, open_store
from store.check import check_database
from store.db import database_url, describe
from store.record import Store


@click.command("check")
@click.option("--quick", is_flag=True, help="Only the cheaper checks (those a batch makes "
              "before it writes).")
@db_option
def db_check(quick: bool, db: str | None) -> None:
    """Check the database for damage: SQLite's integrity_check and foreign_key_check;
    on PostgreSQL, amcheck's index checks where the extension is installed and a read
    of every row. Prints what ran and any problem; exit status 1 if damaged.

    \b
    Example:
      asl db check
      asl db check --db /srv/asl/asl.db --quick
    """
    store = open_store(db, read_only=True)
    where = describe(database_url(db))
    report = check_database(store.engine, quick=quick)
    store.engine.dispose()
    if report.sound:
        click.echo(f"{where}: sound ({'; '.join(report.checks)})")
        return
    click.echo(f"{where}: damaged ({'; '.join(report.checks)} found "
               f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''})",
               err=True)
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    raise SystemExit(EXIT_FAILED)


def refuse_if_damaged(store: Store, db: str | None) -> None:
    """Before a batch writes: the quick check, and on damage one line and exit 2, with
    nothing written (new rows would bury the damage)."""
    report = check_database(store.engine, quick=True)
    if not report.sound:
        fail(f"cannot use database {describe(database_url(db))}: it is damaged "
             f"({report.problems[0]}); `asl db check` says more", EXIT_REJECTED)


def write_failed(db: str | None, exc: DBAPIError) -> NoReturn:
    """A batch's write failed part-way (disk full, an I/O error, the server gone): one
    line with the database's own reason, never the statement or its rows, and exit 1.
    Each chunk is one transaction, so what was committed is whole and what was not left
    no trace; running the same command again resumes."""
    lines = str(exc.orig).strip().splitlines()
    reason = lines[0] if lines else type(exc.orig).__name__
    fail(f"cannot write to database {describe(database_url(db))}: {reason}; every result "
         "committed before is stored, and running the same command again resumes",
         EXIT_FAILED)
