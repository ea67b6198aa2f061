"""Benchmark: what `synchronous=FULL` would cost `asl batch` on SQLite (issue 15, point 10).

A batch commits with `synchronous=NORMAL` (store.db: a rerun redoes what power loss
takes); the service's decision log, activated packs and tokens commit with FULL. This
prints, in one run and against a baseline measured in the same run:

- storing a portfolio's results as a batch does (a chunk of 64 per transaction) into a
  fresh database with NORMAL and with FULL: wall and CPU seconds, and FULL / NORMAL;
- the whole batch's cost (assessing, measured once, plus storing) with each, and the
  ratio: what choosing FULL for batches would cost;
- one small transaction per commit (as the decision log writes): NORMAL and FULL, and
  the ratio: the price of durability where it is paid.

    python benchmarks/durability_bench.py            # 2,000 models
    python benchmarks/durability_bench.py -n 500     # a quick run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import orjson
import synth
from sqlalchemy import text

from batch.executors import CHUNK
from batch.runner import pack_fingerprint
from batch.stack import stack_of
from batch.work import Entry, Failed, Job, assess_jobs, input_hash
from engine.assess import evaluator_for, vocabulary
from engine.evidence import load_evidence
from store.db import connect
from store.record import NewAssessment, Store

SMALL_COMMITS = 300


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of `work()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def store_all(url: str, bulk: bool, results: Sequence[NewAssessment], pack: object) -> None:
    """Store `results` as a batch does: a chunk of CHUNK per transaction."""
    store = Store(connect(url, bulk=bulk))
    try:
        rules, base = pack_fingerprint(pack)  # type: ignore[arg-type]
        store.ensure_pack(pack.version, pack.name, rules, base)  # type: ignore[attr-defined]
        stack = stack_of(pack, ())  # type: ignore[arg-type]
        batch_id = store.start_batch(pack.version, ["bench"])  # type: ignore[attr-defined]
        for start in range(0, len(results), CHUNK):
            store.save_many(results[start:start + CHUNK], pack.name,  # type: ignore[attr-defined]
                            pack.version, stack, batch_id)  # type: ignore[attr-defined]
    finally:
        store.engine.dispose()


def small_commits(url: str, bulk: bool) -> None:
    """SMALL_COMMITS transactions of one row each, as the decision log appends."""
    engine = connect(url, bulk=bulk)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_log (n INTEGER, note TEXT)"))
        for n in range(SMALL_COMMITS):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO bench_log VALUES (:n, 'x')"), {"n": n})
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--models", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asl-durability-") as tmp_dir:
        tmp = Path(tmp_dir)
        portfolio = tmp / "p.jsonl"
        synth.write_portfolio(portfolio, synth.generate_models(args.models, seed=10))
        evaluator = evaluator_for()
        loaded = load_evidence([str(portfolio)], vocabulary(evaluator.pack), keep=Entry.of)
        jobs = [Job(e, None, input_hash(orjson.loads(e.body), None))
                for e in loaded.documents]
        results: list[NewAssessment] = []
        assess_wall, assess_cpu = timed(lambda: results.extend(
            r for r in assess_jobs((), jobs) if not isinstance(r, Failed)))
        print(f"{len(results):,} models assessed once: {assess_wall:.2f} s wall, "
              f"{assess_cpu:.2f} s CPU (shared by both runs below)")
        measured = {}
        for round_ in range(2):  # alternate, so neither gets a warmer disk cache
            for label, bulk in (("NORMAL", True), ("FULL", False)):
                url = f"sqlite:///{tmp / f'{label}-{round_}.db'}"
                wall, cpu = timed(lambda url=url, bulk=bulk: store_all(url, bulk, results,
                                                                     evaluator.pack))
                best = measured.get(label, (float("inf"), float("inf")))
                measured[label] = (min(best[0], wall), min(best[1], cpu))
        (n_wall, n_cpu), (f_wall, f_cpu) = measured["NORMAL"], measured["FULL"]
        print(f"storing, chunks of {CHUNK} (best of 2):")
        print(f"  NORMAL (baseline)  {n_wall:7.2f} s wall  {n_cpu:7.2f} s CPU")
        print(f"  FULL               {f_wall:7.2f} s wall  {f_cpu:7.2f} s CPU")
        print(f"  FULL / NORMAL      {f_wall / n_wall:7.2f} wall    {f_cpu / n_cpu:7.2f} CPU")
        whole_n, whole_f = assess_wall + n_wall, assess_wall + f_wall
        print(f"whole batch (assess + store), FULL / NORMAL: {whole_f / whole_n:.3f} wall "
              f"({whole_n:.2f} s -> {whole_f:.2f} s)")
        small = {}
        for label, bulk in (("NORMAL", True), ("FULL", False)):
            small[label] = timed(lambda label=label, bulk=bulk: small_commits(
                f"sqlite:///{tmp / f'small-{label}.db'}", bulk))
        print(f"{SMALL_COMMITS} one-row commits (as the decision log):")
        for label in ("NORMAL", "FULL"):
            wall, cpu = small[label]
            print(f"  {label:<18} {wall:7.3f} s wall  {cpu:7.3f} s CPU  "
                  f"{wall / SMALL_COMMITS * 1000:6.2f} ms/commit")
        print(f"  FULL / NORMAL      {small['FULL'][0] / small['NORMAL'][0]:7.2f} wall    "
              f"{small['FULL'][1] / small['NORMAL'][1]:7.2f} CPU")


if __name__ == "__main__":
    main()
