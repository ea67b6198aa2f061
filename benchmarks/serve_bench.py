"""Benchmark: the HTTP service under load, against the in-process rate in the same run.

Starts `asl serve --workers 2` on a fresh SQLite database on a loopback port (rate limit
off), then, from 32 concurrent clients (one keep-alive connection each):

1. posts single-model assessments (`POST /v1/assess?store=true`, distinct synthetic
   models from benchmarks/synth.py, each stored), then checks that the database holds
   one stored assessment per model;
2. reads `GET /v1/models/{model}/why?format=json` of each stored model;
3. reads `GET /v1/models/{model}/history` of each: an authenticated request with one
   indexed read and a small answer, the floor of what any request costs here (HTTP,
   routing, the token check, a thread hop, one query);
4. in this process, assesses the same models through the engine's front door as
   `asl assess --format json` does (one process; the service has two).

The clients are `wrk` (Debian package `wrk`), a C load generator, driven by
benchmarks/serve_bench.lua: it sends each phase's requests (written to files beforehand,
one a line) exactly once, spread over `--wrk-threads` event-loop threads, and prints
what it sent and answered and its latency histogram as JSON. wrk adds samples to that
histogram for coordinated omission (its correction for open-loop load); the clients here
are a closed loop, so that correction is undone exactly before the percentiles are taken
(a check: the counts left add up to the requests wrk timed). `--client httpx` runs the
former client instead, 32 Python threads with httpx in this process, which costs the
machine milliseconds of CPU per request beside the server's; `--client both` runs each
against a server and database of its own, with the same models, to compare them.

Prints the in-process rate, then per client and phase requests/second, p50 and p99
latency (both clients: the rank round(p/100 * count + 0.5), as wrk takes it, over
microseconds), CPU milliseconds per request of the server processes and of the client
(wrk's process by its own clock when its last thread is done, or this process while the
httpx threads ran), the ratio of the service's assess rate to twice the in-process rate
(two workers), and CPU ratios; with `--client both`, wrk's figures over httpx's.
Targets (issue 11): ratio >= 0.5; p99 < 250 ms for assess and < 50 ms for a stored
`why`. Each phase sends at most N requests and stops after 300 s; nothing leaves the
loopback interface. Exits 1 if a request was not sent, not answered or answered outside
2xx, or the database does not hold the assessments; 2 if wrk is needed and not installed.

    python benchmarks/serve_bench.py               # 640 assessments, 640 reads, wrk
    python benchmarks/serve_bench.py -n 2000 --clients 32
    python benchmarks/serve_bench.py --client both # wrk, then httpx, each its own server
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synth
from service_server import make_token, start_server

from engine.api import Body, assess
from engine.assess import evaluator_for
from engine.tuning import tune_for_throughput
from knowledge_graph.report import assessment_document

TIME_LIMIT_S = 300  # per phase
WRK_TIMEOUT_S = 30  # wrk leaves a slower answer out of its histogram (counted as such)
WRK_SCRIPT = Path(__file__).resolve().with_suffix(".lua")
WRK_MARK = "serve_bench: "
# What a wrk thread writes on standard error once its share is answered, with the CPU
# seconds wrk's process has used so far (its report, made after that, is not load).
THREAD_DONE = "serve_bench: thread done, CPU s "
INSTALL_WRK = ("serve_bench: wrk is not installed; install it with `apt-get install -y wrk` "
               "(or run with --client httpx)")


@dataclass(frozen=True)
class Request:
    """One request of a phase: method, path with its query, and a JSON body or none."""

    method: str
    path: str
    body: bytes | None = None

    def line(self) -> str:
        """The request as a line of serve_bench.lua's request files."""
        body = b"" if self.body is None else b" " + self.body
        return f"{self.method} {self.path}" + body.decode("ascii")


@dataclass
class Phase:
    """What one phase sent and got back: counts, latencies (microseconds, as a histogram),
    its wall time and the CPU seconds the server and the client spent in it."""

    name: str
    expected: int
    sent: int = 0
    answered: int = 0
    refused: int = 0  # answered outside 2xx
    latency_us: Counter[int] = field(default_factory=Counter)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    problems: list[str] = field(default_factory=list)

    def failed(self) -> bool:
        return bool(self.problems or self.refused or self.sent != self.expected
                    or self.answered != self.expected)

    def rate(self) -> float:
        return self.answered / self.wall if self.wall else 0.0

    def p_ms(self, p: float) -> float:
        return percentile(self.latency_us, p) / 1000

    def server_ms(self) -> float:
        """Server CPU milliseconds per answered request."""
        return 1000 * self.server_cpu / max(1, self.answered)

    def client_ms(self) -> float:
        """Client CPU milliseconds per answered request."""
        return 1000 * self.client_cpu / max(1, self.answered)

    def line(self) -> str:
        if not self.answered:
            return f"{self.name}: no request answered ({'; '.join(self.problems[:3])})"
        text = (f"{self.name:<22} {self.answered:>6} req  {self.rate():>8.1f} req/s  "
                f"p50 {self.p_ms(50):>7.1f} ms  p99 {self.p_ms(99):>7.1f} ms  "
                f"CPU ms/req: server {self.server_ms():>6.2f}, client {self.client_ms():>5.2f}")
        if self.failed():
            text += (f"\n    FAILED: sent {self.sent}, answered {self.answered} of "
                     f"{self.expected}, {self.refused} outside 2xx; "
                     + "; ".join(self.problems[:3]))
        return text


