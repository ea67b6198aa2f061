"""Draft packs over real HTTP, on SQLite and PostgreSQL: upload validated by what `asl
rules validate` runs (in a limited child process), four-eyes activation, the active
stack in /health and /v1/rules, the decision log, and hostile uploads that get their
status and a problem body while nothing is stored and the server keeps serving."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from service_server import Server, run_asl, start_server
from service_server import module_database as module_database  # the fixture

from batch.stack import layer_version
from cli.main import main
from service import packcheck
from service.packcheck import Layer, check_draft
from store import audit, packs
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
ACME = REPO / "examples" / "packs" / "acme-lab"
MAX_BODY = 1024 * 1024


def acme_files(**changes: str) -> dict[str, str]:
    """The acme-lab overlay's files, with some replaced."""
    files = packs.read_pack_files(ACME)
    files.update(changes)
    return files


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    assert run_asl("db", "upgrade", "--db", module_database).returncode == 0
    running = start_server(module_database, tmp_path_factory.mktemp("serve") / "serve.log",
                           "--max-body", str(MAX_BODY))
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text
    return dict(response.json())


def log_entries(server: Server) -> list[audit.Decision]:
    engine = connect(server.db_url)
    try:
        return list(audit.entries(engine))
    finally:
        engine.dispose()


def stored_state(server: Server) -> tuple[Any, int]:
    """What an admin sees of the packs, and how long the decision log is (after making
    the tokens the tests use, which are entries of their own)."""
    server.token("rule-author")
    with server.client("admin") as client:
        shown = client.get("/v1/packs").json()
    return shown, len(log_entries(server))


def test_upload_review_and_four_eyes_activation(server: Server, tmp_path: Path) -> None:
    files = acme_files()
    bob_author = server.client(token=server.token("rule-author", "bob"))
    bob_admin = server.client(token=server.token("admin", "bob"))
    alice = server.client(token=server.token("admin", "alice"))
    uploaded = bob_author.put("/v1/packs/acme-lab", json={"files": files})
    assert uploaded.status_code == 201, uploaded.text
    draft = uploaded.json()
    version = packs.files_version(files)  # all of its files, its tests' included
    assert draft["version"] == version and draft["state"] == "draft"
    assert draft["uploader"] == "bob"
    entry = log_entries(server)[-1]
    assert (entry.decision_id, entry.action, entry.actor, entry.role, entry.pack,
            entry.pack_version) == (draft["decision_id"], "pack.upload", "bob", "rule-author",
                                    "acme-lab", version)
    assert entry.input_sha256 == audit.sha256_of({"name": "acme-lab", "files": files})

    listed = bob_author.get("/v1/packs").json()["packs"]
    assert [(p["name"], p["state"]) for p in listed] == [("rsp-2.1", "base"),
                                                         ("acme-lab", "draft")]
    assert listed[1]["uploader"] == "bob" and listed[1]["version"] == version

    same_person = problem(bob_admin.post("/v1/packs/acme-lab/activate",
                                         json={"version": version}), 409)
    assert "four eyes" in same_person["detail"]
    stale = problem(alice.post("/v1/packs/acme-lab/activate",
                               json={"version": "sha256:" + "0" * 64}), 409)
    assert "has changed since" in stale["detail"]
    activated = alice.post("/v1/packs/acme-lab/activate", json={"version": version})
    assert activated.status_code == 200, activated.text
    assert activated.json()["activated_by"] == "alice"
    assert [p["name"] for p in activated.json()["stack"]] == ["rsp-2.1", "acme-lab"]
    entry = log_entries(server)[-1]
    assert (entry.decision_id, entry.action, entry.actor, entry.pack_version) == \
        (activated.json()["decision_id"], "pack.activate", "alice", version)

    health = httpx.get(f"{server.url}/health").json()
    assert [(p["name"], p["version"]) for p in health["packs"]][1] == ("acme-lab", version)
    expected = json.loads(CliRunner().invoke(main, ["rules", "list", "--pack", str(ACME),
                                                    "--format", "json"]).output)
    served = alice.get("/v1/rules", params={"pack": "acme-lab"}).json()
    assert [(r["id"], r["stratum"], r["line"]) for r in served] == \
        [(r["id"], r["stratum"], r["line"]) for r in expected if r["pack"] == "acme-lab"]
    assert served[0]["file"] == "acme-lab/rules/10-acme.yaml"
    assert problem(alice.post("/v1/packs/acme-lab/activate", json={"version": version}),
                   404)

    # A new version is a draft beside the active one until it is activated.
    changed = acme_files(**{"pack.yaml": files["pack.yaml"].replace(
        "title: Acme Lab additions", "title: Acme Lab's additions")})
    again = bob_author.put("/v1/packs/acme-lab", json={"files": changed})
    assert again.status_code == 201, again.text
    states = [(p["name"], p["state"], p["version"])
              for p in alice.get("/v1/packs").json()["packs"]]
    assert states[1:] == [("acme-lab", "active", version),
                          ("acme-lab", "draft", packs.files_version(changed))]
    assert again.json()["version"] == packs.files_version(changed) != version
    for client in (bob_author, bob_admin, alice):
        client.close()
    assert run_asl("audit", "verify", "--db", server.db_url).returncode == 0


