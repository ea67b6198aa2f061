"""The service held to the letter of service.md, assessment-output.md and
openai-pf-2-semantics.md where a review found it apart, over real HTTP (`asl serve` on
loopback, SQLite and PostgreSQL): why, why-not and what-if on a model stored under
openai-pf-2 use that framework; a malformed batch body is 400 and leaves nothing; a
`Content-Encoding` is 413; `POST /v1/assess` gives the same bytes on every path, the
CLI's; every decision-log `input_sha256` is of the canonical evidence JSON; every list
item has `asl`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from service_server import Server, assert_explained_like_cli, cli_json, data_of, problem
from service_server import module_database as module_database  # the fixture
from service_server import server as server  # the fixture

from cli.main import main
from engine.jsontext import dumps
from store import audit
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
GAP_PF = REPO / "tests" / "data" / "openai-pf-2" / "bio-high-misuse-gap.yaml"
GAP_RSP = REPO / "examples" / "security-gap-pause.yaml"
LINEAGE = REPO / "examples" / "portfolio" / "lineage.yaml"
PF = "openai-pf-2"
PF_MODEL = "heron-3"
YAML_TYPE = {"Content-Type": "application/yaml"}
JSON_TYPE = {"Content-Type": "application/json"}
JSONL_TYPE = {"Content-Type": "application/jsonl"}
EDIT = "safeguards[high-misuse].status=implemented"


def cli_text(*args: str) -> str:
    """What an `asl` command prints, run in-process; it must succeed."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def counts(server: Server) -> tuple[int, int, int]:
    """(assessments, batches, decision-log entries) in the database itself, once the
    analyst's token (whose making is logged) exists."""
    server.token("analyst")
    engine = connect(server.db_url)
    try:
        with engine.connect() as conn:
            return tuple(int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
                         for table in ("assessment", "service_batch", "decision_log"))
    finally:
        engine.dispose()


def logged(server: Server, decision_id: str) -> dict[str, Any]:
    """The decision-log entry `decision_id` (background batches log entries too)."""
    with server.client("admin") as admin:
        found = admin.get("/v1/decisions?limit=100").json()["decisions"]
    return next(d for d in found if d["decision_id"] == decision_id)


@pytest.fixture(scope="module")
def stored_pf(server: Server) -> Server:
    """The server with heron-3 stored under openai-pf-2 (and nothing else under it)."""
    with server.client("analyst") as analyst:
        stored = analyst.post(f"/v1/assess?framework={PF}", content=GAP_PF.read_bytes(),
                              headers=YAML_TYPE)
    assert stored.status_code == 200, stored.text
    return server


@pytest.mark.parametrize("conclusion", [None, "level", "decision", "research:Sandbagging",
                                        "threshold:Bio/Chem High"])
def test_why_on_a_pf_model_is_asl_why_on_the_record(stored_pf: Server,
                                                     conclusion: str | None) -> None:
    selector = [] if conclusion is None else ["--conclusion", conclusion]
    expected = cli_text("why", PF_MODEL, "--db", stored_pf.db_url, *selector,
                        "--format", "json")
    with stored_pf.client("viewer") as viewer:
        answer = viewer.get(f"/v1/models/{PF_MODEL}/why",
                            params={} if conclusion is None else {"conclusion": conclusion})
    assert answer.status_code == 200, answer.text
    assert answer.text == expected


def test_why_on_an_rsp_model_still_explains_asl_by_default(server: Server) -> None:
    with server.client("analyst") as analyst:
        assert analyst.post("/v1/assess", content=GAP_RSP.read_bytes(),
                            headers=YAML_TYPE).status_code == 200
        model = data_of(GAP_RSP)["model"]["id"]
        answer = analyst.get(f"/v1/models/{model}/why")
    assert answer.status_code == 200, answer.text
    assert answer.text == cli_text("why", model, "--db", server.db_url, "--conclusion", "asl",
                                   "--format", "json")
    assert answer.json()["conclusion"].startswith("asl")


