"""Opening the database: which URL, checked before anything is written, migrated on use.

The URL comes from `--db`, else `ASL_DATABASE_URL`, else the SQLite file `asl.db` in the
current directory. A bare path is read as a SQLite file. SQLite runs in WAL mode with a
busy timeout. A transaction opened to write (`engine.begin()`, as every writer opens
one) starts with BEGIN IMMEDIATE, so two batches writing to one file wait for each
other instead of failing half-way; a read (`engine.connect()`, then queries) starts with
a plain (deferred) BEGIN, which in WAL mode reads a snapshot without taking the write
lock, so readers never queue behind writers nor hold them up.

Durability is a stated choice. SQLite commits with `synchronous=FULL`: the write-ahead
log is synced at every commit, so a commit survives power loss, as the decision log,
activated packs and tokens must (a batch enters the decision log too, and FULL costs it
about 1.5%: benchmarks/durability_bench.py). `bulk=True` commits with NORMAL instead (it
survives a crash but may lose the last commits on power loss): the benchmark's baseline,
for bulk writes that can be redone. PostgreSQL commits durably as configured
(`synchronous_commit`, on by default); asl does not change it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

if TYPE_CHECKING:  # alembic (and the migration scripts) are read only when the stored
    # schema is not HEAD_REVISION: opening a current database does not import them
    from alembic.config import Config

ENV_VAR = "ASL_DATABASE_URL"
DEFAULT_URL = "sqlite:///asl.db"
BUSY_TIMEOUT_S = 60
SYNC_DURABLE = "FULL"  # every commit synced: survives power loss
SYNC_BULK = "NORMAL"  # survives a crash, not power loss: for writes that can be redone
WRITE_OPTION = "asl_write"  # execution option marking a connection opened to write
# The newest migration in store/migrations/versions (tests/test_store_migration.py checks
# it is alembic's head): a database stored at it is current without asking alembic.
HEAD_REVISION = "0010"
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


def describe(url: str) -> str:
    """The URL as it may be shown: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL ({exc})") from None
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() != "sqlite":
        raise StoreError("unsupported database; use a SQLite path or a postgresql:// URL")
    return parsed


def _check_sqlite_file(database: str | None) -> None:
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


def json_text(value: Any) -> str:
    """JSON as the store writes it (keys sorted): for JSON columns, and for rows
    serialised ahead of time by the workers."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def connect(url: str, migrate: bool = True, bulk: bool = False) -> Engine:
    """An engine for `url`, checked and (unless `migrate` is False) at the newest schema.
    `bulk` (writes that can be redone) commits to SQLite with `synchronous=NORMAL`
    rather than FULL. Raises StoreError with a one-line reason (the
    caller names the database) when the database cannot be used."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed.database)
        engine = create_engine(parsed, json_serializer=json_text, json_deserializer=orjson.loads,
                               connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_pragmas(engine, SYNC_BULK if bulk else SYNC_DURABLE)
    else:
        engine = create_engine(parsed, json_serializer=json_text, json_deserializer=orjson.loads,
                               pool_pre_ping=True)
    try:
        with _disposed_on_failure(engine):
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            if migrate and not at_head(engine):
                upgrade(engine)
    except NoSuchModuleError as exc:
        raise StoreError(str(exc)) from None
    return engine


@contextmanager
def _disposed_on_failure(engine: Engine) -> Iterator[None]:
    """The first use of a new engine: if the database refuses, the engine's connections
    are closed and the refusal becomes a StoreError with its one-line reason."""
    try:
        yield
    except StoreError:
        engine.dispose()
        raise
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(_reason(exc)) from None


def connect_reader(url: str) -> Engine:
    """An engine for a command that only reads: `connect(url)` when the database may be
    written (so it is migrated as ever), and a read-only one for an existing SQLite file
    that may not. A read-only record at an older schema is refused with what to do."""
    parsed = _parse(url)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or _writable(Path(database)):
        return connect(url)
    path = Path(database)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise StoreError(f"the database file {path} cannot be read")
    engine = create_engine(
        "sqlite://", json_serializer=json_text, json_deserializer=orjson.loads,
        creator=lambda: sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                        timeout=BUSY_TIMEOUT_S, check_same_thread=False))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    with _disposed_on_failure(engine):
        if not at_head(engine):
            raise StoreError("the database is read-only and at an older schema revision; "
                             "run `asl db upgrade` where it may be written")
    return engine


def _writable(path: Path) -> bool:
    """Whether SQLite could write `path` (a new file, or the file and its directory, where
    it keeps its -wal and -shm files)."""
    parent = path.parent
    if not path.exists():
        return True  # connect() says what is wrong with creating it
    return os.access(path, os.W_OK) and os.access(parent, os.W_OK | os.X_OK)


def _reason(exc: DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else type(exc.orig).__name__


class SQLiteEngine(Engine):
    """An engine whose `begin()` marks its connection as a writer's, so that its
    transaction begins IMMEDIATE (the write lock taken up front, waiting for it as the
    busy timeout allows, rather than failing when a read transaction would have to be
    upgraded after another writer committed). Transactions a plain `connect()` begins
    for reads begin deferred.

    The writers of one process take turns on a lock of the engine's first, so that of
    many threads wanting to write (the service's request threads) one at a time waits
    in SQLite's busy handler, which polls with sleeps of up to 100 ms, and the others
    are woken as soon as the lock is free."""

    _writer_lock: threading.RLock

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        # Waiting for the lock is bounded like SQLite's own wait: past it, this writer
        # goes on to SQLite's (and fails there, as ever, if the database stays locked).
        turn = self._writer_lock.acquire(timeout=BUSY_TIMEOUT_S)
        try:
            with self.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        finally:
            if turn:
                self._writer_lock.release()


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    """WAL, a busy timeout, `synchronous`, foreign keys; BEGIN IMMEDIATE for a writer's
    transaction (`engine.begin()`) and a deferred BEGIN for a reader's."""
    engine.__class__ = SQLiteEngine  # the same engine, with the writer's begin()
    engine._writer_lock = threading.RLock()  # re-entrant: a nested begin() waits in SQLite

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        _set_wal(cursor)
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _set_wal(cursor: Any) -> None:
    """Switch to WAL. Changing the journal mode ignores the busy timeout: on a new file
    another process is writing, it fails at once with "database is locked", so it is
    retried for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("store.migrations")))
    return cfg


def head_revision() -> str | None:
    """The newest schema revision this version of asl knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def at_head(engine: Engine) -> bool:
    """Whether the database's schema is the newest; a database from a newer asl is
    refused rather than written with an older schema."""
    if _stored_revisions(engine) == [HEAD_REVISION]:
        return True  # the common case, answered without importing alembic
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    head = head_revision()
    if current is not None and current != head:
        script = ScriptDirectory.from_config(_config())
        if current not in {rev.revision for rev in script.walk_revisions()}:
            raise StoreError(f"the database is at schema revision {current}, which this "
                             "version of asl does not know; upgrade asl")
    return current == head


def _stored_revisions(engine: Engine) -> list[str]:
    """The revisions in the database's version table (none when it has none), read
    with plain SQL: alembic is asked only when they are not exactly the head."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return []
        return [str(row[0]) for row in conn.execute(
            text(f"SELECT version_num FROM {VERSION_TABLE}"))]


def upgrade(engine: Engine) -> str | None:
    """Apply every pending migration in one locked transaction; the new revision."""
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return current_revision(engine)
