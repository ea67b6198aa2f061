"""Running the real service for tests: `asl serve` as a subprocess on a free loopback
port, called with httpx, and tokens made through the store as `asl tokens create`
makes them.

`module_database` gives a test module its own database (a SQLite file, or a fresh
database on the session's throwaway PostgreSQL server), so a server started once per
module is shared by that module's tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from store import tokens
from store.db import connect

ASL = str(Path(sys.executable).with_name("asl"))
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_asl(*args: str, env: dict[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    """`asl ARGS...` as a subprocess, output captured."""
    return subprocess.run([ASL, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, **(env or {})}, cwd=REPO)


@dataclass
class Server:
    """A running `asl serve`."""

    db_url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, role: str | None = None, token: str | None = None) -> httpx.Client:
        """A client sending the token of `role` (made on first use) or `token`."""
        if role is not None:
            token = self.token(role)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def token(self, role: str, person: str | None = None) -> str:
        """A live token of `role` held by `person` (default: a person per role)."""
        key = f"{role}:{person}"
        if key not in self.tokens:
            self.tokens[key] = make_token(self.db_url, role, person or f"{role}-person")
        return self.tokens[key]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, and the exit status once it has shut down."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def make_token(db_url: str, role: str, person: str, expires_days: int | None = None) -> str:
    engine = connect(db_url)
    try:
        text, _ = tokens.create(engine, f"t-{uuid.uuid4().hex[:10]}", role, person,
                                expires_days)
    finally:
        engine.dispose()
    return text


def start_server(db_url: str, log: Path, *options: str, env: dict[str, str] | None = None
                 ) -> Server:
    """Start `asl serve --db db_url OPTIONS` and wait until /health answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([ASL, "serve", "--db", db_url, "--port", str(port), *options],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **(env or {})})
    server = Server(db_url, port, proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"asl serve exited with {proc.returncode}:\n{server.log_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code in (200, 503):
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"asl serve did not answer in {START_TIMEOUT_S} s:\n{server.log_text()}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[str]:
    """A new, empty database for one test module, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('service')}/asl.db"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"asl_service_{uuid.uuid4().hex[:12]}"
    with server.connect_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with server.connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """`asl serve` on the module's database, with the default options; stopped cleanly at
    the end of the module (a module that needs options or stored data has its own)."""
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log")
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


def cli_json(*args: str) -> Any:
    """What an `asl` command prints as JSON, run in-process; it must succeed."""
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)



def assert_explained_like_cli(client: httpx.Client, model: str, evidence: Path,
                              framework: str, edit: str, query: str = "") -> None:
    """The service's why-not (target `decision=proceed`) and what-if (`--set edit`) of a
    stored `model` answer exactly what `asl why-not` / `asl what-if --framework` print for
    its `evidence` file (the what-if also names the decision-log entry it made); `query`
    is appended to both URLs (e.g. `?framework=...`)."""
    why_not = cli_json("why-not", str(evidence), "decision=proceed", "--framework", framework,
                       "--format", "json")
    what_if = cli_json("what-if", str(evidence), "--set", edit, "--framework", framework,
                       "--format", "json")
    explained = client.post(f"/v1/models/{model}/why-not{query}",
                            json={"target": "decision=proceed"})
    edited = client.post(f"/v1/what-if{query}", json={"model": model, "set": [edit]})
    assert explained.status_code == 200, explained.text
    assert explained.json() == why_not
    assert edited.status_code == 200, edited.text
    answer = edited.json()
    assert answer.pop("decision_id")
    assert answer == what_if

def data_of(path: Path) -> Any:
    """A YAML evidence file as JSON data (dates as the strings they are written as)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def problem(response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of a refused request, checked: its status, its media type,
    the required members, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return dict(body)
