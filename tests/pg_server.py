"""A throwaway PostgreSQL server for the store tests, and the `db_url` fixture that runs one
test on both backends.

`postgres_server` (session scope) runs Debian's server binaries: `initdb` into a fresh
directory under the temp dir (trust authentication, UTF8, no fsync), then `pg_ctl start`
listening on 127.0.0.1 at a free port, with its unix socket inside that directory; at the
end of the session `pg_ctl stop -m immediate` and the directory is removed. The binaries
are looked up with `pg_config --bindir`, then in /usr/lib/postgresql/<newest>/bin, then
on PATH.

initdb and postgres refuse to run as root, and CI runs as root. So when we are root the
directory is handed to the `postgres` system user (or `nobody` if there is none) and the
binaries run under that user through subprocess's `user=`/`group=`. That is why the
`postgresql_proc` fixture of pytest-postgresql is not used: it runs initdb and pg_ctl as
the current user and so cannot start a server as root.

Without the binaries, tests that need the server are skipped with a reason that says how
to get them. If the binaries are there but the server does not start, the tests error
with the tail of the server's log: a broken server must not pass as a skip.

`postgres_url` (function scope) is a fresh, empty database per test, dropped afterwards.
`db_url` is parametrized over sqlite and postgresql, so a store test taking it runs on
both.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = ("PostgreSQL server binaries not found (install Debian's postgresql package; "
               ".ci/run does)")
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT_S = 60
LOG_TAIL_LINES = 30

# Appended to postgresql.conf: reachable only from this machine, and no durability (a test
# server is thrown away, so fsync buys nothing but seconds).
SERVER_CONF = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
log_min_messages = warning
lc_messages = 'C'
"""


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in SERVER_PROGRAMS)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when there is none."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout.strip()
            if out:
                candidates.append(Path(out))
    # Debian installs the server outside PATH; libpq-dev's pg_config may name another
    # version than the installed server, so look there as well.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key,
                         reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return next((bindir for bindir in candidates if _has_server(bindir)), None)


@dataclass
class PostgresServer:
    """A running server: connect as `user` (the superuser, trust auth) to host:port."""

    bindir: Path
    base: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    startup_seconds: float = 0.0  # initdb and start, as measured by the fixture

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def cpu_seconds(self) -> float:
        """CPU seconds the server has used: its postmaster (with the backends it has
        reaped) and the processes it runs now (for benchmarks: its share of a run)."""
        postmaster = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        ticks = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(name) == postmaster:
                ticks += sum(int(x) for x in fields[11:15])  # own and reaped children's
            elif int(fields[1]) == postmaster:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def connect_admin(self) -> Any:
        """A psycopg autocommit connection to the maintenance database."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               dbname="postgres", autocommit=True, connect_timeout=10)


class ServerStartError(Exception):
    """The binaries are there but the server did not start."""


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to an unprivileged user (nothing otherwise)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise ServerStartError("running as root, and neither a `postgres` nor a `nobody` user "
                           "exists to run initdb and postgres as")


def _server_env() -> dict[str, str]:
    """The environment without PG* variables that would redirect the binaries, in the C
    locale (which always exists)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _run(args: list[str], base: Path, as_user: dict[str, Any]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=base, env=_server_env(), capture_output=True, text=True,
                          timeout=START_TIMEOUT_S + 30, check=False, **as_user)


def start_server(bindir: Path) -> PostgresServer:
    """initdb and start a server in a new temp directory; ServerStartError (the directory
    removed) if that fails."""
    as_user = _run_as()
    # Directly under the temp dir, not pytest's tmp_path: that is private to root, and the
    # socket path (socket/.s.PGSQL.<port> below base) must stay under about 100 bytes.
    parent = tempfile.gettempdir()
    base = Path(tempfile.mkdtemp(prefix="asl-pg-", dir=parent if len(parent) < 60 else "/tmp"))
    try:
        (base / "socket").mkdir()
        if as_user:
            for path in (base, base / "socket"):
                os.chown(path, as_user["user"], as_user["group"])
        initdb = _run([str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres",
                       "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"], base, as_user)
        if initdb.returncode != 0:
            raise ServerStartError(f"initdb failed (exit {initdb.returncode}):\n"
                                   f"{initdb.stdout}{initdb.stderr}".rstrip())
        server = PostgresServer(bindir=bindir, base=base, port=0)
        with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(SERVER_CONF.format(socket_dir=server.socket_dir))
        for _attempt in range(3):  # another process may take the free port before us
            server.port = _free_port()
            result = _run([str(bindir / "pg_ctl"), "start", "-D", str(server.data_dir),
                           "-l", str(server.log_file), "-w", "-t", str(START_TIMEOUT_S),
                           "-o", f"-p {server.port}"], base, as_user)
            if result.returncode == 0:
                return server
            log = _tail(server.log_file)
            if "could not bind" not in log and "already in use" not in log:
                break
        raise ServerStartError(f"pg_ctl start failed (exit {result.returncode}):\n"
                               f"{result.stdout}{result.stderr}".rstrip()
                               + f"\n--- tail of {server.log_file} ---\n{log}")
    except BaseException:
        stop_server(bindir, base, as_user)
        raise


def stop_server(bindir: Path, base: Path, as_user: dict[str, Any] | None = None) -> None:
    """Stop the server (if it runs) at once and remove its directory."""
    if as_user is None:
        as_user = _run_as()
    if (base / "data" / "postmaster.pid").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _run([str(bindir / "pg_ctl"), "stop", "-D", str(base / "data"), "-m", "immediate",
                  "-w"], base, as_user)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skips when there are no binaries)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    started = time.perf_counter()
    try:
        server = start_server(bindir)
    except ServerStartError as exc:
        failure = f"PostgreSQL server from {bindir} did not start: {exc}"
    else:
        failure = ""
    if failure:  # an error, not a skip: the binaries are there, so the server must start
        pytest.fail(failure, pytrace=False)
    server.startup_seconds = time.perf_counter() - started
    try:
        yield server
    finally:
        stop_server(bindir, server.base)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """postgresql://postgres@127.0.0.1:PORT/DBNAME of a new, empty database, dropped after
    the test (with FORCE, so connections the test left open do not keep it)."""
    name = f"asl_test_{uuid.uuid4().hex[:16]}"
    with postgres_server.connect_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with postgres_server.connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database: a SQLite file in tmp_path, or a PostgreSQL
    database on the session's server (skipped, like postgres_url, without binaries)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/asl.db"
    return request.getfixturevalue("postgres_url")
