"""Benchmark: the web UI's pages, server side, with 100,000 stored models.

Fills a SQLite database with `asl batch examples/`, then copies those assessments under
new model ids until N models are stored (the copies are real stored results: each page
reads them as it reads any other). Then, in one process, through FastAPI's TestClient
with a logged-in session, times each page (median and worst of several requests, wall
and CPU) and prints its ratio to the baseline measured in the same run: `GET /health`
(the service's cheapest answer) and `GET /v1/models` (the API's page of the same
listing). Target (issue 12): every page under 200 ms server-side at 100,000 models.

    python benchmarks/ui_bench.py             # 100,000 models
    python benchmarks/ui_bench.py -n 10000    # a quick run
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from service_server import make_token  # noqa: E402

from service.app import create_app  # noqa: E402
from service.config import ServiceConfig  # noqa: E402
from store.db import connect  # noqa: E402

TARGET_MS = 200.0
REPEAT = 7
COLUMNS = ("evidence_hash, pack_name, pack_version, input_hash, assessed_at, batch_id, level, "
           "required, scalars, decision, missing_safeguards, actions, result, provenance, "
           "kinds, pack_stack, framework, contract_hash")


def fill(url: str, models: int) -> int:
    """Store the examples, then copies of them under new ids, until `models` are stored."""
    done = subprocess.run([str(Path(sys.executable).with_name("asl")), "batch",
                           str(REPO / "examples"), "--db", url], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    engine = connect(url)
    with engine.begin() as conn:
        seeds = conn.exec_driver_sql("SELECT count(DISTINCT model_id) FROM assessment"
                                     ).scalar_one()
        copies = max(0, -(-(models - seeds) // seeds))
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO model (id, first_assessed) SELECT m.id || '-c' || n.i, "
            "m.first_assessed FROM model m CROSS JOIN n", (copies,))
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            f"INSERT INTO assessment (model_id, {COLUMNS}) SELECT a.model_id || '-c' || n.i, "
            f"{', '.join('a.' + c.strip() for c in COLUMNS.split(','))} "
            "FROM assessment a CROSS JOIN n "
            "WHERE a.id IN (SELECT max(id) FROM assessment GROUP BY model_id)", (copies,))
        total = conn.exec_driver_sql("SELECT count(DISTINCT model_id) FROM assessment"
                                     ).scalar_one()
    engine.dispose()
    return int(total)


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (Graphviz's `dot`,
    which draws a model page's why-graph): the server's whole work for a page."""
    children = os.times()  # whole clock ticks: fine enough for a child's seconds
    return time.process_time() + children.children_user + children.children_system


def timed(client: TestClient, path: str, headers: dict[str, str] | None = None
          ) -> tuple[float, float, float]:
    """(median wall ms, worst wall ms, median CPU ms, Graphviz included) of REPEAT
    requests after a warm-up."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    walls, cpus = [], []
    for _ in range(REPEAT):
        wall, cpu = time.perf_counter(), cpu_seconds()
        client.get(path, headers=headers)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((cpu_seconds() - cpu) * 1000)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--models", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/asl.db"
        started = time.perf_counter()
        stored = fill(url, args.models)
        print(f"{stored:,} models stored in {time.perf_counter() - started:.1f} s")
        token = make_token(url, "analyst", "bench")
        with TestClient(create_app(ServiceConfig(url, rate_limit=None)),
                        base_url="http://testserver") as client:
            form = client.get("/ui/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf
            client.post("/ui/login", data={"token": token, "csrf": csrf.group(1)},
                        headers={"Origin": "http://testserver"})
            bearer = {"Authorization": f"Bearer {token}"}
            health = timed(client, "/health")
            api = timed(client, "/v1/models", bearer)
            print(f"{'baseline':44} {'median ms':>10} {'worst ms':>9} {'cpu ms':>8}")
            print(f"{'GET /health':44} {health[0]:10.1f} {health[1]:9.1f} {health[2]:8.1f}")
            print(f"{'GET /v1/models':44} {api[0]:10.1f} {api[1]:9.1f} {api[2]:8.1f}")
            print()
            print(f"{'page':44} {'median ms':>10} {'worst ms':>9} {'cpu ms':>8} "
                  f"{'/health':>8} {'/v1/models':>10}  target {TARGET_MS:.0f} ms")
            last = -(-stored // 50)
            slow = []
            for path in ("/ui/models", f"/ui/models?page={last}",
                         "/ui/models?asl=ASL-3&sort=-assessed",
                         "/ui/models?decision=pause&sort=-asl&page=20",
                         "/ui/models?asl=ASL-2&sort=decision&page=500",
                         f"/ui/models?sort=-assessed&page={last - 5}", "/ui/models?q=kite-c99",
                         "/ui/models/larkspur-kite-4-c500", "/ui/models/larkspur-kite-4",
                         "/ui/models/larkspur-kite-4/what-if", "/ui/rules",
                         "/ui/rules/requirements.highest"):
                median, worst, cpu = timed(client, path)
                ok = "ok" if median < TARGET_MS else "SLOW"
                if median >= TARGET_MS:
                    slow.append(path)
                print(f"{path:44} {median:10.1f} {worst:9.1f} {cpu:8.1f} "
                      f"{median / health[0]:8.1f} {median / api[0]:10.2f}  {ok}")
            print()
            print("every page under target" if not slow else f"over target: {slow}")
            print(f"load average while measuring: {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
