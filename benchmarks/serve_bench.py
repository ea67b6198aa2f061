"""Benchmark: the HTTP service under load, against the in-process rate in the same run.

Starts `asl serve --workers 2` on a fresh SQLite database on a loopback port (rate limit
off), then:

1. 32 concurrent clients post single-model assessments (`POST /v1/assess?store=true`,
   synthetic models from benchmarks/synth.py, each stored);
2. the same clients read `GET /v1/models/{model}/why?format=json` of stored models;
3. the same clients read `GET /v1/models/{model}/history` of stored models: an
   authenticated request with one indexed read and a small answer, the floor of what
   any request costs here (HTTP, routing, the token check, a thread hop, one query);
4. in this process, the same models are assessed through the engine's front door as
   `asl assess --format json` does (one process; the service has two).

Prints requests/second, p50 and p99 latency of each phase, the in-process rate, and the
ratio of the service's assess rate to twice the in-process rate (two workers), with CPU
seconds per request of the server processes and of the in-process run. Targets (issue
11): ratio >= 0.5; p99 < 250 ms for assess and < 50 ms for a stored `why`. Request count
and time are bounded; nothing leaves the loopback interface.

    python benchmarks/serve_bench.py               # 640 assessments, 640 reads
    python benchmarks/serve_bench.py -n 2000 --clients 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synth
from service_server import make_token, start_server

from engine.api import Body, assess
from engine.assess import evaluator_for
from knowledge_graph.report import assessment_document

TIME_LIMIT_S = 300.0  # per phase


@dataclass
class Phase:
    """Latencies (seconds) of one phase's requests, its wall time and failures."""

    name: str
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0

    def line(self) -> str:
        done = sorted(self.latencies)
        if not done:
            return f"{self.name}: no request succeeded ({self.errors[:3]})"
        p50 = statistics.median(done) * 1000
        p99 = done[min(len(done) - 1, int(len(done) * 0.99))] * 1000
        return (f"{self.name:<22} {len(done):>6} req  {len(done) / self.wall:>8.1f} req/s  "
                f"p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  "
                f"server CPU {1000 * self.cpu / len(done):>6.2f} ms/req"
                + (f"  errors {len(self.errors)}" if self.errors else ""))

    def p99_ms(self) -> float:
        done = sorted(self.latencies)
        return done[min(len(done) - 1, int(len(done) * 0.99))] * 1000 if done else float("inf")


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server and its worker processes."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def run_phase(name: str, url: str, token: str, clients: int,
              requests: list[Callable[[httpx.Client], httpx.Response]], pid: int) -> Phase:
    """Send `requests` from `clients` threads, each with its own connection."""
    phase = Phase(name)
    lock = threading.Lock()
    todo = iter(requests)
    deadline = time.monotonic() + TIME_LIMIT_S

    def client_loop() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    call = next(todo, None)
                if call is None:
                    return
                start = time.perf_counter()
                try:
                    answer = call(client)
                    ok = answer.status_code == 200
                    reason = f"{answer.status_code} {answer.text[:100]}"
                except httpx.HTTPError as exc:
                    ok, reason = False, str(exc)
                took = time.perf_counter() - start
                with lock:
                    (phase.latencies.append(took) if ok else phase.errors.append(reason))

    cpu_before = server_cpu(pid)
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.wall = time.perf_counter() - start
    phase.cpu = server_cpu(pid) - cpu_before
    return phase


def in_process_rate(models: list[dict[str, object]]) -> tuple[float, float]:
    """Models/second and CPU seconds per model assessing one body each, as the CLI's
    `asl assess --format json` does (the pack compiled once, beforehand)."""
    evaluator = evaluator_for([])
    bodies = [json.dumps(m).encode() for m in models]
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        run = assess([Body(body, "json")], evaluator=evaluator)
        for done in run.assessments:
            assessment_document(done)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(bodies) / wall, cpu / len(bodies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=640, help="assessments (and reads) to send")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]  # other work on the machine skews every figure
    models = [json.loads(json.dumps(m, default=str))
              for m in synth.generate_models(args.n, seed=11)]
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/asl.db"
        server = start_server(db, Path(tmp) / "serve.log", "--workers", str(args.workers),
                              "--rate-limit", "0")
        try:
            token = make_token(db, "analyst", "bench")
            with httpx.Client(base_url=server.url,
                              headers={"Authorization": f"Bearer {token}"}) as warm:
                for model in models[:4]:  # each worker compiles the pack once
                    warm.post("/v1/assess?store=false", json=model)

            def poster(model: dict[str, object]) -> Callable[[httpx.Client], httpx.Response]:
                return lambda c: c.post("/v1/assess?store=true", json=model)

            def reader(model_id: str) -> Callable[[httpx.Client], httpx.Response]:
                return lambda c: c.get(f"/v1/models/{model_id}/why",
                                       params={"format": "json"})

            posted = run_phase("POST /v1/assess", server.url, token, args.clients,
                               [poster(m) for m in models], server.proc.pid)
            ids = [str(m["model"]["id"]) for m in models]  # type: ignore[index]
            read = run_phase("GET why?format=json", server.url, token, args.clients,
                             [reader(i) for i in ids], server.proc.pid)

            def lister(model_id: str) -> Callable[[httpx.Client], httpx.Response]:
                return lambda c: c.get(f"/v1/models/{model_id}/history")

            floor = run_phase("GET history (floor)", server.url, token, args.clients,
                              [lister(i) for i in ids], server.proc.pid)
        finally:
            server.stop()
    load_served = os.getloadavg()[0]
    rate, cpu_per_model = in_process_rate(models)
    service_rate = len(posted.latencies) / posted.wall if posted.wall else 0.0
    print(f"asl serve --workers {args.workers}, {args.clients} clients, {args.n} models "
          f"(loopback, SQLite); load average {load_start:.1f} at the start, "
          f"{load_served:.1f} after serving, {os.getloadavg()[0]:.1f} at the end "
          f"({os.cpu_count()} CPUs)")
    print(posted.line())
    print(read.line())
    print(floor.line())
    print(f"{'in-process assess':<22} {args.n:>6} mod  {rate:>8.1f} mod/s  "
          f"CPU {1000 * cpu_per_model:.2f} ms/model")
    ratio = service_rate / (args.workers * rate) if rate else 0.0
    print(f"service assess rate / ({args.workers} x in-process rate): {ratio:.2f} "
          f"(target >= 0.5)")
    print(f"server CPU per assess / in-process CPU per model: "
          f"{posted.cpu / max(1, len(posted.latencies)) / cpu_per_model:.2f}")
    floor_cpu = floor.cpu / max(1, len(floor.latencies))
    print(f"server CPU per assess / per floor request: "
          f"{posted.cpu / max(1, len(posted.latencies)) / floor_cpu:.2f}; "
          f"per why / per floor request: {read.cpu / max(1, len(read.latencies)) / floor_cpu:.2f}")
    print(f"p99 assess {posted.p99_ms():.1f} ms (target < 250); "
          f"p99 why {read.p99_ms():.1f} ms (target < 50)")
    return 0 if not (posted.errors or read.errors or floor.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
