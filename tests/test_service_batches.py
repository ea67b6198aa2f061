"""Batches over real HTTP (`POST /v1/batches`, `GET /v1/batches/{id}`, `POST
/v1/batches/{id}/resume`): run in the background by the existing batch runner, progress
and summary from the database, and a server killed mid-batch leaves the batch failed
and resumable with whole results only, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from service_server import Server, run_asl, start_server
from service_server import module_database as module_database  # the fixture
from sqlalchemy import text

from cli.main import main
from service.batches import compress
from store import audit
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
GAP = REPO / "examples" / "security-gap-pause.yaml"
JSONL = {"Content-Type": "application/jsonl"}
STALE = "5"


def portfolio(count: int, prefix: str) -> bytes:
    """`count` copies of one example document, each its own model, as JSON Lines."""
    document = json.loads(json.dumps(yaml.safe_load(GAP.read_text()), default=str))
    lines = []
    for number in range(count):
        document["model"]["id"] = f"{prefix}-{number}"
        lines.append(json.dumps(document))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log",
                           "--batch-stale", STALE)
    yield running
    running.stop()


def wait_for(server: Server, batch_id: int, states: tuple[str, ...], timeout: float = 240
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with server.client("analyst") as analyst:
        while time.monotonic() < deadline:
            found = analyst.get(f"/v1/batches/{batch_id}").json()
            if found["state"] in states:
                return dict(found)
            time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} never reached {states}: {found}")


def query(server: Server, sql: str) -> int:
    engine = connect(server.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_a_batch_runs_in_the_background_and_reports_its_summary(server: Server) -> None:
    body = portfolio(6, "bg") + b"{not json\n"
    with server.client("analyst") as analyst:
        queued = analyst.post("/v1/batches", content=body, headers=JSONL)
        assert queued.status_code == 202, queued.text
        assert queued.json()["decision_id"]
        finished = wait_for(server, queued.json()["id"], ("done", "failed"))
        stored = analyst.get("/v1/models/bg-3").json()
    assert finished["state"] == "done", finished
    assert (finished["done"], finished["total"]) == (6, 6)
    summary = finished["summary"]
    assert (summary["assessed"], summary["skipped"], summary["rejected"]) == (6, 0, 1)
    assert summary["errors"][0]["path"] == "line 7"
    # What the batch stored is what `asl assess` gives for the same document.
    document = json.loads(portfolio(4, "bg").splitlines()[3])
    result = CliRunner().invoke(main, ["assess", "-", "--format", "json"],
                                input=json.dumps(document), catch_exceptions=False)
    assert stored == json.loads(result.output)


def test_batch_requests_refused(server: Server) -> None:
    with server.client("analyst") as analyst:
        assert analyst.post("/v1/batches", content=b"a", headers={
            "Content-Type": "text/csv"}).status_code == 415
        assert analyst.post("/v1/batches", content=b"", headers=JSONL).status_code == 400
        assert analyst.get("/v1/batches/999999").status_code == 404
        assert analyst.post("/v1/batches/999999/resume").status_code == 404
    with server.client("viewer") as viewer:
        assert viewer.post("/v1/batches", content=portfolio(1, "v"),
                           headers=JSONL).status_code == 403


def log_after(server: Server, decision_id: str) -> list[audit.Decision]:
    """The decision-log entries from the one with `decision_id` on."""
    engine = connect(server.db_url)
    try:
        found = list(audit.entries(engine))
    finally:
        engine.dispose()
    start = next(i for i, e in enumerate(found) if e.decision_id == decision_id)
    return found[start:]


def failed_result(batch_id: int, run: int | None, status: dict[str, Any]) -> str:
    """The result hash of the `batch.finish` entry of a batch marked failed."""
    return audit.sha256_of({"batch": batch_id, "run": run, "state": "failed",
                            "done": status["done"], "total": status["total"]})


def test_a_batch_whose_runner_stopped_heartbeating_is_logged_as_finished(
        server: Server) -> None:
    """The stale check that marks a running batch failed appends its batch.finish
    entry in the same transaction: here a batch left running, by a runner long gone,
    before it started a run (so no pack is named)."""
    server.token("analyst")  # its token.create entry first
    engine = connect(server.db_url)
    try:
        [head] = audit.recent(engine, 1)
        with engine.begin() as conn:
            batch_id = int(conn.execute(text(
                "INSERT INTO service_batch (state, submitted_by, submitted_at, format, body, "
                "done, total, heartbeat_at) VALUES ('running', 'ana', "
                "'2020-01-02T06:00:00Z', 'jsonl', :body, 3, 10, '2020-01-02T06:00:01Z') "
                "RETURNING id"), {"body": compress(b"{}\n")}).scalar_one())
    finally:
        engine.dispose()
    with server.client("analyst") as analyst:
        status = wait_for(server, batch_id, ("failed",), timeout=30)
        assert analyst.get(f"/v1/batches/{batch_id}").json() == status  # logged once
    assert "runner stopped" in status["error"] and status["resumable"]
    logged = [e for e in log_after(server, head.decision_id)[1:]
              if e.input_sha256 == audit.sha256_of({"batch": batch_id})]
    assert [(e.action, e.actor, e.role, e.pack, e.pack_version) for e in logged] == [
        ("batch.finish", "ana", "analyst", None, None)]
    assert logged[0].result_sha256 == failed_result(batch_id, None, status)


def test_a_server_killed_mid_batch_leaves_it_failed_and_resumable(
        server: Server, tmp_path: Path) -> None:
    count = 300
    with server.client("analyst") as analyst:
        queued = analyst.post("/v1/batches", content=portfolio(count, "kill"),
                              headers=JSONL).json()
        batch_id = queued["id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with server.client("analyst") as analyst:
            found = analyst.get(f"/v1/batches/{batch_id}").json()
        if found["state"] == "running" and found["done"] > 0:
            break
        time.sleep(0.05)
    assert found["state"] == "running" and found["done"] < count, found
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    restarted = start_server(server.db_url, tmp_path / "serve.log", "--batch-stale", STALE)
    try:
        restarted.tokens = server.tokens
        failed = wait_for(restarted, batch_id, ("failed",), timeout=60)
        assert failed["resumable"] and "resume" in failed["error"]
        # Found at start-up, and logged as the end of the run it started: submit, start,
        # then the finish that says it failed, with the run's pack.
        run = query(restarted, f"SELECT batch_run_id FROM service_batch WHERE id = {batch_id}")
        logged = [e for e in log_after(restarted, queued["decision_id"])
                  if e.action.startswith("batch.")]
        assert [e.action for e in logged] == ["batch.submit", "batch.start", "batch.finish"]
        submitted, started, finished = logged
        assert started.result_sha256 == audit.sha256_of({"batch": run})
        assert (finished.actor, finished.role, finished.pack, finished.pack_version) == (
            started.actor, "analyst", started.pack, started.pack_version)
        assert finished.pack == "rsp-2.1" and finished.actor == submitted.actor
        assert finished.input_sha256 == audit.sha256_of({"batch": batch_id})
        assert finished.result_sha256 == failed_result(batch_id, run, failed)
        # Whole results only: every stored assessment has its result, graph and rules.
        assert query(restarted, "SELECT count(*) FROM assessment WHERE length(result) = 0 "
                     "OR length(provenance) = 0 OR length(fired) = 0") == 0
        kept = query(restarted, "SELECT count(*) FROM assessment "
                     "WHERE model_id LIKE 'kill-%'")
        assert 0 < kept < count
        with restarted.client("analyst") as analyst:
            assert analyst.post(f"/v1/batches/{batch_id}/resume").status_code == 202
            assert analyst.post(f"/v1/batches/{batch_id}/resume").status_code == 409
        done = wait_for(restarted, batch_id, ("done", "failed"))
        assert done["state"] == "done", done
        assert done["summary"]["skipped"] == kept
        assert done["summary"]["assessed"] == count - kept
        assert query(restarted, "SELECT count(*) FROM assessment "
                     "WHERE model_id LIKE 'kill-%'") == count
        assert [e.action for e in log_after(restarted, queued["decision_id"])
                if e.action.startswith("batch.")][3:] == [
            "batch.resume", "batch.start", "batch.finish"]
        assert run_asl("audit", "verify", "--db", restarted.db_url).returncode == 0
    finally:
        restarted.stop()
