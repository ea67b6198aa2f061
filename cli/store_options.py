"""Opening the record for a command, and reading the active pack stack stored there (a
clear error, exit 2, when the database cannot be used). `db_option`, the `--db` option,
is declared in cli.options (`pack_option` adds it) and taken from here by the commands
that open the record without loading packs."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cli.extras import require
from cli.options import EXIT_REJECTED, fail
from cli.options import db_option as db_option  # the commands that open the record take it here
from store.dbinfo import StoreError, database_url
from store.sqlite_reader import STACK_ROWS, STACK_TABLE

if TYPE_CHECKING:  # SQLAlchemy (store.db), store.record (sqlmodel's tables) and
    # store.packs are imported where used: `asl why MODEL` reads a current SQLite record
    # with sqlite3 alone (store.sqlite_reader), and any other through open_engine
    from sqlalchemy.engine import Engine

    from store.record import Store, Summary


def open_store(db: str | None, read_only: bool = False, bulk: bool = False) -> Store:
    """The record at `db` (or the default), migrated to the newest schema; on any
    problem one line naming the database, and exit status 2 (a PostgreSQL URL without
    the `postgres` extra installed is one). With `read_only` (commands that only read),
    a SQLite file that may not be written is read as it is; `bulk` commits as
    `store.db.connect` says."""
    from store.record import Store

    return Store(open_engine(db, read_only, bulk))


def open_engine(db: str | None, read_only: bool = False, bulk: bool = False) -> Engine:
    """The engine `open_store` wraps, opened (and refused) as it says."""
    from store.db import connect, connect_reader, describe

    url = database_url(db)
    if _is_postgres(url):
        require("postgres", f"the database {describe(url)}")
    try:
        return connect_reader(url) if read_only else connect(url, bulk=bulk)
    except StoreError as exc:
        fail(f"cannot use database {describe(url)}: {exc}", EXIT_REJECTED)


def _is_postgres(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (a URL that is not valid is left to
    `store.db.connect` to refuse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).get_backend_name() == "postgresql"
    except ArgumentError:
        return False


def stored_history(store: Store, model: str, missing: str) -> list[Summary]:
    """Every stored assessment of `model`, oldest first; none is the error `missing`
    (exit 2)."""
    found = store.history(model)
    if not found:
        fail(missing, EXIT_REJECTED)
    return found


def check_assessment(model: str, assessment_id: int, found: Sequence[Summary]) -> None:
    """Refuse (exit 2, naming the ones there are) an id that is not one of `found`, the
    assessments of `model` oldest first."""
    if assessment_id not in {s.id for s in found}:
        fail(f"{model}: no assessment {assessment_id}; its assessments are "
             f"{', '.join(str(s.id) for s in found)}", EXIT_REJECTED)


def stored_overlays(db: str | None) -> tuple[str, ...]:
    """The overlay directories of the active pack stack stored at `db` (or the default
    database), written into a directory of this process's that is removed when it
    exits; none when there is no database yet. A database that cannot be read is one
    line, exit 2."""
    from store import packs
    from store.db import describe

    url = database_url(db)
    try:
        stored = packs.stored_overlays(url)
    except StoreError as exc:
        fail(f"cannot use database {describe(url)}: {exc} (it holds the active pack "
             "stack; --pack chooses the packs instead)", EXIT_REJECTED)
    if not stored:
        return ()
    root = Path(tempfile.mkdtemp(prefix="asl-packs-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return tuple(str(packs.materialize(pack, root)) for pack in stored)


def existing_record(db: str | None) -> str | None:
    """The database URL `db` names (or the default), or None when it is a SQLite file
    that does not exist (or an in-memory one): nothing to read there, and a command that
    only reads or annotates a record must not create one."""
    from sqlalchemy.engine import make_url

    url = database_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and (
            not parsed.database or parsed.database == ":memory:"
            or not Path(parsed.database).exists()):
        return None
    return url


def check_stored_stack(db: str | None) -> None:
    """Read the active pack stack stored at `db` as `stored_overlays` does, and refuse a
    database it cannot read with the same line (exit 2), without importing store.packs
    (sqlmodel) or writing the packs out: for `asl why MODEL`, which takes the stored
    stack when given no --pack but answers from the record without assessing (and
    store.sqlite_reader reads it alike, with sqlite3)."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    from store.db import connect, describe, reason

    url = existing_record(db)
    if url is None:
        return
    try:
        engine = connect(url, migrate=False)
        try:
            if inspect(engine).has_table(STACK_TABLE):
                with engine.connect() as conn:
                    conn.execute(text(STACK_ROWS)).all()
        except DBAPIError as exc:  # as store.packs.stored_overlays words it
            raise StoreError(f"its active pack stack cannot be read: {reason(exc)}") from None
        finally:
            engine.dispose()
    except StoreError as exc:
        fail(f"cannot use database {describe(url)}: {exc} (it holds the active pack "
             "stack; --pack chooses the packs instead)", EXIT_REJECTED)