def test_why_not_and_what_if_default_to_the_stored_framework(stored_pf: Server) -> None:
    with stored_pf.client("analyst") as analyst:
        assert_explained_like_cli(analyst, PF_MODEL, GAP_PF, PF, EDIT)


@pytest.mark.parametrize(("content", "headers"), [
    (b"[not yaml", YAML_TYPE),
    (b'{"models": [', JSON_TYPE),
    (b'{"model": \n[1, \n', JSONL_TYPE),
    (b"\xff\xfe not utf-8", YAML_TYPE),
], ids=["yaml", "json", "jsonl", "not-utf-8"])
def test_a_malformed_batch_body_is_400_and_nothing_is_stored(
        server: Server, content: bytes, headers: dict[str, str]) -> None:
    """(A JSON Lines body with some readable lines is queued, and its unreadable lines
    reported model by model, as `asl batch` reports them: test_service_batches.)"""
    before = counts(server)
    with server.client("analyst") as analyst:
        body = problem(analyst.post("/v1/batches", content=content, headers=headers), 400)
    assert body["detail"].startswith("body")
    assert counts(server) == before


def test_a_content_encoding_is_413(server: Server) -> None:
    before = counts(server)
    with server.client("analyst") as analyst:
        for path in ("/v1/assess", "/v1/batches"):
            refused = analyst.post(path, content=GAP_RSP.read_bytes(),
                                   headers={**YAML_TYPE, "Content-Encoding": "gzip"})
            assert problem(refused, 413)["detail"].startswith("Content-Encoding")
            assert refused.headers["accept-encoding"] == "identity"
    assert counts(server) == before


def test_assess_gives_the_clis_bytes_on_every_path(server: Server) -> None:
    """First stored, stored again unchanged, not stored: the same bytes, the CLI's
    JSON of the results (floats, key order and all), in the spec's envelope."""
    document = data_of(LINEAGE)
    for entry in document["models"]:  # models this module has not stored yet
        entry["model"]["id"] = f"bytes-{entry['model']['id']}"
        if (lca := entry["model"].get("last_comprehensive_assessment")) and lca.get("model"):
            lca["model"] = f"bytes-{lca['model']}"
    result = CliRunner().invoke(main, ["assess", "-", "--format", "json"],
                                input=json.dumps(document), catch_exceptions=False)
    cli_results = json.loads(result.output)
    assert result.output == f"{dumps(cli_results)}\n"
    with server.client("analyst") as analyst:
        answers = [analyst.post(f"/v1/assess?store={store}", json=document)
                   for store in ("true", "true", "false")]
        first = cli_results[0]["model"]
        newest = analyst.get(f"/v1/models/{first}")
    for answer in answers:
        assert answer.status_code == 200, answer.text
        expected = dumps({"decision_id": answer.json()["decision_id"], "results": cli_results})
        assert answer.text == f"{expected}\n"
    single = CliRunner().invoke(main, ["assess", "-", "--format", "json"],
                                input=json.dumps(document["models"][0]),
                                catch_exceptions=False).output
    assert newest.text == single


