"""Stored assessments posted at once by many clients to two workers, on SQLite and on
PostgreSQL: every one stored once and newest for its model, every answer naming its own
decision-log entry, and the log's chain intact (`asl audit verify`), however the
workers' writes were grouped into transactions (store.group_commit) and took turns."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from service_server import Server, run_asl, start_server
from service_server import module_database as module_database  # the fixture

from store import audit
from store.db import connect
from store.record import Store

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 12
PER_CLIENT = 5


@pytest.fixture(scope="module")
def two_workers(module_database: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log",
                           "--workers", "2", "--rate-limit", "0")
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


def documents() -> list[dict]:
    """Distinct models: the example, renamed, its compute varied."""
    example = yaml.safe_load(
        (REPO / "examples" / "asl2-comprehensive-all-clear.yaml").read_text())
    made = []
    for i in range(CLIENTS * PER_CLIENT):
        document = yaml.safe_load(yaml.safe_dump(example))
        document["model"]["id"] = f"concurrent-{i:03d}"
        document["model"]["effective_compute_flop"] = 8.0e25 + i * 1e23
        made.append(document)
    return made


def test_stored_assessments_posted_at_once_are_each_stored_and_logged(
        two_workers: Server) -> None:
    made = documents()
    answers: dict[str, dict] = {}
    failures: list[str] = []
    token = two_workers.token("analyst")

    def client(part: list[dict]) -> None:
        try:
            with httpx.Client(base_url=two_workers.url, timeout=120,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                for document in part:
                    answer = http.post("/v1/assess?store=true",
                                       content=yaml.safe_dump(document),
                                       headers={"Content-Type": "application/yaml"})
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text}")
                        continue
                    answers[document["model"]["id"]] = answer.json()
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(made[c::CLIENTS],))
               for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert failures == []
    assert len(answers) == len(made)
    assert len({a["decision_id"] for a in answers.values()}) == len(made)

    engine = connect(two_workers.db_url)
    try:
        store = Store(engine)
        newest = store.latest(answers)
        assert sorted(newest) == sorted(answers)
        for model in answers:
            assert len(store.history(model)) == 1
        logged = {d.decision_id: d for d in audit.entries(engine)}
        assert all(logged[a["decision_id"]].action == "assess" for a in answers.values())
    finally:
        engine.dispose()
    verified = run_asl("audit", "verify", "--db", two_workers.db_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
