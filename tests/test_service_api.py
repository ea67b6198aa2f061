"""The service's read endpoints, authentication and roles, over real HTTP: `asl serve` on
a loopback port (tests/service_server.py) on a database `asl batch` filled, on SQLite
and PostgreSQL. What the service answers is compared with what the CLI prints for the
same stored assessments."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from service_server import Server, make_token, problem, run_asl, start_server
from service_server import module_database as module_database  # the fixture
from sqlalchemy import text

from batch.stack import layer_version
from cli.main import main
from store import audit, packs
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
V1_READS = ["/v1/models", "/v1/models/larkspur-kite-4", "/v1/models/larkspur-kite-4/history",
            "/v1/models/larkspur-kite-4/why", "/v1/rules", "/v1/rules/requirements.highest",
            "/v1/packs", "/v1/decisions"]


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    stored = run_asl("batch", str(EXAMPLES), str(EXAMPLES / "portfolio" / "lineage.yaml"),
                     "--db", module_database)
    assert stored.returncode == 0, stored.stderr
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log")
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def cli_json(*args: str) -> Any:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- health, openapi, headers --------------------------------------------------------------


def test_health_needs_no_token_and_names_the_active_packs(server: Server) -> None:
    with server.client() as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["db"] == "ok"
    [base] = body["packs"]
    builtin = REPO / "rules" / "rsp-2.1"
    assert base == {"name": "rsp-2.1",
                    "version": packs.files_version(packs.read_pack_files(builtin))}
    # Each result records the hash of the pack's rules (its tests play no part in it).
    stored = cli_json("list", "--format", "json", "--db", server.db_url)[0]["pack_stack"]
    assert stored == [{"name": "rsp-2.1", "version": layer_version(builtin)}]


def test_openapi_describes_every_endpoint(server: Server) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for path in ("/health", "/v1/models", "/v1/models/{model}", "/v1/models/{model}/history",
                 "/v1/models/{model}/why", "/v1/rules", "/v1/rules/{rule_id}", "/v1/packs",
                 "/v1/packs/{name}", "/v1/packs/{name}/activate", "/v1/decisions"):
        assert path in document["paths"], path
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    put = document["paths"]["/v1/packs/{name}"]["put"]
    assert "files" in put["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_security_headers_on_every_response(server: Server) -> None:
    with server.client("viewer") as client, server.client() as anonymous:
        responses = [anonymous.get("/health"), anonymous.get("/openapi.json"),
                     anonymous.get("/v1/models"), client.get("/v1/models"),
                     client.get("/v1/models/no-such-model"), client.get("/v1/nowhere"),
                     client.get("/v1/decisions"), client.get("/v1/models?limit=0"),
                     client.post("/v1/models")]
    assert [r.status_code for r in responses] == [200, 200, 401, 200, 404, 404, 403, 422, 405]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert "server" not in response.headers


# --- authentication and roles ----------------------------------------------------------------


@pytest.mark.parametrize("path", V1_READS)
def test_v1_needs_a_live_bearer_token(server: Server, path: str) -> None:
    wrong = server.token("viewer")[:-2] + "xx"
    for headers in ({}, {"Authorization": f"Bearer {wrong}"},
                    {"Authorization": "Bearer asl_nonsense"},
                    {"Authorization": f"Basic {server.token('admin')}"},
                    {"Cookie": f"session={server.token('admin')}"}):
        with server.client() as client:
            response = client.get(path, headers=headers)
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


# Paths no endpoint has, and methods an endpoint does not take.
V1_UNMATCHED = [("GET", "/v1/nonexistent", 404), ("DELETE", "/v1/models", 405),
                ("GET", "/v1", 404), ("GET", "/v1/", 404), ("PUT", "/v1/models/x/history", 405),
                ("GET", "/v1/packs/acme-lab/activate", 405), ("POST", "/v1/models/x/y/z", 404)]


def test_a_path_or_method_no_v1_endpoint_has_is_401_without_a_live_token(
        server: Server) -> None:
    """Before 404 or 405, the token every /v1/ endpoint checks first: without a live
    one the answer is the same 401 (problem body, WWW-Authenticate, the security log),
    whether the path exists or not; with one, the 404 or 405."""
    revoked = make_token(server.db_url, "viewer", "ivan")
    name = next(t["name"] for t in json.loads(run_asl(
        "tokens", "list", "--format", "json", "--db", server.db_url).stdout)
        if t["id"] == revoked[4:20])
    assert run_asl("tokens", "revoke", name, "--db", server.db_url).returncode == 0
    with server.client() as anonymous:
        known = problem(anonymous.get("/v1/models"), 401)
        for method, path, _ in V1_UNMATCHED:
            for headers in ({}, {"Authorization": f"Bearer {revoked}"},
                            {"Authorization": "Bearer asl_nonsense"},
                            {"Authorization": f"Basic {server.token('admin')}"}):
                response = anonymous.request(method, path, headers=headers)
                body = problem(response, 401)
                assert response.headers["www-authenticate"] == "Bearer", (method, path)
                if not headers:
                    assert body == known
                assert "allow" not in response.headers
            assert f"401 {method} {path} from" in server.log_text()
    with server.client("viewer") as viewer:
        for method, path, status in V1_UNMATCHED:
            response = viewer.request(method, path)
            problem(response, status)
            assert "www-authenticate" not in response.headers
            if status == 405:
                assert response.headers["allow"]
    assert revoked[21:] not in server.log_text()


# Paths of an endpoint but for a final slash (the router's 307 to the endpoint's path).
V1_SLASHED = [("GET", "/v1/models/", "/v1/models"), ("GET", "/v1/rules/", "/v1/rules"),
              ("GET", "/v1/models/x/history/", "/v1/models/x/history"),
              ("POST", "/v1/packs/acme-lab/activate/", "/v1/packs/acme-lab/activate")]


def test_a_v1_path_with_a_final_slash_is_401_without_a_live_token(server: Server) -> None:
    """The redirect to the path without the final slash, too, comes after the token
    check: without a live token, the 401 of any /v1/ path, so the redirect does not
    say which paths exist; with one, the 307 as before. Outside /v1/ the redirect
    stands for anyone."""
    with server.client() as anonymous:
        known = problem(anonymous.get("/v1/models"), 401)
        for method, path, _ in V1_SLASHED:
            for headers in ({}, {"Authorization": "Bearer asl_nonsense"}):
                response = anonymous.request(method, path, headers=headers)
                body = problem(response, 401)
                assert response.headers["www-authenticate"] == "Bearer", (method, path)
                assert "location" not in response.headers
                if not headers:
                    assert body == known
            assert f"401 {method} {path} from" in server.log_text()
        health = anonymous.get("/health/")
        assert (health.status_code, health.headers["location"]) == (307,
                                                                    f"{server.url}/health")
    with server.client("viewer") as viewer:
        for method, path, target in V1_SLASHED:
            response = viewer.request(method, path)
            assert response.status_code == 307, (method, path)
            assert response.headers["location"] == f"{server.url}{target}"
            assert "www-authenticate" not in response.headers


def test_a_ui_path_that_is_no_page_sends_a_browser_without_session_to_log_in(
        server: Server) -> None:
    """The UI's pages answer a browser without a session with the login page; a path
    that is no page (or a method no page takes) does the same, and only a session
    gets its 404 or 405. The login page and the static files stay public."""
    unmatched = [("GET", "/ui/nonexistent", 404), ("DELETE", "/ui/models", 405),
                 ("POST", "/ui/models/x/y/z", 404)]
    with server.client() as anonymous:
        for method, path, _ in [*unmatched, ("GET", "/ui/models", 200)]:
            response = anonymous.request(method, path)
            assert (response.status_code, response.headers["location"]) == (303, "/ui/login")
        assert anonymous.get("/ui/static/no-such-file.css").status_code == 404
        assert anonymous.delete("/ui/login").status_code == 405
        form = anonymous.get("/ui/login")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        login = anonymous.post("/ui/login", data={"token": server.token("viewer"),
                                                  "csrf": csrf.group(1)},
                               headers={"Origin": server.url})
        assert login.status_code == 303 and login.headers["location"] == "/ui/models"
        session = {"asl_session": login.cookies["asl_session"]}
        for method, path, status in unmatched:
            response = httpx.request(method, f"{server.url}{path}", cookies=session)
            assert response.status_code == status, (method, path)


def test_roles(server: Server) -> None:
    allowed = {"viewer": {"/v1/models", "/v1/rules", "/v1/packs"},
               "analyst": {"/v1/models", "/v1/rules", "/v1/packs"},
               "rule-author": {"/v1/models", "/v1/rules", "/v1/packs"},
               "admin": {"/v1/models", "/v1/rules", "/v1/packs", "/v1/decisions"}}
    for role, paths in allowed.items():
        with server.client(role) as client:
            for path in ("/v1/models", "/v1/rules", "/v1/packs", "/v1/decisions"):
                response = client.get(path)
                if path in paths:
                    assert response.status_code == 200, (role, path)
                else:
                    problem(response, 403)
            upload = client.put("/v1/packs/some-pack", json={"files": {}})
            activate = client.post("/v1/packs/some-pack/activate", json={"version": "x"})
        assert upload.status_code == (422 if role in ("rule-author", "admin") else 403)
        assert activate.status_code == (404 if role == "admin" else 403)
    assert "403 GET /v1/decisions" in server.log_text()  # the security log


def test_a_request_records_the_tokens_last_use_once_a_minute(server: Server) -> None:
    token = make_token(server.db_url, "viewer", "ivan")

    def last_use() -> str | None:
        listed = json.loads(run_asl("tokens", "list", "--format", "json", "--db",
                                    server.db_url).stdout)
        return next(t["last_used_at"] for t in listed if t["id"] == token[4:20])

    assert last_use() is None
    with server.client(token=token) as client:
        assert client.get("/v1/models").status_code == 200
        first = last_use()
        assert first is not None
        assert client.get("/v1/packs").status_code == 200
        assert last_use() == first  # recorded at most once a minute


def test_revocation_and_expiry_take_effect_on_the_next_request(server: Server) -> None:
    token = make_token(server.db_url, "viewer", "frank")
    with server.client(token=token) as client:
        assert client.get("/v1/models").status_code == 200
        name = next(t["name"] for t in json.loads(run_asl(
            "tokens", "list", "--format", "json", "--db", server.db_url).stdout)
            if t["id"] == token[4:20])
        assert run_asl("tokens", "revoke", name, "--db", server.db_url).returncode == 0
        problem(client.get("/v1/models"), 401)
    expiring = make_token(server.db_url, "viewer", "grace", expires_days=1)
    with server.client(token=expiring) as client:
        assert client.get("/v1/models").status_code == 200
        engine = connect(server.db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE api_token SET expires_at = '2001-01-01T00:00:00.000000Z'"
                              " WHERE id = :id"), {"id": expiring[4:20]})
        engine.dispose()
        problem(client.get("/v1/models"), 401)
    assert "401 GET /v1/models" in server.log_text()
    assert token[21:] not in server.log_text() and expiring[21:] not in server.log_text()


# --- models ------------------------------------------------------------------------------------


def test_models_pages_match_asl_list(server: Server) -> None:
    listed = cli_json("list", "--format", "json", "--db", server.db_url)
    with server.client("viewer") as client:
        whole = client.get("/v1/models", params={"limit": 500}).json()
        pages = [client.get("/v1/models", params={"limit": 4, "offset": offset}).json()
                 for offset in range(0, len(listed), 4)]
    assert whole["total"] == len(listed) == 15
    assert whole["models"] == listed
    assert [m for page in pages for m in page["models"]] == listed
    assert all(page["total"] == len(listed) for page in pages)


def test_models_filters(server: Server) -> None:
    with server.client("viewer") as client:
        def models(**params: Any) -> list[str]:
            body = client.get("/v1/models", params={"limit": 500, **params}).json()
            assert body["total"] == len(body["models"])
            return [m["model"] for m in body["models"]]

        for asl in ("ASL-2", "ASL-3", "ASL-4"):
            expected = cli_json("list", "--asl", asl, "--format", "json", "--db", server.db_url)
            assert models(asl=asl) == [m["model"] for m in expected]
        pauses = cli_json("list", "--decision", "pause", "--format", "json", "--db",
                          server.db_url)
        assert models(decision="pause") == [m["model"] for m in pauses] != []
        assert models(q="KITE") == [m for m in models() if "kite" in m] != []
        assert models(q="%") == [] and models(q="_") == []
        assert len(models(framework="rsp-2.1")) == 15 and models(framework="rsp") == []
        problem(client.get("/v1/models", params={"limit": 501}), 422)
        problem(client.get("/v1/models", params={"asl": "ASL-9"}), 422)
        problem(client.get("/v1/models", params={"offset": -1}), 422)


def test_a_model_is_its_stored_result_as_asl_assess_prints_it(server: Server) -> None:
    expected = cli_json("assess", str(EXAMPLES / "security-gap-pause.yaml"), "--format", "json")
    with server.client("viewer") as client:
        response = client.get("/v1/models/larkspur-kite-4")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == expected
        problem(client.get("/v1/models/no-such-model"), 404)


def test_history_is_asl_history_newest_first(server: Server) -> None:
    history = cli_json("history", "larkspur-kite-4", "--format", "json", "--db", server.db_url)
    with server.client("viewer") as client:
        body = client.get("/v1/models/larkspur-kite-4/history").json()
        problem(client.get("/v1/models/no-such-model/history"), 404)
    assert body == {"model": "larkspur-kite-4", "assessments": history[::-1]}


@pytest.mark.parametrize(("fmt", "conclusion"), [
    ("json", "asl"), ("json", "decision"), ("text", "required.security"),
    ("text", "decision"), ("dot", "decision"), ("dot", "all"), ("prov-json", "asl"),
    ("svg", "decision")])
def test_why_is_asl_why_on_the_record(server: Server, fmt: str, conclusion: str) -> None:
    model = "corvid-atlas-5-chat"
    expected = CliRunner().invoke(main, ["why", model, "--db", server.db_url, "--conclusion",
                                         conclusion, "--format", fmt])
    with server.client("viewer") as client:
        response = client.get(f"/v1/models/{model}/why",
                              params={"conclusion": conclusion, "format": fmt})
    if expected.exit_code != 0:  # svg without Graphviz: the same reason, as 503
        body = problem(response, 503)
        assert body["detail"] in expected.stderr
        return
    assert response.status_code == 200
    assert response.content == expected.stdout_bytes
    media = {"json": "application/json", "text": "text/plain; charset=utf-8",
             "dot": "text/vnd.graphviz; charset=utf-8", "prov-json": "application/json",
             "svg": "image/svg+xml"}[fmt]
    assert response.headers["content-type"] == media


def test_why_of_an_older_assessment_and_bad_requests(server: Server) -> None:
    model = "larkspur-kite-4"
    [first] = cli_json("history", model, "--format", "json", "--db", server.db_url)
    expected = cli("why", model, "--db", server.db_url, "--assessment",
                   str(first["assessment"]), "--format", "json").stdout_bytes
    with server.client("viewer") as client:
        chosen = client.get(f"/v1/models/{model}/why",
                            params={"assessment": first["assessment"]})
        assert chosen.content == expected
        assert "no assessment 99999" in problem(client.get(
            f"/v1/models/{model}/why", params={"assessment": 99999}), 404)["detail"]
        assert "no conclusion 'threshold:CBRN-9'" in problem(client.get(
            f"/v1/models/{model}/why", params={"conclusion": "threshold:CBRN-9"}),
            404)["detail"]
        problem(client.get(f"/v1/models/{model}/why",
                                  params={"conclusion": "all", "format": "json"}), 422)
        problem(client.get(f"/v1/models/{model}/why", params={"format": "png"}), 422)
        problem(client.get("/v1/models/nobody/why"), 404)


# --- rules and decisions ---------------------------------------------------------------------


def test_rules_are_asl_rules_list_and_show(server: Server) -> None:
    listed = cli_json("rules", "list", "--format", "json")
    shown = cli_json("rules", "show", "requirements.highest", "--format", "json")
    with server.client("viewer") as client:
        rules = client.get("/v1/rules").json()
        rule = client.get("/v1/rules/requirements.highest").json()
        base_only = client.get("/v1/rules", params={"pack": "rsp-2.1"}).json()
        missing = problem(client.get("/v1/rules/requirements.higest"), 404)
        problem(client.get("/v1/rules", params={"pack": "acme-lab"}), 404)

    def without_file(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "file"}

    assert [without_file(r) for r in rules] == [without_file(r) for r in listed]
    assert base_only == rules
    for served, printed in zip(rules, listed, strict=True):
        assert served["file"].startswith("rsp-2.1/rules/")
        assert printed["file"].endswith(served["file"].removeprefix("rsp-2.1"))
    assert without_file(rule) == without_file(shown)
    assert "did you mean 'requirements.highest'" in missing["detail"]


def test_decisions_are_the_log_newest_first_for_admins(server: Server) -> None:
    admin = server.client("admin")  # its token is an entry too
    engine = connect(server.db_url)
    try:
        every = [e.to_json() for e in audit.entries(engine)]
    finally:
        engine.dispose()
    with admin as client:
        newest = client.get("/v1/decisions", params={"limit": 2}).json()
        older = client.get("/v1/decisions",
                           params={"limit": 500, "before": newest["next_before"]}).json()
    assert len(every) >= 3
    assert newest["decisions"] + older["decisions"] == every[::-1][:len(every)]
    assert older["next_before"] is None


def test_hostile_reads_get_a_status_not_a_server_error(server: Server) -> None:
    with server.client("admin") as client:
        problem(client.get("/v1/models/a%00b"), 404)
        problem(client.get("/v1/models/a%00b/why"), 404)
        problem(client.get("/v1/models", params={"q": "a\x00b"}), 422)
        problem(client.get("/v1/models", params={"q": "x" * 201}), 422)
        problem(client.get("/v1/models/larkspur-kite-4/why",
                                  params={"assessment": 2**40}), 422)
        problem(client.get("/v1/decisions", params={"before": 2**40}), 422)
        problem(client.get("/v1/models", params={"offset": 10**30}), 422)
        problem(client.get("/v1/rules/%00"), 404)
        problem(client.get("/v1/models/" + "a" * 5000), 422)
        assert client.get("/v1/models", params={"q": "'; DROP TABLE model; --"}).json()[
            "total"] == 0
        assert client.get("/health").status_code == 200
