"""`?framework=` on the service, over real HTTP (`asl serve` on loopback, SQLite and
PostgreSQL): evidence written for OpenAI PF v2 (the copies of its public cases in
tests/data/openai-pf-2/) assessed, explained, edited and batched under that framework
answers exactly what `asl ... --framework openai-pf-2 --format json` prints, is stored
with its framework and listed by it; an unknown framework is refused naming the
parameter and the built-in frameworks; without the parameter nothing changes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from service_server import Server, assert_explained_like_cli, cli_json, data_of
from service_server import module_database as module_database  # the fixture
from service_server import server as server  # the fixture

from cli.main import main
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
CASES = sorted((REPO / "tests" / "data" / "openai-pf-2").glob("*.yaml"))
GAP_PF = REPO / "tests" / "data" / "openai-pf-2" / "bio-high-misuse-gap.yaml"
GAP_RSP = REPO / "examples" / "security-gap-pause.yaml"
PF = "openai-pf-2"
YAML_TYPE = {"Content-Type": "application/yaml"}
JSONL = {"Content-Type": "application/jsonl"}


def stored_frameworks(server: Server) -> dict[str, set[str]]:
    """Each stored model's frameworks, read from the database itself."""
    engine = connect(server.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT model_id, framework FROM assessment").all()
    finally:
        engine.dispose()
    found: dict[str, set[str]] = {}
    for model, framework in rows:
        found.setdefault(model, set()).add(framework)
    return found


def refused_framework(response: Any) -> None:
    """The problem an unknown framework gets: 422, naming the parameter and the
    built-in frameworks."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "framework" in body["detail"] and "nope" in body["detail"], body
    assert PF in body["detail"] and "rsp-2.1" in body["detail"], body
    assert body["errors"][0]["path"] == "query.framework"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_a_pf_case_over_http_is_asl_assess_framework(server: Server, case: Path) -> None:
    expected = cli_json("assess", str(case), "--framework", PF, "--format", "json")
    assert expected["framework"] == PF
    with server.client("analyst") as analyst:
        answer = analyst.post(f"/v1/assess?framework={PF}", content=case.read_bytes(),
                              headers=YAML_TYPE)
        assert answer.status_code == 200, answer.text
        stored = analyst.get(f"/v1/models/{expected['model']}").json()
    assert answer.json()["results"] == [expected]
    assert stored == expected
    assert stored_frameworks(server)[expected["model"]] == {PF}


def test_stored_results_are_listed_by_framework(server: Server) -> None:
    with server.client("analyst") as analyst:
        for path, query in ((GAP_PF, f"?framework={PF}"), (GAP_RSP, "")):
            assert analyst.post(f"/v1/assess{query}", content=path.read_bytes(),
                                headers=YAML_TYPE).status_code == 200
        under_pf = analyst.get(f"/v1/models?framework={PF}").json()["models"]
        under_rsp = analyst.get("/v1/models?framework=rsp-2.1").json()["models"]
    pf_models = {m["model"] for m in under_pf}
    rsp_models = {m["model"] for m in under_rsp}
    assert "heron-3" in pf_models and "heron-3" not in rsp_models
    rsp_model = data_of(GAP_RSP)["model"]["id"]
    assert rsp_model in rsp_models and rsp_model not in pf_models
    assert {m["framework"] for m in under_pf} == {PF}


def test_without_the_parameter_the_active_stack_assesses_as_before(server: Server) -> None:
    expected = cli_json("assess", str(GAP_RSP), "--format", "json")
    with server.client("analyst") as analyst:
        default = analyst.post("/v1/assess?store=false", content=GAP_RSP.read_bytes(),
                               headers=YAML_TYPE)
        named = analyst.post("/v1/assess?store=false&framework=rsp-2.1",
                             content=GAP_RSP.read_bytes(), headers=YAML_TYPE)
        # PF v2 evidence is not RSP evidence: the default framework refuses it.
        pf_by_default = analyst.post("/v1/assess?store=false", content=GAP_PF.read_bytes(),
                                     headers=YAML_TYPE)
    assert default.json()["results"] == [expected] == named.json()["results"]
    assert expected["framework"] == "rsp-2.1"
    assert pf_by_default.status_code == 422, pf_by_default.text


def test_an_unknown_framework_is_refused_and_nothing_is_done(server: Server) -> None:
    before = stored_frameworks(server)
    with server.client("analyst") as analyst:
        refused_framework(analyst.post("/v1/assess?framework=nope",
                                       content=GAP_PF.read_bytes(), headers=YAML_TYPE))
        refused_framework(analyst.post("/v1/what-if?framework=nope", json={
            "model": "heron-3", "evidence": data_of(GAP_PF),
            "set": ["safeguards[high-misuse].status=implemented"]}))
        refused_framework(analyst.post("/v1/models/heron-3/why-not?framework=nope",
                                       json={"target": "decision=proceed"}))
        refused_framework(analyst.post("/v1/batches?framework=nope",
                                       content=GAP_PF.read_bytes(), headers=YAML_TYPE))
        refused_framework(analyst.post("/v1/imports/inspect?framework=nope&store=true",
                                       json={"logs": [{"name": "a.eval",
                                                       "content_base64": ""}],
                                             "mapping": "{}"}))
    assert stored_frameworks(server) == before


def test_why_not_and_what_if_under_pf(server: Server) -> None:
    with server.client("analyst") as analyst:
        assert analyst.post(f"/v1/assess?framework={PF}", content=GAP_PF.read_bytes(),
                            headers=YAML_TYPE).status_code == 200
        assert_explained_like_cli(analyst, "heron-3", GAP_PF, PF,
                                  "safeguards[high-misuse].status=implemented",
                                  query=f"?framework={PF}")


def test_a_batch_under_pf_stores_what_asl_assess_gives(server: Server) -> None:
    lines = []
    for number, case in enumerate(CASES):
        document = data_of(case)
        document["model"]["id"] = f"pf-batch-{number}"
        lines.append(json.dumps(document))
    with server.client("analyst") as analyst:
        queued = analyst.post(f"/v1/batches?framework={PF}",
                              content=("\n".join(lines) + "\n").encode(), headers=JSONL)
        assert queued.status_code == 202, queued.text
        deadline = time.monotonic() + 240
        while (found := analyst.get(f"/v1/batches/{queued.json()['id']}").json())[
                "state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert found["state"] == "done", found
        assert found["summary"]["assessed"] == len(CASES), found
        stored = analyst.get("/v1/models/pf-batch-0").json()
        listed = {m["model"] for m in
                  analyst.get(f"/v1/models?framework={PF}&q=pf-batch").json()["models"]}
    result = CliRunner().invoke(main, ["assess", "-", "--framework", PF, "--format", "json"],
                                input=lines[0], catch_exceptions=False)
    assert stored == json.loads(result.output)
    assert listed == {f"pf-batch-{n}" for n in range(len(CASES))}
