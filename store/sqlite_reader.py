"""Reading a current SQLite record with the standard library's sqlite3 alone.

`asl why MODEL` reads one row. Opening the record the full way (`store.db.connect`:
SQLAlchemy, the schema check, alembic when it is not current) costs far more start-up
than the read; importing SQLAlchemy alone takes about half a second. `open_current`
opens a SQLite file with sqlite3, to read only, and answers only when the full way would
find the same database usable and current, reading nothing else: anything else (a
PostgreSQL URL, a SQLite URL with options, a file that does not exist or could not be
written, a database not in WAL mode or at another schema revision, any SQLite error)
is None, and the caller takes the full way, which opens, migrates or refuses it
exactly as every command does. So the light read changes no answer and no error.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from store.dbinfo import (
    BUSY_TIMEOUT_S,
    HEAD_REVISION,
    VERSION_TABLE,
    StoreError,
    check_sqlite_file,
    database_url,
)
from store.newest import newest_sqlite

SQLITE_PREFIX = "sqlite:///"  # a plain SQLite file URL, as store.db.database_url writes it
STACK_TABLE = "pack_active"  # store.service_tables.ActivePack: the active overlays
STACK_ROWS = f"SELECT * FROM {STACK_TABLE} ORDER BY position"  # every command reads it
HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"


def sqlite_file(db: str | None) -> Path | None:
    """The SQLite file the database option `db` names (or the default) when its URL is a
    plain `sqlite:///PATH` whose path SQLAlchemy reads as it is written, and the file
    exists; None otherwise."""
    url = database_url(db)
    if not url.startswith(SQLITE_PREFIX):
        return None
    database = url[len(SQLITE_PREFIX):]
    if not database or database == ":memory:" or any(c in database for c in "?%"):
        return None  # a query string or %-escapes: SQLAlchemy reads those itself
    path = Path(database)
    return path if path.is_file() else None


def open_current(db: str | None, read_stack: bool) -> sqlite3.Connection | None:
    """A connection to the SQLite record `db` names that only reads, inside one read
    transaction, when the full way (`store.db.connect`) would use it as it is: a file
    that could be written, in WAL mode, at `HEAD_REVISION`; with `read_stack`, its
    active pack stack read as `cli.store_options.check_stored_stack` reads it. None
    when any of that is not so, or SQLite reports any error."""
    path = sqlite_file(db)
    if path is None:
        return None
    try:
        check_sqlite_file(str(path))
    except StoreError:
        return None
    try:  # opened as store.db opens it (read-write, never created), so that closing it
        # removes SQLite's -wal and -shm files as ever; query_only: it writes nothing
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                               timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA query_only = ON")
        if _usable(conn, read_stack):
            return conn
    except sqlite3.Error:
        pass
    conn.close()
    return None


def _usable(conn: sqlite3.Connection, read_stack: bool) -> bool:
    """Whether the open record is current (and its stack readable), in one snapshot."""
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":  # store.db would switch it to WAL first
        return False
    conn.execute("BEGIN")
    if read_stack and _has_table(conn, STACK_TABLE):
        conn.execute(STACK_ROWS).fetchall()
    if not _has_table(conn, VERSION_TABLE):
        return False
    revisions = [str(row[0]) for row in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")]
    return revisions == [HEAD_REVISION]


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute(HAS_TABLE, (name,)).fetchone() is not None


def newest_current(db: str | None, model_id: str, read_stack: bool
                   ) -> tuple[int, str, bytes] | None:
    """`store.newest.newest` of `model_id` in the record `db` names, read with sqlite3
    when `open_current` can (None when it cannot, or finds no assessment of the model:
    then the full way answers, or says what is wrong)."""
    conn = open_current(db, read_stack)
    if conn is None:
        return None
    with closing(conn):
        try:
            return newest_sqlite(conn, model_id)
        except sqlite3.Error:
            return None