def test_a_draft_whose_tests_changed_after_review_is_another_version(server: Server) -> None:
    """A pack's version is the hash of all of its files: a draft whose test cases were
    changed, or added to, after review is refused activation at the reviewed version
    (409). What a result records of the pack is the hash of its rules, which its tests
    do not change: activating such a version re-assesses nothing."""
    files = acme_files()
    author = server.client(token=server.token("rule-author", "bob"))
    alice = server.client(token=server.token("admin", "alice"))
    analyst = server.client("analyst")
    model = (ACME / "example-model.yaml").read_text()
    # acme-lab in force as it is, and a model assessed and stored with it.
    live = author.put("/v1/packs/acme-lab", json={"files": files}).json()["version"]
    assert alice.post("/v1/packs/acme-lab/activate", json={"version": live}).status_code == 200
    first = analyst.post("/v1/assess", content=model,
                         headers={"Content-Type": "application/yaml"})
    assert first.status_code == 200, first.text
    history = analyst.get("/v1/models/acme-quill-3/history").json()

    reviewed = author.put("/v1/packs/acme-lab", json={"files": files})
    assert reviewed.status_code == 201, reviewed.text
    version = reviewed.json()["version"]
    assert version == packs.files_version(files)
    assert author.put("/v1/packs/acme-lab", json={"files": files}).json()["version"] == version
    case = files["tests/10-acme.yaml"]
    assert "- name: Cyber operations not ruled out" in case
    edited = acme_files(**{"tests/10-acme.yaml": case.replace(
        "- name: Cyber operations not ruled out", "- name: Cyber operations open")})
    added = acme_files(**{"tests/20-more.yaml": case})
    for changed in (edited, added):
        uploaded = author.put("/v1/packs/acme-lab", json={"files": changed})
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["version"] == packs.files_version(changed) != version
        [draft] = [p for p in alice.get("/v1/packs").json()["packs"] if p["state"] == "draft"]
        assert draft["version"] == uploaded.json()["version"]
        refused = problem(alice.post("/v1/packs/acme-lab/activate",
                                     json={"version": version}), 409)
        assert "has changed since" in refused["detail"]

    # The last upload, reviewed at its own version, goes live; the stored model is not
    # assessed again for it, and its result's stack names the rules' hash.
    activated = alice.post("/v1/packs/acme-lab/activate",
                           json={"version": packs.files_version(added)})
    assert activated.status_code == 200, activated.text
    health = httpx.get(f"{server.url}/health").json()["packs"]
    assert health[1] == {"name": "acme-lab", "version": packs.files_version(added)}
    again = analyst.post("/v1/assess", content=model,
                         headers={"Content-Type": "application/yaml"})
    assert again.json()["results"] == first.json()["results"]
    assert analyst.get("/v1/models/acme-quill-3/history").json() == history
    stored = [row for row in json.loads(CliRunner().invoke(
        main, ["list", "--db", server.db_url, "--format", "json"]).stdout)
        if row["model"] == "acme-quill-3"]
    assert [layer["version"] for layer in stored[0]["pack_stack"]][1] == layer_version(ACME)
    for client in (author, alice, analyst):
        client.close()


def test_problems_are_what_asl_rules_validate_reports(server: Server, tmp_path: Path) -> None:
    bad_rule = (ACME / "rules" / "10-acme.yaml").read_text().replace(
        "- match: status", "- match: statuss")
    files = acme_files(**{"rules/10-acme.yaml": bad_rule}).items()
    local = tmp_path / "acme-lab"
    for name, content in files:
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_text(content)
    printed = CliRunner().invoke(main, ["rules", "validate", str(local), "--format", "json"])
    assert printed.exit_code == 1
    expected = json.loads(printed.stdout)
    before = stored_state(server)
    with server.client("rule-author") as client:
        body = problem(client.put("/v1/packs/acme-lab", json={"files": dict(files)}), 422)
    assert [(p["file"], p["line"], p["code"]) for p in body["problems"]] == \
        [(Path(p["file"]).relative_to(local).as_posix(), p["line"], p["code"])
         for p in expected]
    unknown = [p for p in body["problems"] if p["code"] == "unknown-kind"]
    assert unknown and "statuss" in unknown[0]["message"]
    assert str(local) not in json.dumps(body)  # no server path, however the CLI names it
    assert stored_state(server) == before


