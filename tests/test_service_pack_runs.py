"""Testing and diffing a draft pack over real HTTP (`POST /v1/packs/{name}/test`, `GET
/v1/packs/{name}/diff`): what `asl rules test` and `asl rules diff` print as JSON for the
same pack, with files named as the uploader knows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from service_server import Server
from service_server import module_database as module_database  # the fixture
from service_server import server as server  # the fixture

from cli.main import main
from store import packs

REPO = Path(__file__).resolve().parents[1]
ACME = REPO / "examples" / "packs" / "acme-lab"
BASE = REPO / "rules" / "rsp-2.1"


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return json.loads(result.output)


def as_uploaded(data: Any, directory: Path) -> Any:
    """`data` with the pack directory's paths as the uploader names its files."""
    text = json.dumps(data)
    for prefix in (f"{directory}/", f"{directory.relative_to(REPO)}/"):
        text = text.replace(prefix, "")
    return json.loads(text)


def upload(server: Server, files: dict[str, str]) -> None:
    with server.client("rule-author") as author:
        answer = author.put("/v1/packs/acme-lab", json={"files": files})
    assert answer.status_code == 201, answer.text


def test_test_and_diff_are_asl_rules_test_and_diff(server: Server,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    upload(server, packs.read_pack_files(ACME))
    with server.client("rule-author") as author:
        tested = author.post("/v1/packs/acme-lab/test")
        diffed = author.get("/v1/packs/acme-lab/diff")
    assert tested.status_code == 200, tested.text
    assert diffed.status_code == 200, diffed.text
    expected_test = as_uploaded(cli_json("rules", "test", str(ACME), "--format", "json"),
                                ACME)
    expected_diff = as_uploaded(cli_json("rules", "diff", str(BASE), str(ACME),
                                         "--format", "json"), ACME)
    test_answer, diff_answer = tested.json(), diffed.json()
    assert test_answer.pop("pack") == diff_answer.pop("pack") == "acme-lab"
    assert test_answer.pop("version") == diff_answer.pop("version")
    assert test_answer == expected_test
    assert all(case["passed"] for case in test_answer["cases"])
    assert diff_answer == expected_diff
    assert diff_answer["rules_added"]


def test_a_failing_case_is_reported_not_raised(server: Server) -> None:
    files = packs.read_pack_files(ACME)
    files["tests/10-acme.yaml"] = files["tests/10-acme.yaml"].replace(
        "decision: proceed", "decision: pause", 1)
    upload(server, files)
    with server.client("rule-author") as author:
        answer = author.post("/v1/packs/acme-lab/test").json()
    failed = [case for case in answer["cases"] if not case["passed"]]
    assert len(failed) == 1 and failed[0]["file"] == "tests/10-acme.yaml"
    assert failed[0]["diff"]


def test_roles_and_unknown_drafts(server: Server) -> None:
    with server.client("analyst") as analyst:
        assert analyst.post("/v1/packs/acme-lab/test").status_code == 403
    with server.client("rule-author") as author:
        missing = author.get("/v1/packs/no-such-pack/diff")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
