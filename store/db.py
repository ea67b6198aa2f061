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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from store import turns

# Which database, the schema revision and the SQLite file check, shared with the
# standard-library reader (store.sqlite_reader); imported from here as ever.
from store.dbinfo import BUSY_TIMEOUT_S as BUSY_TIMEOUT_S
from store.dbinfo import DEFAULT_URL as DEFAULT_URL
from store.dbinfo import ENV_VAR as ENV_VAR
from store.dbinfo import HEAD_REVISION as HEAD_REVISION
from store.dbinfo import VERSION_TABLE as VERSION_TABLE
from store.dbinfo import StoreError as StoreError
from store.dbinfo import check_sqlite_file as check_sqlite_file
from store.dbinfo import database_url as database_url

if TYPE_CHECKING:  # alembic (and the migration scripts) are read only when the stored
    # schema is not HEAD_REVISION: opening a current database does not import them
    from alembic.config import Config
    from sqlalchemy.sql import Select, TextualSelect

SYNC_DURABLE = "FULL"  # every commit synced: survives power loss
SYNC_BULK = "NORMAL"  # survives a crash, not power loss: for writes that can be redone
WRITE_OPTION = "asl_write"  # execution option marking a connection opened to write


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


def json_text(value: Any) -> str:
    """JSON as the store writes it (keys sorted): for JSON columns, and for rows
    serialised ahead of time by the workers."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def connect(url: str, migrate: bool = True, bulk: bool = False,
            sqlite_pool: int | None = None) -> Engine:
    """An engine for `url`, checked and (unless `migrate` is False) at the newest schema.
    `bulk` (writes that can be redone) commits to SQLite with `synchronous=NORMAL`
    rather than FULL. `sqlite_pool`: how many SQLite connections to keep open for reuse
    (SQLAlchemy's default, 5, otherwise): a connection opened past the pool is closed
    after one use, and opening one (the file, WAL, the pragmas) costs more CPU than a
    small request, so a caller with many threads (the service) keeps one per thread.
    Raises StoreError with a one-line reason (the caller names the database) when the
    database cannot be used."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        check_sqlite_file(parsed.database)
        pooled = {} if sqlite_pool is None else {"pool_size": sqlite_pool}
        engine = create_engine(parsed, json_serializer=json_text, json_deserializer=orjson.loads,
                               connect_args={"timeout": BUSY_TIMEOUT_S}, **pooled)
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
        raise StoreError(reason(exc)) from None


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


def reason(exc: DBAPIError) -> str:
    """The database's own first line about `exc`: what a one-line refusal quotes (never
    the statement or its bound row data)."""
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else type(exc.orig).__name__


class SQLiteEngine(Engine):
    """An engine whose `begin()` marks its connection as a writer's, so that its
    transaction begins IMMEDIATE (the write lock taken up front, waiting for it as the
    busy timeout allows, rather than failing when a read transaction would have to be
    upgraded after another writer committed). Transactions a plain `connect()` begins
    for reads begin deferred.

    The writers of one process take turns on a lock of the engine's first, so that of
    many threads wanting to write (the service's request threads) one at a time goes on,
    and the others are woken as soon as the lock is free; the one then takes the
    writers' turn across processes (`store.turns`) before BEGIN IMMEDIATE, so that it
    does not wait in SQLite's busy handler, which polls with sleeps of up to 100 ms."""

    _writer_lock: threading.RLock
    _writer_depth: int  # this process's nested begin()s: only the outermost takes a turn
    _database: str | None  # the SQLite file, None in memory

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        # Waiting for either lock is bounded like SQLite's own wait: past it, this writer
        # goes on to SQLite's (and fails there, as ever, if the database stays locked).
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        turn = self._writer_lock.acquire(timeout=BUSY_TIMEOUT_S)
        shared = None
        try:
            if turn:
                self._writer_depth += 1
                if self._writer_depth == 1 and self._database is not None:
                    shared = turns.take(self._database, max(0.0, deadline - time.monotonic()))
            with self.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        finally:
            if shared is not None:
                turns.give_back(shared)
            if turn:
                self._writer_depth -= 1
                self._writer_lock.release()


class Read:
    """A SELECT a hot path runs on every request (the service's token check, the newest
    assessment `why` explains, a model's history), run on a pooled connection of the
    driver's own, past SQLAlchemy's Connection and execution layer, which cost several
    times the read itself (and, on SQLite, a BEGIN and a ROLLBACK around it).

    One statement reads one consistent snapshot by itself: in SQLite's autocommit mode,
    and in PostgreSQL's implicit transaction, which the pool ends (rollback) when the
    connection is returned. The statement is compiled once for each database dialect;
    its columns come back as SQLAlchemy would give them (each type's result processor
    for the dialect: JSON decoded on SQLite, ...); its parameters, strings and integers,
    go to the driver as they are. A driver's error is raised as SQLAlchemy raises it
    (DBAPIError), and a connection the database dropped is not returned to the pool."""

    def __init__(self, statement: Select[Any] | TextualSelect) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}  # by dialect name

    def first(self, engine: Engine, **params: Any) -> tuple[Any, ...] | None:
        """The first row, None when there is none."""
        rows = self._run(engine, params, one=True)
        return rows[0] if rows else None

    def all(self, engine: Engine, **params: Any) -> list[tuple[Any, ...]]:
        """Every row."""
        return self._run(engine, params, one=False)

    def _run(self, engine: Engine, params: dict[str, Any], one: bool
             ) -> list[tuple[Any, ...]]:
        dialect = engine.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled.of(self.statement, dialect)
        args: Any = params if compiled.names is None else tuple(
            params[name] for name in compiled.names)
        error = dialect.loaded_dbapi.Error
        try:
            conn = engine.raw_connection()
        except error as exc:  # the database cannot be reached (or opened)
            raise DBAPIError.instance(None, None, exc, error, hide_parameters=True,
                                      dialect=dialect) from exc
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(compiled.sql, args)
                got = cursor.fetchmany(1) if one else cursor.fetchall()
            finally:
                cursor.close()
        except error as exc:
            if dialect.is_disconnect(exc, conn.dbapi_connection, None):
                conn.invalidate(exc)
            raise DBAPIError.instance(compiled.sql, None, exc, error, hide_parameters=True,
                                      dialect=dialect) from exc
        finally:
            conn.close()  # back to the pool, which ends a transaction the read began
        convert = compiled.processors
        if not any(convert):
            return [tuple(row) for row in got]
        return [tuple(value if f is None or value is None else f(value)
                      for f, value in zip(convert, row, strict=True)) for row in got]


class _Compiled(NamedTuple):
    """A `Read`'s statement for one dialect: its SQL, the order of its parameters (None
    when the driver takes them by name) and each column's result processor."""

    sql: str
    names: tuple[str, ...] | None
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Select[Any] | TextualSelect, dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in statement.selected_columns)
        return cls(compiled.string, names, processors)


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    """WAL, a busy timeout, `synchronous`, foreign keys; BEGIN IMMEDIATE for a writer's
    transaction (`engine.begin()`) and a deferred BEGIN for a reader's."""
    engine.__class__ = SQLiteEngine  # the same engine, with the writer's begin()
    engine._writer_lock = threading.RLock()  # re-entrant: a nested begin() waits in SQLite
    engine._writer_depth = 0
    database = engine.url.database
    engine._database = (str(Path(database).resolve())
                        if database and database != ":memory:" and not database.startswith("file:")
                        else None)

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
        # on the driver's connection: a statement of SQLAlchemy's own here cost more
        # than a small read it begins; its errors raised as SQLAlchemy would raise them
        statement = "BEGIN IMMEDIATE" if conn.get_execution_options().get(
            WRITE_OPTION, False) else "BEGIN"
        try:
            conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


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
