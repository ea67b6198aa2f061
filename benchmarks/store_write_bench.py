"""Benchmark: a batch's writes alone, `Store.save_chunk` on SQLite and on PostgreSQL, with
and without COPY (issue 13 point 5).

The same assessments (synthetic models, assessed once in this process beforehand) are
written as `asl batch` writes them -- chunks of batch.executors.CHUNK, one transaction
each, with a batch run and `based_on` -- into a fresh database each time:

- SQLite: one executemany per table (the baseline);
- PostgreSQL before: the same executemany statements (`Store(copy=False)`);
- PostgreSQL after: store.pg_bulk, COPY for the assessments (`Store`'s default there).

Into the throwaway PostgreSQL of tests/pg_server.py (local TCP, fsync off), in rounds
that alternate the three, best of the rounds. Prints each one's wall seconds, this
process's CPU seconds (the batch's writer), the server's CPU seconds (its postmaster and
backends), and the ratios: the PostgreSQL / SQLite write rate before and after, and
after / before. Target (issue): PostgreSQL at no less than half SQLite's rate.

    python benchmarks/store_write_bench.py            # 4,000 models, 3 rounds
    python benchmarks/store_write_bench.py -n 1000    # a quick run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
sys.path.insert(2, str(Path(__file__).resolve().parent.parent / "tests"))

import orjson
import pg_server
import synth
from batch_bench import busy_cpu_s
from sqlalchemy import func, select

from batch.executors import CHUNK
from batch.runner import pack_fingerprint
from batch.stack import stack_of
from batch.work import Entry, Failed, Job, assess_jobs, input_hash
from engine.assess import evaluator_for, vocabulary
from engine.evidence import load_evidence
from store.db import connect
from store.record import A, NewAssessment, Store


@dataclass
class Write:
    wall: float
    cpu: float  # this process
    server: float  # the PostgreSQL server (0 for SQLite)
    stored: tuple[int, int]  # assessments stored, their largest id


def write_all(url: str, copy: bool, pack: Any, results: Sequence[NewAssessment],
              server: pg_server.PostgresServer | None) -> Write:
    """Write `results` as `asl batch` does, into a fresh database at `url`."""
    store = Store(connect(url, bulk=True), copy=copy)
    try:
        rules, base = pack_fingerprint(pack)
        store.ensure_pack(pack.version, pack.name, rules, base)
        stack = stack_of(pack, ())
        batch_id = store.start_batch(pack.version, ["bench"])
        served = server.cpu_seconds() if server else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(results), CHUNK):
            store.save_chunk(results[start:start + CHUNK], pack.name, pack.version, stack,
                             batch_id, based_on={})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with store.engine.connect() as conn:
            count, largest = conn.execute(select(func.count(), func.max(A.c.id))).one()
    finally:
        store.engine.dispose()
    if server:
        time.sleep(0.2)  # the backend exits and is reaped: its CPU is the postmaster's
        served = server.cpu_seconds() - served
    return Write(wall, cpu, served, (count, largest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4_000, help="models written")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bindir = pg_server.find_bindir()
    if bindir is None:
        raise SystemExit(f"no PostgreSQL: {pg_server.SKIP_REASON}")

    with tempfile.TemporaryDirectory(prefix="asl-store-write-") as tmp_dir:
        tmp = Path(tmp_dir)
        portfolio = tmp / "p.jsonl"
        synth.write_portfolio(portfolio, synth.generate_models(args.n, seed=args.seed))
        evaluator = evaluator_for()
        loaded = load_evidence([str(portfolio)], vocabulary(evaluator.pack), keep=Entry.of)
        jobs = [Job(e, None, input_hash(orjson.loads(e.body), None))
                for e in loaded.documents]
        start = time.perf_counter()
        results = [r for r in assess_jobs((), jobs) if not isinstance(r, Failed)]
        print(f"{len(results):,} models assessed once in {time.perf_counter() - start:.1f} s;"
              f" written in chunks of {CHUNK}, one transaction each, best of {args.rounds} "
              "rounds alternating the three")
        print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), "
              f"{os.getloadavg()[1]:.2f} (5 min) on {os.cpu_count()} CPUs")
        server = pg_server.start_server(bindir)
        served = server.cpu_seconds()
        busy = busy_cpu_s()
        own = time.process_time()
        began = time.perf_counter()
        try:
            kinds = {"SQLite (executemany)": None, "PostgreSQL before (executemany)": False,
                     "PostgreSQL after (COPY)": True}
            best: dict[str, Write] = {}
            for round_ in range(args.rounds):
                for label, copy in kinds.items():
                    if copy is None:
                        url, on = f"sqlite:///{tmp / f'w{round_}.db'}", None
                    else:
                        name = f"w{round_}_{'copy' if copy else 'many'}"
                        with server.connect_admin() as conn:
                            conn.execute(f'CREATE DATABASE "{name}"')
                        url, on = server.url(name), server
                    got = write_all(url, bool(copy), evaluator.pack, results, on)
                    if got.stored != (len(results), len(results)):
                        raise SystemExit(f"{label}: stored {got.stored} (count, largest id),"
                                         f" expected {len(results)} of each")
                    kept = best.get(label)
                    best[label] = got if kept is None else Write(
                        min(kept.wall, got.wall), min(kept.cpu, got.cpu),
                        min(kept.server, got.server), got.stored)
            served = server.cpu_seconds() - served
        finally:
            pg_server.stop_server(bindir, server.base)
        elapsed = time.perf_counter() - began
        others = busy_cpu_s() - busy - (time.process_time() - own) - served

    n = len(results)
    print()
    print(f"{'':<34} {'models/s':>9} {'wall s':>7} {'writer CPU':>11} {'server CPU':>11} "
          f"{'CPU ms/model':>13}")
    for label, w in best.items():
        print(f"{label:<34} {n / w.wall:>9,.0f} {w.wall:>7.2f} {w.cpu:>11.2f} "
              f"{w.server:>11.2f} {(w.cpu + w.server) / n * 1e3:>13.3f}")
    sqlite, before, after = best.values()
    print()
    print("ratios, measured in this run")
    print(f"  PostgreSQL / SQLite write rate:  before {sqlite.wall / before.wall:.2f} x, "
          f"after {sqlite.wall / after.wall:.2f} x (target: at least 0.5 x)")
    print(f"  PostgreSQL after / before:       wall {after.wall / before.wall:.2f} x, "
          f"writer CPU {after.cpu / before.cpu:.2f} x, server CPU "
          f"{after.server / before.server:.2f} x, writer + server CPU "
          f"{(after.cpu + after.server) / (before.cpu + before.server):.2f} x")
    print(f"  writer + server CPU / SQLite's CPU: before "
          f"{(before.cpu + before.server) / sqlite.cpu:.2f} x, after "
          f"{(after.cpu + after.server) / sqlite.cpu:.2f} x")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min); other processes used "
          f"{max(0.0, others):,.0f} CPU-s of the {elapsed * (os.cpu_count() or 1):,.0f} "
          "available meanwhile")


if __name__ == "__main__":
    main()