def percentile(histogram: Counter[int], p: float) -> float:
    """The value of rank round(p/100 * count + 0.5) (wrk's stats_percentile): the same
    definition for both clients."""
    count = sum(histogram.values())
    if not count:
        return math.inf
    rank = math.floor((p / 100 * count + 0.5) + 0.5)  # C's round() of a positive number
    total = 0
    for value in sorted(histogram):
        total += histogram[value]
        if total >= rank:
            return float(value)
    return float(max(histogram))


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


def run_httpx_phase(phase: Phase, url: str, token: str, clients: int,
                    requests: list[Request], pid: int) -> None:
    """Send `requests` from `clients` threads of this process, each with its own
    connection, taking the next request from a shared list."""
    lock = threading.Lock()
    todo = iter(requests)
    latencies: list[float] = []
    deadline = time.monotonic() + TIME_LIMIT_S

    def client_loop() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    req = next(todo, None)
                    if req is None:
                        return
                    phase.sent += 1
                headers = {"Content-Type": "application/json"} if req.body else {}
                start = time.perf_counter()
                try:
                    answer = client.request(req.method, req.path, content=req.body,
                                            headers=headers)
                except httpx.HTTPError as exc:
                    with lock:
                        phase.problems.append(f"{req.method} {req.path}: {exc}")
                    continue
                took = time.perf_counter() - start
                with lock:
                    phase.answered += 1
                    latencies.append(took)
                    if not 200 <= answer.status_code < 300:
                        phase.refused += 1
                        if phase.refused == 1:
                            phase.problems.append(
                                f"first refusal: {answer.status_code} {answer.text[:200]}")

    cpu_before, own_before = server_cpu(pid), time.process_time()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.wall = time.perf_counter() - start
    phase.server_cpu = server_cpu(pid) - cpu_before
    phase.client_cpu = time.process_time() - own_before
    phase.latency_us = Counter(round(took * 1e6) for took in latencies)


def without_correction(histogram: Counter[int], duration_us: int, requests: int,
                       connections: int) -> Counter[int]:
    """wrk's latency histogram as measured, before stats_correct: that added, for each
    sample of n >= 2e microseconds (e = duration / (requests / connections), integers),
    one at each of n - e, n - 2e, ... while above e. Undone from the top down (a bin
    gets samples only from bins above it)."""
    per_connection = requests // connections
    if per_connection == 0:
        return Counter(histogram)
    expected = duration_us // per_connection
    measured: Counter[int] = Counter()
    top = max(histogram, default=0)
    for value in sorted(histogram, reverse=True):
        count = histogram[value]
        if value > expected:
            count -= sum(measured[above] for above in range(value + expected, top + 1, expected))
        if count < 0:
            raise ValueError(f"wrk's latency histogram is not one stats_correct made "
                             f"(bin {value} us)")
        if count:
            measured[value] = count
    return measured