def test_input_sha256_is_of_the_canonical_evidence_json(server: Server) -> None:
    """One document, a `models:` portfolio in YAML and JSON, and the same models as JSON
    Lines: each entry (assess, batch submit, what-if) hashes the evidence itself, the
    same whichever form it came in."""
    document = data_of(GAP_RSP)
    portfolio = data_of(LINEAGE)
    lines = "".join(json.dumps(d) + "\n" for d in portfolio["models"]).encode()
    bodies = {"one document": [(GAP_RSP.read_bytes(), YAML_TYPE),
                               (json.dumps(document).encode(), JSON_TYPE)],
              "a portfolio": [(LINEAGE.read_bytes(), YAML_TYPE),
                              (json.dumps(portfolio).encode(), JSON_TYPE),
                              (lines, JSONL_TYPE)]}
    wanted = {"one document": audit.sha256_of(document),
              "a portfolio": audit.sha256_of(portfolio)}
    with server.client("analyst") as analyst:
        for what, forms in bodies.items():
            for path in ("/v1/assess?store=false", "/v1/batches"):
                for content, headers in forms:
                    answer = analyst.post(path, content=content, headers=headers)
                    assert answer.status_code in (200, 202), answer.text
                    entry = logged(server, answer.json()["decision_id"])
                    assert entry["input_sha256"] == wanted[what], (what, path, headers)
        edited = analyst.post("/v1/what-if", json={
            "model": document["model"]["id"], "evidence": document,
            "set": ["safeguards[asl3-security.audits].status=implemented"]})
    assert edited.status_code == 200, edited.text
    entry = logged(server, edited.json()["decision_id"])
    assert entry["action"] == "what-if"
    assert entry["input_sha256"] == wanted["one document"]


def test_every_listed_model_has_asl(stored_pf: Server) -> None:
    with stored_pf.client("viewer") as viewer:
        listed = viewer.get("/v1/models", params={"limit": 500}).json()["models"]
        by_level = viewer.get("/v1/models", params={"framework": PF}).json()["models"]
    pf_items = [m for m in listed if m["framework"] == PF]
    assert pf_items and all({"model", "asl", "decision", "assessed_at"} <= set(m)
                            for m in listed)
    for item in pf_items:  # the headline level, which ?asl= filters
        assert item["asl"] == item["level"]
        with stored_pf.client("viewer") as viewer:
            filtered = viewer.get("/v1/models", params={"asl": item["asl"],
                                                        "framework": PF}).json()["models"]
        assert item["model"] in {m["model"] for m in filtered}
    assert {m["model"] for m in by_level} >= {PF_MODEL}
    # An rsp-2.1 row is exactly as `asl list --format json` gives it.
    rsp_items = {m["model"]: m for m in listed if m["framework"] == "rsp-2.1"}
    cli_rows = {r["model"]: r for r in cli_json("list", "--db", stored_pf.db_url,
                                                "--framework", "rsp-2.1", "--format", "json")}
    assert rsp_items and rsp_items == {m: cli_rows[m] for m in rsp_items}


def test_asl_what_if_on_a_record_is_logged_as_the_services(server: Server,
                                                           tmp_path: Path) -> None:
    """`asl what-if --db URL` enters the what-if in that record's decision log (actor
    `cli:` and the OS user), with the same input hash as the service's what-if of the
    same evidence; with no record there, none is made for it."""
    edit = "safeguards[asl3-security.audits].status=implemented"
    server.token("admin")  # made (and logged) before the what-if
    printed = cli_text("what-if", str(GAP_RSP), "--set", edit, "--db", server.db_url,
                       "--format", "json")
    with server.client("admin") as admin:
        found = admin.get("/v1/decisions?limit=100").json()["decisions"]
    # (background batches of earlier tests may log after it)
    entry = next(d for d in found if d["actor"] == audit.cli_actor())
    assert entry["action"] == "what-if" and entry["role"] is None
    assert entry["input_sha256"] == audit.sha256_of(data_of(GAP_RSP))
    assert entry["result_sha256"] == audit.sha256_of(json.loads(printed))
    assert entry["pack"] == "rsp-2.1"
    with server.client("analyst") as analyst:
        edited = analyst.post("/v1/what-if", json={
            "model": data_of(GAP_RSP)["model"]["id"], "evidence": data_of(GAP_RSP),
            "set": [edit]})
    assert logged(server, edited.json()["decision_id"])["input_sha256"] == \
        entry["input_sha256"]
    absent = tmp_path / "none.db"
    cli_text("what-if", str(GAP_RSP), "--set", edit, "--db", str(absent))
    assert not absent.exists()
