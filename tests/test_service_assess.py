"""Assessing over HTTP: `POST /v1/assess`, `POST /v1/what-if` and `POST
/v1/models/{model}/why-not` on a real `asl serve` (loopback), on SQLite and PostgreSQL.
Each answer is compared with what the CLI prints as JSON for the same evidence."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_server import Server, cli_json, data_of, problem
from service_server import module_database as module_database  # the fixture
from service_server import server as server  # the fixture

from store.db import connect

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
GAP = EXAMPLES / "security-gap-pause.yaml"
YAML_TYPE = {"Content-Type": "application/yaml"}
JSON_TYPE = {"Content-Type": "application/json"}


def stored_count(server: Server) -> int:
    engine = connect(server.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM assessment").scalar_one())
    finally:
        engine.dispose()


def log_actions(server: Server) -> list[str]:
    with server.client("admin") as admin:
        return [d["action"] for d in admin.get("/v1/decisions").json()["decisions"]
                if not d["action"].startswith("token.")]


def test_assess_is_asl_assess_in_json_and_yaml(server: Server) -> None:
    expected = cli_json("assess", str(GAP), "--format", "json")
    document = data_of(GAP)
    with server.client("analyst") as analyst:
        as_yaml = analyst.post("/v1/assess?store=false", content=GAP.read_bytes(),
                               headers=YAML_TYPE)
        as_json = analyst.post("/v1/assess?store=false", json=document)
    assert as_yaml.status_code == 200, as_yaml.text
    assert as_yaml.json()["results"] == [expected]
    assert as_json.json()["results"] == [expected]
    assert as_yaml.json()["decision_id"] != as_json.json()["decision_id"]
    assert stored_count(server) == 0


def test_a_portfolio_is_answered_in_input_order_as_asl_assess_gives_it(server: Server
                                                                        ) -> None:
    expected = {r["model"]: r for r in cli_json("assess", str(LINEAGE), "--format", "json")}
    order = [d["model"]["id"] for d in data_of(LINEAGE)["models"]]
    with server.client("analyst") as analyst:
        answer = analyst.post("/v1/assess?store=false", content=LINEAGE.read_bytes(),
                              headers=YAML_TYPE)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["model"] for r in results] == order
    assert results == [expected[m] for m in order]


def test_stored_once_then_unchanged_and_logged(server: Server) -> None:
    before = stored_count(server)
    with server.client("analyst") as analyst:
        first = analyst.post("/v1/assess", content=LINEAGE.read_bytes(), headers=YAML_TYPE)
        assert first.status_code == 200, first.text
        assert stored_count(server) == before + 5
        again = analyst.post("/v1/assess", content=LINEAGE.read_bytes(), headers=YAML_TYPE)
        assert again.json()["results"] == first.json()["results"]
        assert stored_count(server) == before + 5  # the same input is not stored twice
        stored = analyst.get("/v1/models/corvid-atlas-5-chat").json()
    assert stored == next(r for r in first.json()["results"]
                          if r["model"] == "corvid-atlas-5-chat")
    actions = log_actions(server)
    assert actions[:2] == ["assess", "assess"]


def test_one_rejected_document_refuses_the_whole_request(server: Server) -> None:
    data = data_of(LINEAGE)
    data["models"][3]["evaluations"][0]["score"] = "high"
    before = stored_count(server)
    with server.client("analyst") as analyst:
        answer = analyst.post("/v1/assess", json=data)
    body = problem(answer, 422)
    assert body["errors"] and all(e["file"] == "body" for e in body["errors"])
    assert any(e["path"].startswith("models[3].evaluations[0].score")
               for e in body["errors"]), body
    assert stored_count(server) == before



def test_the_models_a_rejected_one_stops_are_named_too(server: Server) -> None:
    """Issue 16 over HTTP: corvid-atlas-5-chat is rejected, so -code and 5.1, which name
    it as their predecessor, could not be assessed either; the 422 says so for each, as
    `asl assess` does, and nothing is stored."""
    data = data_of(LINEAGE)
    data["models"][1]["model"]["bogus"] = 1
    before = stored_count(server)
    with server.client("analyst") as analyst:
        answer = analyst.post("/v1/assess", json=data)
    errors = problem(answer, 422)["errors"]
    assert [e["path"] for e in errors] == ["models[1].model.bogus",
                                           "models[2].model.predecessor",
                                           "models[3].model.predecessor"]
    assert all("references 'corvid-atlas-5-chat', which could not be assessed" in e["message"]
               for e in errors[1:]), errors
    assert stored_count(server) == before

@pytest.mark.parametrize(("content", "media", "status"), [
    (b"{not json", "application/json", 400),
    (b"model: [unclosed", "application/yaml", 400),
    (b"\xff\xfe", "application/yaml", 400),
    (b"model: {id: x}", "text/plain", 415),
    (b"", "application/json", 400),
    (b"a: &a [1]\nb: *a\n", "application/yaml", 422),
    (b'{"model":\n', "application/jsonl", 400),
    (b'{"model": {"id": "a"}}\n{"model": \n', "application/x-ndjson", 400),
])
def test_bad_bodies_get_their_status(server: Server, content: bytes, media: str,
                                     status: int) -> None:
    before = stored_count(server)
    with server.client("analyst") as analyst:
        problem(analyst.post("/v1/assess", content=content,
                             headers={"Content-Type": media}), status)
    assert stored_count(server) == before


def test_assess_needs_an_analyst(server: Server) -> None:
    with server.client("viewer") as viewer:
        problem(viewer.post("/v1/assess", content=GAP.read_bytes(), headers=YAML_TYPE), 403)


def test_what_if_is_asl_what_if(server: Server) -> None:
    edit = "safeguards[asl3-security.audits].status=implemented"
    expected = cli_json("what-if", str(GAP), "--set", edit, "--format", "json")
    document = data_of(GAP)
    before = stored_count(server)
    with server.client("analyst") as analyst:
        given = analyst.post("/v1/what-if", json={"model": expected["model"],
                                                  "evidence": document, "set": [edit]})
        assert given.status_code == 200, given.text
        assert analyst.post("/v1/assess", json=document).status_code == 200
        from_record = analyst.post("/v1/what-if", json={"model": expected["model"],
                                                        "set": [edit]})
    assert stored_count(server) == before + 1  # the assessment, never the what-if
    for answer in (given.json(), from_record.json()):
        assert answer.pop("decision_id")
        assert answer == expected
    assert log_actions(server)[0] == "what-if"


def test_what_if_bad_edits_and_unknown_models(server: Server) -> None:
    document = data_of(GAP)
    with server.client("analyst") as analyst:
        bad = problem(analyst.post("/v1/what-if", json={
            "model": document["model"]["id"], "evidence": document,
            "set": ["evaluations[nope].score=0.3"]}), 422)
        assert bad["errors"][0]["file"] == "body"
        problem(analyst.post("/v1/what-if", json={"model": "never-stored",
                                                  "set": ["deployment.channels=[api]"]}), 404)
        problem(analyst.post("/v1/what-if", json={"model": "x", "sets": []}), 422)
        problem(analyst.post("/v1/what-if", json={"model": document["model"]["id"]}), 422)


def test_why_not_is_asl_why_not_on_the_stored_evidence(server: Server) -> None:
    model = data_of(GAP)["model"]["id"]
    with server.client("analyst") as analyst:
        for path in (GAP, LINEAGE):
            assert analyst.post("/v1/assess", content=path.read_bytes(),
                                headers=YAML_TYPE).status_code == 200
    expected = cli_json("why-not", str(GAP), "decision=proceed", "--format", "json")
    in_portfolio = cli_json("why-not", str(LINEAGE), "--model", "corvid-atlas-5-chat",
                            "asl=ASL-2", "--format", "json")
    with server.client("viewer") as viewer:
        answer = viewer.post(f"/v1/models/{model}/why-not", json={"target": "decision=proceed"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        # A model referencing another takes what it carries over from the record, as in
        # its portfolio: the same conclusions stand in the way.
        chat = viewer.post("/v1/models/corvid-atlas-5-chat/why-not",
                           json={"target": "asl=ASL-2"}).json()
        assert [s["id"] for s in chat["standing"]] == \
            [s["id"] for s in in_portfolio["standing"]]
        assert (chat["holds"], chat["present"]) == \
            (in_portfolio["holds"], in_portfolio["present"])
        problem(viewer.post(f"/v1/models/{model}/why-not", json={"target": "colour=red"}),
                422)
        problem(viewer.post("/v1/models/never-stored/why-not", json={"target": "asl=ASL-2"}),
                404)


# --- POST /v1/imports/inspect ------------------------------------------------------------

INSPECT = EXAMPLES / "inspect"
INSPECT_LOG = "examples/inspect/logs/bio-uplift-probe.eval"  # as the worked example names it


def inspect_body(**extra: Any) -> dict[str, Any]:
    content = base64.b64encode((REPO / INSPECT_LOG).read_bytes()).decode()
    return {"logs": [{"name": INSPECT_LOG, "content_base64": content}],
            "mapping": (INSPECT / "mapping.yaml").read_text(), **extra}


def test_import_inspect_returns_what_asl_import_inspect_writes(server: Server) -> None:
    expected = data_of(INSPECT / "evidence.yaml")
    before = stored_count(server)
    with server.client("analyst") as analyst:
        answer = analyst.post("/v1/imports/inspect",
                              json=inspect_body(into=data_of(INSPECT / "lyra-5-opus.yaml")))
    assert answer.status_code == 200, answer.text
    assert answer.json()["evidence"] == expected and answer.json()["decision_id"]
    assert stored_count(server) == before
    assert log_actions(server)[0] == "import.inspect"


def test_import_inspect_can_store_and_assess(server: Server) -> None:
    expected = json.loads((INSPECT / "assessment.json").read_text())
    before = stored_count(server)
    with server.client("analyst") as analyst:
        answer = analyst.post("/v1/imports/inspect?store=true",
                              json=inspect_body(into=data_of(INSPECT / "lyra-5-opus.yaml")))
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"] == [expected]
        assert analyst.get(f"/v1/models/{expected['model']}").json() == expected
    assert stored_count(server) == before + 1


def test_import_inspect_refusals(server: Server) -> None:
    with server.client("analyst") as analyst:
        bad_mapping = problem(analyst.post("/v1/imports/inspect", json=inspect_body(
            mapping="models: {}\nevaluations: [{task: x}]\n")), 422)
        assert bad_mapping["problems"][0]["file"] == "mapping"
        bad_log = inspect_body()
        bad_log["logs"][0]["content_base64"] = base64.b64encode(b"not a zip").decode()
        assert problem(analyst.post("/v1/imports/inspect", json=bad_log), 422)["problems"]
        traversal = inspect_body()
        traversal["logs"][0]["name"] = "../../etc/passwd"
        problem(analyst.post("/v1/imports/inspect", json=traversal), 422)
    with server.client("viewer") as viewer:
        problem(viewer.post("/v1/imports/inspect", json=inspect_body()), 403)


# --- hostile bodies ----------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(8))


def hostile_bodies() -> list[Any]:
    document = data_of(GAP)
    unknown = json.loads(json.dumps(document))
    unknown["model"]["colour"] = "red"
    huge = json.loads(json.dumps(document))
    huge_text = json.dumps(huge).replace('"score": 0.', '"score": ' + "9" * 5000 + "0.", 1)
    return [
        pytest.param(ALIAS_BOMB.encode(), "application/yaml", 422, id="alias-bomb"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", 422,
                     id="deep-json"),
        pytest.param(("model:\n" + "  " * 0 + "x: " + "[" * 5000 + "]" * 5000).encode(),
                     "application/yaml", 422, id="deep-yaml"),
        pytest.param(json.dumps(unknown).encode(), "application/json", 422,
                     id="unknown-field"),
        pytest.param(huge_text.encode(), "application/json", 422, id="huge-integer"),
        pytest.param(b"\x00\x01binary", "application/json", 400, id="binary"),
        pytest.param(b"{}", "application/x-www-form-urlencoded", 415, id="form"),
    ]


@pytest.mark.parametrize(("content", "media", "status"), hostile_bodies())
def test_hostile_bodies_get_a_problem_and_store_nothing(server: Server, content: bytes,
                                                        media: str, status: int) -> None:
    before = stored_count(server)
    with server.client("analyst") as analyst:
        body = problem(analyst.post("/v1/assess", content=content,
                                    headers={"Content-Type": media}), status)
        assert len(body["detail"]) < 2000
        assert analyst.get("/health").status_code == 200
    assert stored_count(server) == before


def test_oversize_and_compressed_bodies_are_refused(server: Server) -> None:
    with server.client("analyst") as analyst:
        problem(analyst.post("/v1/assess", content=b" " * (16 * 1024 * 1024 + 1),
                             headers=JSON_TYPE), 413)

        def chunks() -> Iterator[bytes]:
            for _ in range(17):
                yield b" " * (1024 * 1024)

        problem(analyst.post("/v1/assess", content=chunks(), headers=JSON_TYPE), 413)
        problem(analyst.post("/v1/assess", content=b"x", headers={
            **JSON_TYPE, "Content-Encoding": "gzip"}), 413)
        document = data_of(GAP)
        too_many = {"models": [dict(document, model={**document["model"], "id": f"m-{n}"})
                               for n in range(1001)]}
        problem(analyst.post("/v1/assess?store=false", json=too_many), 413)