def run_wrk_phase(phase: Phase, url: str, token: str, clients: int, wrk_threads: int,
                  requests: list[Request], pid: int, work: Path) -> None:
    """Send `requests` with wrk (serve_bench.lua), each once, over `clients` connections
    in `wrk_threads` threads; stop wrk as soon as every thread has had its share answered
    (wrk's -d is the time limit)."""
    threads = max(1, min(wrk_threads, clients, len(requests)))
    connections = clients - clients % threads  # wrk gives each thread clients / threads
    prefix = work / f"requests-{re.sub(r'[^A-Za-z0-9]+', '-', phase.name)}-"
    for k in range(threads):
        Path(f"{prefix}{k}").write_text(
            "".join(req.line() + "\n" for req in requests[k::threads]), encoding="ascii")
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{TIME_LIMIT_S}s",
               "--timeout", f"{WRK_TIMEOUT_S}s", "-H", f"Authorization: Bearer {token}",
               "-s", str(WRK_SCRIPT), url, str(prefix)]
    cpu_before = server_cpu(pid)
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    assert wrk.stdout is not None and wrk.stderr is not None
    stderr: list[str] = []
    done_threads, client_cpu = 0, 0.0
    with selectors.DefaultSelector() as selector:
        selector.register(wrk.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + TIME_LIMIT_S + 60
        pending = b""
        while done_threads < threads and time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                continue
            chunk = os.read(wrk.stderr.fileno(), 65536)
            if not chunk:
                break  # wrk ended: its -d ran out, or it failed
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for text in (line.decode(errors="replace") for line in lines):
                if text.startswith(THREAD_DONE):
                    done_threads += 1
                    client_cpu = max(client_cpu, float(text[len(THREAD_DONE):]))
                else:
                    stderr.append(text)
    if done_threads == threads:
        wrk.send_signal(signal.SIGINT)  # cut its -d sleep short, as Ctrl-C does
    try:
        out, err = wrk.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        wrk.kill()
        out, err = wrk.communicate()
    phase.server_cpu = server_cpu(pid) - cpu_before
    stderr += [line for line in err.decode(errors="replace").splitlines()
               if not line.startswith(THREAD_DONE)]
    report = next((line[len(WRK_MARK):] for line in out.decode(errors="replace").splitlines()
                   if line.startswith(WRK_MARK)), None)
    if wrk.returncode != 0 or report is None:
        phase.problems.append(f"wrk exited with {wrk.returncode} without its report: "
                              + " | ".join(stderr[-5:]))
        return
    found = json.loads(report)
    if done_threads < threads:
        phase.problems.append(f"stopped by the {TIME_LIMIT_S} s limit")
    phase.client_cpu = client_cpu if done_threads == threads else math.nan
    phase.sent, phase.answered, phase.refused = found["sent"], found["answered"], found["refused"]
    phase.wall = found["duration_us"] / 1e6
    phase.problems += [f"first refusal: {text}" for text in found["refusals"]]
    phase.problems += stderr
    errors = {name: count for name, count in found["errors"].items()
              if count and name != "status"}
    if errors:
        phase.problems.append(f"wrk socket errors {errors}")
    if found["share"] != phase.expected or found["requests"] != phase.answered:
        phase.problems.append(f"wrk read {found['share']} requests and counted "
                              f"{found['requests']} answers")
    measured = without_correction(Counter({v: c for v, c in found["latency_us"]}),
                                  found["duration_us"], found["requests"], connections)
    if sum(measured.values()) != found["requests"] - found["errors"]["timeout"]:
        phase.problems.append("wrk's latency histogram does not add up to its answers")
    phase.latency_us = measured


def stored_assessments(db_file: Path) -> tuple[int, int]:
    """Assessments stored in the SQLite database, and the models they are of."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT model_id) FROM assessment"
                           ).fetchone()
    return int(row[0]), int(row[1])


def serve_and_load(client: str, args: argparse.Namespace, bodies: list[bytes],
                   ids: list[str]) -> list[Phase]:
    """Start a server on a fresh database and run the three phases with `client`."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work}/asl.db"
        server = start_server(db, work / "serve.log", "--workers", str(args.workers),
                              "--rate-limit", "0")
        try:
            token = make_token(db, "analyst", "bench")
            # Each worker compiles the pack once, on its first assessment: warmed here on
            # as many connections as the load has, each a worker's, as the kernel spreads
            # them (all on one worker: a chance of 2 in 2**clients), not on one
            # connection, which one worker would hold (the other's first requests then
            # waited for its compile, in the load's latencies).
            for body in itertools.islice(itertools.cycle(bodies), args.clients):
                with httpx.Client(base_url=server.url, timeout=120,
                                  headers={"Authorization": f"Bearer {token}"}) as warm:
                    answer = warm.post("/v1/assess?store=false", content=body,
                                       headers={"Content-Type": "application/json"})
                    answer.raise_for_status()
            phases = [
                Phase("POST /v1/assess", len(bodies)),
                Phase("GET why?format=json", len(ids)),
                Phase("GET history (floor)", len(ids)),
            ]
            quoted = [quote(i, safe="") for i in ids]
            lists = [
                [Request("POST", "/v1/assess?store=true", body) for body in bodies],
                [Request("GET", f"/v1/models/{i}/why?format=json") for i in quoted],
                [Request("GET", f"/v1/models/{i}/history") for i in quoted],
            ]
            for phase, requests in zip(phases, lists, strict=True):
                if client == "wrk":
                    run_wrk_phase(phase, server.url, token, args.clients, args.wrk_threads,
                                  requests, server.proc.pid, work)
                else:
                    run_httpx_phase(phase, server.url, token, args.clients, requests,
                                    server.proc.pid)
                if phase is phases[0]:
                    stored = stored_assessments(work / "asl.db")
                    if stored != (len(ids), len(ids)):
                        phase.problems.append(
                            f"the database holds {stored[0]} assessments of {stored[1]} "
                            f"models, not {len(ids)} of {len(ids)}")
        finally:
            server.stop()
    return phases


def in_process_rate(bodies: list[bytes]) -> tuple[float, float]:
    """Models/second and CPU seconds per model assessing one body each, as the CLI's
    `asl assess --format json` does (the pack compiled once, beforehand; the garbage
    collector tuned as the asl command and the service's workers tune it)."""
    tune_for_throughput()
    evaluator = evaluator_for([])
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        run = assess([Body(body, "json")], evaluator=evaluator)
        for done in run.assessments:
            assessment_document(done)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(bodies) / wall, cpu / len(bodies)


def report(client: str, phases: list[Phase], workers: int, rate: float,
           cpu_per_model: float) -> None:
    """The phase lines of one client's run and its ratios to the in-process run."""
    posted, read, floor = phases
    print(f"client: {client}")
    for phase in phases:
        print(phase.line())

    ratio = posted.rate() / (workers * rate) if rate else 0.0
    print(f"service assess rate / ({workers} x in-process rate): {ratio:.2f} "
          f"(target >= 0.5)")
    print(f"server CPU per assess / in-process CPU per model: "
          f"{posted.server_ms() / (1000 * cpu_per_model):.2f}")
    print(f"server CPU per assess / per floor request: "
          f"{posted.server_ms() / floor.server_ms():.2f}; "
          f"per why / per floor request: {read.server_ms() / floor.server_ms():.2f}")
    print(f"p99 assess {posted.p_ms(99):.1f} ms (target < 250); "
          f"p99 why {read.p_ms(99):.1f} ms (target < 50)")


def compare(runs: dict[str, list[Phase]]) -> None:
    """wrk's figures over httpx's, phase by phase (both clients in one run)."""
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"

    print("wrk / httpx:")
    for ours, theirs in zip(runs["wrk"], runs["httpx"], strict=True):
        print(f"  {ours.name:<22} req/s {ratio(ours.rate(), theirs.rate())}  "
              f"p50 {ratio(ours.p_ms(50), theirs.p_ms(50))}  "
              f"p99 {ratio(ours.p_ms(99), theirs.p_ms(99))}  "
              f"CPU/req: server {ratio(ours.server_ms(), theirs.server_ms())}, "
              f"client {ratio(ours.client_ms(), theirs.client_ms())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=640, help="assessments (and reads) to send")
    parser.add_argument("--clients", type=int, default=32,
                        help="concurrent clients (connections)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client", choices=("wrk", "httpx", "both"), default="wrk",
                        help="load generator: wrk (default), the former Python threads, "
                             "or both, one after the other, each with its own server")
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk's threads (event loops); one keeps up with 32 "
                             "connections here")
    args = parser.parse_args()
    if args.n < 1 or args.clients < 1 or args.workers < 1 or args.wrk_threads < 1:
        parser.error("-n, --clients, --workers and --wrk-threads must be at least 1")
    clients = ["wrk", "httpx"] if args.client == "both" else [args.client]
    if "wrk" in clients and shutil.which("wrk") is None:
        print(INSTALL_WRK, file=sys.stderr)
        return 2
    load_start = os.getloadavg()[0]  # other work on the machine skews every figure
    models = [json.loads(json.dumps(m, default=str))
              for m in synth.generate_models(args.n, seed=11)]
    # The same bytes from both clients: compact JSON, ASCII only (one line each for wrk).
    bodies = [json.dumps(m, separators=(",", ":")).encode("ascii") for m in models]
    ids = [str(m["model"]["id"]) for m in models]
    runs = {client: serve_and_load(client, args, bodies, ids) for client in clients}
    load_served = os.getloadavg()[0]
    rate, cpu_per_model = in_process_rate(bodies)
    print(f"asl serve --workers {args.workers}, {args.clients} clients, {args.n} models "
          f"(loopback, SQLite); load average {load_start:.1f} at the start, "
          f"{load_served:.1f} after serving, {os.getloadavg()[0]:.1f} at the end "
          f"({os.cpu_count()} CPUs)")
    print(f"{'in-process assess':<22} {args.n:>6} mod  {rate:>8.1f} mod/s  "
          f"CPU {1000 * cpu_per_model:.2f} ms/model")
    for client, phases in runs.items():
        report(client, phases, args.workers, rate, cpu_per_model)
    if len(runs) == 2:
        compare(runs)
    return 1 if any(phase.failed() for phases in runs.values() for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
