"""docs/service.md shows only what is real: it describes every endpoint the service has,
and each of its curl examples runs (with bash and curl, as a reader would) against a
live `asl serve` on a database `asl batch` filled, and succeeds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_server import Server, run_asl, start_server

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "service.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
HEADING = re.compile(r"^### (.+)$", re.M)
ENDPOINT = re.compile(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`]*)`")


def placeholders(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = f"sqlite:///{tmp_path_factory.mktemp('docs')}/asl.db"
    stored = run_asl("batch", str(REPO / "examples"), "--db", db)
    assert stored.returncode == 0, stored.stderr
    running = start_server(db, tmp_path_factory.mktemp("serve") / "serve.log")
    yield running
    assert running.stop() in (0, -signal.SIGTERM)


def curl_blocks() -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == "bash"
            and "$ASL" in body]


def test_every_endpoint_is_described(server: Server) -> None:
    described = {(method, placeholders(path)) for heading in HEADING.findall(DOC.read_text())
                 for method, path in ENDPOINT.findall(heading)}
    served = {(method.upper(), placeholders(path))
              for path, operations in httpx.get(f"{server.url}/openapi.json").json()[
                  "paths"].items() for method in operations}
    served.add(("GET", "/openapi.json"))
    assert served <= described, served - described


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")),
                    reason="the examples use curl and jq (Debian's curl and jq packages)")
def test_the_curl_examples_run(server: Server) -> None:
    env = {**os.environ, "ASL": server.url, "TOKEN": server.token("viewer"),
           "ANALYST": server.token("analyst"),
           "AUTHOR": server.token("rule-author", "bob"),
           "ADMIN": server.token("admin", "alice")}
    blocks = curl_blocks()
    assert len(blocks) == 19  # one per endpoint
    for block in blocks:
        script = "set -euo pipefail\n" + block.replace("curl -s ", "curl -s --fail-with-body ")
        done = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), block
    with httpx.Client(base_url=server.url) as client:
        packs = client.get("/health").json()["packs"]
    assert [p["name"] for p in packs] == ["rsp-2.1", "acme-lab"]  # the examples did it
