"""store.db on real databases: a SQLite file and a PostgreSQL database (tests/pg_server.py),
through the `db_url` fixture, so each behaviour is checked on both backends.

Opening a database migrates it to the newest schema, once, even when two processes open a
fresh database at the same moment; a SQLite file that could not be written is refused
before anything is created; and the URL comes from the option, the environment or the
default.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401  (before a fork; see connect_unprivileged)
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import store.db
import store.tables  # registers the tables on SQLModel.metadata
from store import turns
from store.db import (
    DEFAULT_URL,
    ENV_VAR,
    StoreError,
    connect,
    current_revision,
    database_url,
    head_revision,
    upgrade,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA_TABLES = set(SQLModel.metadata.tables)



def version_rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """Engines a test opens, disposed at its end (before its database is dropped)."""
    opened: list[Engine] = []
    yield opened
    for engine in opened:
        engine.dispose()


# ---------------------------------------------------------------- migration on connect


def test_head_revision_is_known() -> None:
    assert head_revision()


def test_connect_migrates_an_empty_database_to_head(db_url: str,
                                                    engines: list[Engine]) -> None:
    bare = connect(db_url, migrate=False)
    engines.append(bare)
    assert current_revision(bare) is None
    assert table_names(bare) == set()

    engine = connect(db_url)
    engines.append(engine)
    assert current_revision(engine) == head_revision()
    assert version_rows(engine) == [head_revision()]
    assert table_names(engine) == SCHEMA_TABLES | {"alembic_version"}


def test_connecting_twice_migrates_once(db_url: str, engines: list[Engine],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = connect(db_url)
    engines.append(first)

    def no_second_upgrade(engine: Engine) -> str | None:
        raise AssertionError("a database at head was migrated again")

    monkeypatch.setattr(store.db, "upgrade", no_second_upgrade)
    second = connect(db_url)  # while the first engine is still open
    engines.append(second)
    assert current_revision(second) == head_revision()
    assert version_rows(second) == [head_revision()]


def test_upgrade_at_head_changes_nothing(db_url: str, engines: list[Engine]) -> None:
    engine = connect(db_url)
    engines.append(engine)
    assert upgrade(engine) == head_revision()
    assert version_rows(engine) == [head_revision()]


def test_a_database_from_a_newer_asl_is_refused(db_url: str, engines: list[Engine]) -> None:
    engine = connect(db_url)
    engines.append(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    with pytest.raises(StoreError, match=r"ffffffffffff.*upgrade asl"):
        connect(db_url)


# A process that imports store.db, says it is ready, waits for the word, connects, and
# reports the revision it sees and how many tables it created itself.
CONNECT_ON_SIGNAL = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
import store.db

created = []

@event.listens_for(Engine, "before_cursor_execute")
def _count(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created.append(statement)

print("ready", flush=True)
sys.stdin.readline()
engine = store.db.connect(sys.argv[1])
print(json.dumps({"revision": store.db.current_revision(engine), "created": len(created)}),
      flush=True)
engine.dispose()
"""


