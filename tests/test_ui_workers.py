"""The web UI under `asl serve --workers 2`, on SQLite and PostgreSQL: a session made by
one worker is honoured on every request, whichever worker answers it (sessions are in
the database, store.ui_tables), and ends everywhere at logout or when its token is
revoked. And the newest-assessment table the model list reads (kept by a trigger) agrees
with the record, whichever writer stored the assessments."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from service_server import Server, make_token, run_asl, start_server
from service_server import module_database as module_database  # the fixture

from store import tokens
from store.db import connect

REQUESTS = 40  # each on a new connection, so the kernel deals them to both workers


@pytest.fixture(scope="module")
def two_workers(module_database: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    stored = run_asl("batch", "examples", "--db", module_database)
    assert stored.returncode == 0, stored.stderr
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log",
                           "--workers", "2")
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(server: Server, token: str) -> dict[str, str]:
    """Log in through the form; the cookies the browser then holds."""
    form = httpx.get(f"{server.url}/ui/login")
    response = httpx.post(f"{server.url}/ui/login", cookies=form.cookies,
                          data={"token": token, "csrf": _csrf(form.text)},
                          headers={"Origin": server.url})
    assert response.status_code == 303 and response.headers["location"] == "/ui/models"
    return {"asl_session": response.cookies["asl_session"]}


def _status(server: Server, path: str, cookies: dict[str, str]) -> int:
    """The status of one GET on a connection of its own (no redirect followed)."""
    return httpx.get(f"{server.url}{path}", cookies=cookies).status_code


def test_a_session_made_by_one_worker_works_on_every_request(two_workers: Server) -> None:
    cookies = [_login(two_workers, two_workers.token("viewer")) for _ in range(3)]
    paths = ("/ui/models", "/ui/models/larkspur-kite-4", "/ui/rules", "/ui/models?asl=ASL-3")
    statuses = [_status(two_workers, paths[i % len(paths)], cookies[i % len(cookies)])
                for i in range(REQUESTS)]
    assert statuses == [200] * REQUESTS


def test_logout_and_revocation_end_the_session_on_every_worker(two_workers: Server) -> None:
    cookie = _login(two_workers, two_workers.token("analyst", "lou"))
    page = httpx.get(f"{two_workers.url}/ui/models", cookies=cookie)
    logout = httpx.post(f"{two_workers.url}/ui/logout", cookies=cookie,
                        data={"csrf": _csrf(page.text)}, headers={"Origin": two_workers.url})
    assert logout.status_code == 303
    assert {_status(two_workers, "/ui/models", cookie) for _ in range(12)} == {303}

    token = make_token(two_workers.db_url, "viewer", "rev")
    cookie = _login(two_workers, token)
    assert {_status(two_workers, "/ui/models", cookie) for _ in range(6)} == {200}
    engine = connect(two_workers.db_url)
    try:
        name = next(t.name for t in tokens.list_tokens(engine) if token.startswith(
            f"asl_{t.id}_"))
        tokens.revoke(engine, name)
    finally:
        engine.dispose()
    assert {_status(two_workers, "/ui/models", cookie) for _ in range(12)} == {303}


def test_the_newest_assessment_table_agrees_with_the_record(two_workers: Server) -> None:
    # A second assessment of one model (the service's own write path) moves its marker.
    client = two_workers.client("analyst")
    with open("examples/security-gap-pause.yaml", "rb") as evidence:
        body = evidence.read().replace(b"status: partial", b"status: implemented")
    response = client.post("/v1/assess?store=true", content=body,
                           headers={"Content-Type": "application/yaml"})
    assert response.status_code in (200, 201), response.text
    engine = connect(two_workers.db_url)
    try:
        with engine.connect() as conn:
            marked = conn.exec_driver_sql(
                "SELECT model_id, assessment_id, level, decision, framework, assessed_at "
                "FROM assessment_latest ORDER BY model_id").all()
            newest = conn.exec_driver_sql(
                "SELECT model_id, id, level, decision, framework, assessed_at FROM assessment "
                "WHERE id IN (SELECT max(id) FROM assessment GROUP BY model_id) "
                "ORDER BY model_id").all()
            counted = conn.exec_driver_sql(
                "SELECT count(*) FROM assessment WHERE model_id = 'larkspur-kite-4'"
            ).scalar_one()
    finally:
        engine.dispose()
    assert marked == newest and len(marked) >= 10
    assert counted >= 2
