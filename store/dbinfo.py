"""What every command knows of its database before (or without) SQLAlchemy: which URL,
the schema revision this asl writes, and whether a SQLite file could be used.

`store.db` opens databases with SQLAlchemy and re-exports these; `store.sqlite_reader`
reads a current SQLite record with the standard library's sqlite3 alone (`asl why
MODEL`, whose start-up SQLAlchemy would dominate). Neither imports anything heavier than
the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ASL_DATABASE_URL"
DEFAULT_URL = "sqlite:///asl.db"
BUSY_TIMEOUT_S = 60
# The newest migration in store/migrations/versions (tests/test_store_migration.py checks
# it is alembic's head): a database stored at it is current without asking alembic.
HEAD_REVISION = "0012"
VERSION_TABLE = "alembic_version"  # where alembic keeps a database's revision


class StoreError(Exception):
    """The database cannot be used: unreachable, unwritable, or not an asl database.
    The message names the database and says what to do."""


def database_url(option: str | None) -> str:
    """The URL to use: the option, else the environment, else ./asl.db."""
    url = option or os.environ.get(ENV_VAR) or DEFAULT_URL
    if "://" not in url:  # a plain path means a SQLite file
        url = f"sqlite:///{url}"
    return url


def check_sqlite_file(database: str | None) -> None:
    """Refuse, before anything is created, a SQLite file that could not be written."""
    if not database or database == ":memory:":
        return
    path = Path(database)
    parent = path.parent  # "." for a bare file name
    if not parent.is_dir():
        raise StoreError(f"directory {parent} does not exist")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"the database file {path} is not writable")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"directory {parent} is read-only (SQLite writes its journal "
                             "beside the database)")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"directory {parent} is read-only; cannot create the database "
                         "there")