def test_two_processes_connecting_at_once_migrate_once(db_url: str,
                                                       engines: list[Engine]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-c", CONNECT_ON_SIGNAL, db_url], cwd=REPO,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:  # both have imported everything: only connect() is left to race
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", f"child did not start: {line!r} {proc.stderr.read()}"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        finished = [(*proc.communicate(timeout=120), proc.returncode) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    for _out, err, code in finished:
        assert code == 0, f"connect failed in a child process:\n{err}"
    results = [json.loads(out) for out, _err, _code in finished]
    assert [result["revision"] for result in results] == [head_revision()] * 2
    # exactly one of the two ran the migration; the other found the schema in place
    assert sorted(result["created"] > 0 for result in results) == [False, True]
    engine = connect(db_url, migrate=False)
    engines.append(engine)
    assert version_rows(engine) == [head_revision()]
    assert table_names(engine) == SCHEMA_TABLES | {"alembic_version"}


# ---------------------------------------------------------------- SQLite files


def test_a_read_gives_what_sqlalchemy_gives_and_fails_as_it_fails(
        db_url: str, engines: list[Engine]) -> None:
    """store.db.Read runs a statement past SQLAlchemy's Connection: the same rows, with
    each column converted as SQLAlchemy converts it (JSON decoded), nothing left open,
    and a database error raised as SQLAlchemy raises it."""
    from sqlalchemy import bindparam, select
    from sqlalchemy.exc import DBAPIError

    engine = connect(db_url)
    engines.append(engine)
    table = SQLModel.metadata.tables["pack_draft"]
    files = {"pack.yaml": "name: p\n", "rules/é.yaml": "[]"}
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"name": f"p{i}", "version": str(i), "files": {**files, "n": str(i)},
             "uploaded_by": "ann", "uploaded_at": f"2026-01-0{i}T00:00:00Z"} for i in (1, 2)])
    statement = (select(table).where(table.c.uploaded_by == bindparam("who"))
                 .order_by(table.c.name))
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(statement, {"who": "ann"})]
    read = store.db.Read(statement)
    for _ in range(2):  # compiled once, then reused
        assert read.all(engine, who="ann") == expected
        assert read.first(engine, who="ann") == expected[0]
        assert read.first(engine, who="nobody") is None and read.all(engine, who="x") == []
    assert [row[table.c.keys().index("files")] for row in expected] == [
        {**files, "n": "1"}, {**files, "n": "2"}]
    assert engine.pool.checkedout() == 0
    missing = store.db.Read(select(table.c.name).where(text("no_such_column = 1")))
    with pytest.raises(DBAPIError):
        missing.first(engine)
    assert engine.pool.checkedout() == 0


def test_connect_waits_for_a_writer_on_a_new_sqlite_file(tmp_path: Path,
                                                         engines: list[Engine]) -> None:
    # What a second asl process meets when it opens a new file a first one is writing:
    # the file is still in rollback-journal mode and a write transaction holds it.
    path = tmp_path / "asl.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, writer.execute, ("COMMIT",))
    release.start()
    try:
        engine = connect(f"sqlite:///{path}")  # must wait (busy timeout), not fail
        engines.append(engine)
    finally:
        release.join()
        writer.close()
    assert current_revision(engine) == head_revision()


def test_a_bare_path_opens_a_sqlite_file(tmp_path: Path, engines: list[Engine]) -> None:
    path = tmp_path / "bare.db"
    engine = connect(database_url(str(path)))
    engines.append(engine)
    assert engine.dialect.name == "sqlite"
    assert path.is_file()
    assert current_revision(engine) == head_revision()