@pytest.mark.parametrize(("name", "changes", "code"), [
    ("other-name", {}, "pack-name"),
    ("acme-lab", {"pack.yaml": "standalone: true\n" + acme_files()["pack.yaml"]},
     "standalone"),
    ("rsp-2.1", {"pack.yaml": acme_files()["pack.yaml"].replace("name: acme-lab",
                                                                "name: rsp-2.1")},
     "standalone"),
    ("acme-lab", {"pack.yaml": acme_files()["pack.yaml"]
                  + "kinds:\n  model: {origin: evidence, fields: {model: str}}\n"},
     "standalone"),  # declares evidence kinds: a framework, not an overlay
    ("acme-lab", {"rules/bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))}, "yaml"),
])
def test_refused_packs(server: Server, name: str, changes: dict[str, str], code: str) -> None:
    before = stored_state(server)
    with server.client("rule-author") as client:
        body = problem(client.put(f"/v1/packs/{name}", json={"files": acme_files(**changes)}),
                       422)
    assert code in {p["code"] for p in body["problems"]}, body
    assert all({"file", "line", "code", "message"} <= set(p) for p in body["problems"])
    assert stored_state(server) == before


def test_hostile_uploads(server: Server) -> None:
    before = stored_state(server)
    url = f"{server.url}/v1/packs/acme-lab"
    auth = {"Authorization": f"Bearer {server.token('rule-author')}"}
    as_json = {**auth, "Content-Type": "application/json"}
    nested = "[" * 100_000 + "]" * 100_000

    def put(content: Any, headers: dict[str, str]) -> httpx.Response:
        return httpx.put(url, content=content, headers=headers, timeout=60)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    for names, code in ((["../pack.yaml"], "file-name"), (["/etc/passwd"], "file-name"),
                        (["rules\\x.yaml"], "file-name"), (["rules/X.yaml"], "file-name"),
                        (["pack.yaml\n"], "file-name"), (["rules/x.yml"], "file-name"),
                        (["rules/sub/x.yaml"], "file-name"),
                        ([f"tests/t{i}.yaml" for i in range(201)], "too-many-files")):
        files = {**acme_files(), **dict.fromkeys(names, "[]\n")}
        body = problem(httpx.put(url, json={"files": files}, headers=auth), 422)
        assert code in {p["code"] for p in body["problems"]}
    assert problem(put(b'{"files": {', as_json), 400)["detail"].startswith("malformed JSON")
    problem(put(nested.encode(), as_json), 400)
    problem(put(json.dumps({"files": {}, "extra": 1}), as_json), 422)
    problem(put(json.dumps({"files": {"pack.yaml": 3}}), as_json), 422)
    problem(put(json.dumps({"files": acme_files()}), {**auth, "Content-Type": "text/plain"}),
            415)
    problem(put(json.dumps({"files": acme_files()}), auth), 415)
    problem(put("files: {}", {**auth, "Content-Type": "application/yaml"}), 415)
    refused = put(json.dumps({"files": acme_files()}), {**as_json, "Content-Encoding": "gzip"})
    assert problem(refused, 413) and refused.headers["accept-encoding"] == "identity"
    assert "--max-body" in problem(put(b" " * (MAX_BODY + 1), as_json), 413)["detail"]
    problem(put(chunks(), as_json), 413)  # chunked: no length to refuse up front
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert stored_state(server) == before


def test_a_runaway_pack_is_stopped_at_its_limits(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A catastrophic `cite_pattern` would take hours; the child's CPU limit ends it."""
    monkeypatch.setattr(packcheck, "CPU_SECONDS", 2)
    files = acme_files()
    files["pack.yaml"] = files["pack.yaml"].replace(
        "title: Acme", "cite_pattern: '^(a+)+$'\ntitle: Acme")
    files["rules/10-acme.yaml"] = files["rules/10-acme.yaml"].replace(
        "cite: RSP v2.1 §2", "cite: " + "a" * 40 + "!", 1)
    found = check_draft("acme-lab", files, [Layer("rsp-2.1", REPO / "rules" / "rsp-2.1")],
                        tmp_path)
    assert [p["code"] for p in found.problems] == ["limits"]
    assert list(tmp_path.iterdir()) == []  # the scratch directory is gone
