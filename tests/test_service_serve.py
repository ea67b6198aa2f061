"""`asl serve` as a process: it refuses a database it cannot use with one line, finishes
a request in flight when stopped, spreads connections over its workers, shares
revocations across workers, limits the rate
per token, and answers /health with 503 when the database goes away."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from pg_server import PostgresServer
from service_server import run_asl, start_server

from store import audit, packs
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
ACME = REPO / "examples" / "packs" / "acme-lab"


def test_an_unusable_database_is_refused_with_one_line(tmp_path: Path) -> None:
    missing = run_asl("serve", "--db", str(tmp_path / "no-such-dir" / "asl.db"))
    assert missing.returncode == 2
    assert missing.stderr == (f"asl: cannot use database sqlite:///{tmp_path}/no-such-dir/"
                              f"asl.db: directory {tmp_path}/no-such-dir does not exist\n")
    unreachable = run_asl("serve", "--db", "postgresql://nobody@127.0.0.1:1/asl")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("asl: cannot use database postgresql://")
    assert len(unreachable.stderr.splitlines()) == 1 and "Traceback" not in unreachable.stderr
    bad = run_asl("serve", "--rate-limit", "fast", "--db", str(tmp_path / "asl.db"))
    assert bad.returncode == 2 and "--rate-limit" in bad.stderr


def test_a_stop_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/asl.db"
    server = start_server(db, tmp_path / "serve.log")
    token = server.token("rule-author")
    body = json.dumps({"files": packs.read_pack_files(ACME)}).encode()
    release = threading.Event()
    outcome: dict[str, httpx.Response | BaseException] = {}

    def slowly() -> Iterator[bytes]:
        yield body[:100]
        release.wait(30)
        yield body[100:]

    def upload() -> None:
        try:
            outcome["response"] = httpx.put(
                f"{server.url}/v1/packs/acme-lab", content=slowly(), timeout=120,
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"})
        except BaseException as exc:  # reported by the assertion below
            outcome["response"] = exc

    client = threading.Thread(target=upload)
    client.start()
    time.sleep(1.0)  # the request is in: its body is half sent
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    release.set()
    client.join(120)
    status = server.proc.wait(60)
    response = outcome["response"]
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 201, response.text
    assert status in (0, -signal.SIGTERM)
    assert "Shutting down" in server.log_text() and "Traceback" not in server.log_text()
    engine = connect(db)
    try:
        with engine.connect() as conn:
            assert [p.version for p in packs.drafts(conn)] == [response.json()["version"]]
        assert [e.action for e in audit.entries(engine)][-1] == "pack.upload"
    finally:
        engine.dispose()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=5)


def test_connections_made_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT). On the one socket
    uvicorn shares, the worker that woke first took every connection waiting: 32
    keep-alive clients connecting at once all went to one worker."""
    db = f"sqlite:///{tmp_path}/asl.db"
    server = start_server(db, tmp_path / "serve.log", "--workers", "2")
    deadline = time.monotonic() + 120  # both listening: start_server waits for one
    while server.log_text().count("Application startup complete.") < 2:
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)
    request = (f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
               f"{server.token('viewer')}\r\n\r\n").encode()
    # all connected (in the kernel's accept queues) before any worker accepts one
    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
    try:
        for connection in connections:
            connection.sendall(request)
        for connection in connections:
            connection.settimeout(60)
            assert connection.recv(12) == b"HTTP/1.1 200"
        held = {worker.pid: sum(1 for c in worker.net_connections("tcp")
                                if c.status == psutil.CONN_ESTABLISHED
                                and c.laddr.port == server.port)
                for worker in psutil.Process(server.proc.pid).children()}
        # 16 connections hashed over 2 sockets: all on one has a chance of 2 in 65,536
        assert sum(held.values()) == 16
        assert sum(1 for count in held.values() if count) == 2, held
    finally:
        for connection in connections:
            connection.close()
        assert server.stop() in (0, -signal.SIGTERM)


def test_workers_share_revocation(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/asl.db"
    server = start_server(db, tmp_path / "serve.log", "--workers", "2")
    try:
        token = server.token("viewer", "henry")

        def statuses(count: int) -> list[int]:  # a new connection each: either worker
            return [httpx.get(f"{server.url}/v1/models", timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).status_code
                    for _ in range(count)]

        assert set(statuses(12)) == {200}
        names = json.loads(run_asl("tokens", "list", "--format", "json", "--db", db).stdout)
        name = next(t["name"] for t in names if t["id"] == token[4:20])
        assert run_asl("tokens", "revoke", name, "--db", db).returncode == 0
        assert set(statuses(12)) == {401}
    finally:
        assert server.stop() in (0, -signal.SIGTERM)


def test_too_many_requests_get_429_with_retry_after(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/asl.db"
    server = start_server(db, tmp_path / "serve.log", "--rate-limit", "5/60")
    try:
        with server.client("viewer") as busy, server.client("admin") as other:
            answers = [busy.get("/v1/packs") for _ in range(7)]
            assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
            limited = answers[-1]
            assert limited.headers["content-type"] == "application/problem+json"
            assert 1 <= int(limited.headers["retry-after"]) <= 12
            assert other.get("/v1/packs").status_code == 200  # limits are per token
            assert httpx.get(f"{server.url}/health").status_code == 200  # no token, no limit
    finally:
        server.stop()


def test_health_is_503_when_the_database_goes_away(postgres_server: PostgresServer,
                                                   tmp_path: Path) -> None:
    name = "asl_health_503"
    with postgres_server.connect_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = start_server(postgres_server.url(name), tmp_path / "serve.log")
    try:
        with server.client("viewer") as client:
            assert client.get("/v1/models").status_code == 200
            with postgres_server.connect_admin() as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            health = httpx.get(f"{server.url}/health", timeout=30)
            assert health.status_code == 503
            assert health.json() == {"status": "unavailable", "db": "unavailable",
                                     "packs": []}
            failed = client.get("/v1/models")  # the token cannot be read either
            assert failed.status_code == 503
            assert failed.headers["content-type"] == "application/problem+json"
            assert failed.headers["retry-after"] == "5"
            assert "Traceback" not in failed.text
    finally:
        server.stop()
        with postgres_server.connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