def test_sqlite_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(StoreError) as caught:
        connect(f"sqlite:///{missing}/asl.db")
    assert f"directory {missing} does not exist" in str(caught.value)
    assert not (tmp_path / "no").exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory everyone may enter (pytest's tmp_path is private to its owner, and the
    read-only checks below run as `nobody` when we are root)."""
    base = Path(tempfile.mkdtemp(prefix="asl-store-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in (base, *base.rglob("*")):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(base)


def _connect_in_child(url: str, uid: int, gid: int, report: Any) -> None:
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        connect(url).dispose()
        report.send(("connected", ""))
    except BaseException as exc:
        report.send((type(exc).__name__, str(exc)))


def connect_unprivileged(url: str) -> tuple[str, str]:
    """connect(url) as a user that file permissions apply to: ("connected", "") or the
    exception's class name and message.

    root ignores permission bits, so as root the call runs in a forked child that drops to
    `nobody` first. A fork, not `python -c` with subprocess's user=: the interpreter may
    live where `nobody` cannot read it (here, /root/.pyenv); the child needs none of its
    files, as everything connect() would import is imported above."""
    if os.geteuid() != 0:
        try:
            connect(url).dispose()
        except StoreError as exc:
            return ("StoreError", str(exc))
        return ("connected", "")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("running as root, and cannot fork a child to drop to `nobody`: root "
                    "ignores the read-only permission bits under test")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root without a `nobody` user to run the check as: root "
                    "ignores the read-only permission bits under test")
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_connect_in_child,
                        args=(url, nobody.pw_uid, nobody.pw_gid, send))
    child.start()
    send.close()
    try:
        if not receive.poll(120):
            raise AssertionError("the child process connecting as nobody did not report")
        return receive.recv()
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()


def test_sqlite_in_a_read_only_directory_is_refused(shared_dir: Path) -> None:
    read_only = shared_dir / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    database = read_only / "asl.db"

    kind, message = connect_unprivileged(f"sqlite:///{database}")

    assert kind == "StoreError", message
    assert f"directory {read_only} is read-only" in message
    assert list(read_only.iterdir()) == []


def test_existing_sqlite_file_in_a_read_only_directory_is_refused(shared_dir: Path) -> None:
    # SQLite writes its -wal and -shm files beside the database: a writable file is not
    # enough when the directory is read-only.
    read_only = shared_dir / "read-only"
    read_only.mkdir()
    database = read_only / "asl.db"
    connect(f"sqlite:///{database}").dispose()
    before = sorted(read_only.iterdir())
    database.chmod(0o666)
    read_only.chmod(0o555)

    kind, message = connect_unprivileged(f"sqlite:///{database}")

    assert kind == "StoreError", message
    assert f"directory {read_only} is read-only" in message
    assert sorted(read_only.iterdir()) == before


# ---------------------------------------------------------------- PostgreSQL only


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        connect("postgresql://asl:s3cret@127.0.0.1:1/asl")
    assert "127.0.0.1" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_missing_postgresql_database_is_a_store_error(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/asl_no_such_database"
    with pytest.raises(StoreError, match="asl_no_such_database"):
        connect(missing)


# ---------------------------------------------------------------- which URL


def test_database_url_defaults_to_asl_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_url(None) == DEFAULT_URL == "sqlite:///asl.db"


def test_database_url_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "postgresql://asl@db.example/asl")
    assert database_url(None) == "postgresql://asl@db.example/asl"
    assert database_url("sqlite:///other.db") == "sqlite:///other.db"  # the option wins


@pytest.mark.parametrize(("given", "url"), [
    ("asl.db", "sqlite:///asl.db"),
    ("data/asl.db", "sqlite:///data/asl.db"),
    ("/srv/asl/asl.db", "sqlite:////srv/asl/asl.db"),
])
def test_a_bare_path_is_a_sqlite_url(given: str, url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_url(given) == url
    monkeypatch.setenv(ENV_VAR, given)
    assert database_url(None) == url


# ---------------------------------------------------------------- writers' turns (SQLite)


def test_a_writers_turn_is_had_by_one_open_file_at_a_time(tmp_path: Path) -> None:
    database = str(tmp_path / "asl.db")
    first = turns.take(database, timeout=0)
    assert first is not None and Path(turns.lock_path(database)).is_file()
    try:
        assert turns.take(database, timeout=0.05) is None  # held
    finally:
        turns.give_back(first)
    # the wait given up on above took the turn once it was given back, and gave it
    # back at once: it is had again
    second = turns.take(database, timeout=30)
    assert second is not None
    turns.give_back(second)


def test_a_sqlite_writer_holds_the_turn_for_its_transaction_and_no_longer(
        tmp_path: Path, engines: list[Engine]) -> None:
    """Across processes (and open files), one asl writer at a time: while a transaction
    `begin()` opened is open, the turn is taken; once it ends, free."""
    engine = connect(f"sqlite:///{tmp_path}/asl.db")
    engines.append(engine)
    database = str(tmp_path / "asl.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert turns.take(database, timeout=0) is None
    fd = turns.take(database, timeout=30)
    assert fd is not None
    turns.give_back(fd)


def test_a_writer_waits_for_the_turn_another_holds(tmp_path: Path,
                                                   engines: list[Engine]) -> None:
    engine = connect(f"sqlite:///{tmp_path}/asl.db")
    engines.append(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    held = turns.take(str(tmp_path / "asl.db"), timeout=0)
    assert held is not None
    entered = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            entered.set()
            conn.execute(text("INSERT INTO t VALUES (1)"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not entered.wait(0.3)  # not before the turn is given back
    finally:
        turns.give_back(held)
    writer.join(timeout=60)
    assert entered.is_set()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_a_writer_without_a_lock_file_relies_on_sqlite_alone(
        tmp_path: Path, engines: list[Engine]) -> None:
    Path(turns.lock_path(str(tmp_path / "asl.db"))).mkdir()  # cannot be opened as a file
    engine = connect(f"sqlite:///{tmp_path}/asl.db")  # which writes (its migration)
    engines.append(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
