"""Benchmark: the memory `asl batch`'s own process holds per portfolio model, now and at a
baseline revision, in one run (issue 15 point 12: memory flat in portfolio size).

The batch process holds, for the whole of a run, what lineage ordering and the closing
summary need of every model (its id and references, where it is, its compute, where its
body is parked, its outcome). This measures that alone, without workers or a database:
one fresh process per (revision, size) reads the portfolio as `asl batch` does
(`load_evidence` with `Spool.keep`), walks `Gate.generations` asking `Gate.stop` and what
a model's reference carries over, and records an outcome for every model; its resident
memory (`/proc/self/statm`) is read after importing and loading the pack, after reading,
and at the end with everything still held. Bytes a model = the difference in the end
figure between two sizes over the difference in models, so what every process holds
anyway (the interpreter, the pack) cancels out.

    python benchmarks/parent_memory.py --sizes 20000 100000 --baseline main

The baseline's code is `git archive`d into a temporary directory and put first on the
child's PYTHONPATH; the child code below uses only what both revisions have.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

ROOT = Path(__file__).resolve().parent.parent
SHARD = 10_000  # models per JSON Lines file, as batch_bench.py writes them

CHILD = r"""
import gc, json, os, sys, time
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
import batch.spool, engine.lineage
from batch.runner import BatchReport
from batch.spool import Spool
from engine.assess import evaluator_for, vocabulary
from engine.evidence import load_evidence
from engine.lineage import Gate
from store.record import Summary
pack = evaluator_for(()).pack
vocab = vocabulary(pack)
gc.collect()
base = rss()
start = time.process_time()
spool = Spool()
columns = hasattr(spool, "positions")  # the spool is the table (as `asl batch` uses it)
if columns:
    loaded = load_evidence([sys.argv[1]], vocab, keep=spool.keep, table=spool)
    entries = spool
else:  # the revision before: a Spooled object a model, in a list
    loaded = load_evidence([sys.argv[1]], vocab, keep=spool.keep)
    entries = loaded.documents
rejected = loaded.errors
del loaded
spool.done_reading()
gc.collect()
read = rss()
report = BatchReport(1, pack.version, rejected=list(rejected))
if columns:  # as Batch.run makes it
    from batch.runner import Outcomes
    report.outcomes = Outcomes(*spool.positions())
gate = Gate(entries, report.rejected)
by_id = gate.lineage.links
levels = ("ASL-2", "ASL-3", "ASL-4")
decisions = ("proceed", "proceed_with_safeguards", "pause")
n = 0
for generation in gate.generations():
    for model in generation:
        if gate.stop(model) is not None:
            continue
        item = by_id[model]
        ref = item.reference
        if ref is not None and ref in by_id:
            (by_id[ref].compute, report.outcomes[ref].level)
        summary = Summary(n + 1, model, "", pack.name, pack.version, "", "",
                          levels[n % 3], {}, {}, decisions[n % 3], [],
                          [f"action {n % 5}"], 1, [], pack.name, None)
        report.outcomes[model] = report.skipped_outcome(model, summary)
        n += 1
gc.collect()
print(json.dumps({"models": n, "base": base, "read": read, "end": rss(), "peak": hwm(),
                  "cpu": time.process_time() - start,
                  "code": os.path.dirname(os.path.dirname(batch.spool.__file__))}))
"""


def measure(code: Path, portfolio: Path) -> dict[str, float]:
    """One child process over `portfolio` with the batch code of `code`."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(portfolio)], env=env, cwd=code,
                         check=True, capture_output=True, text=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert Path(found["code"]).resolve() == code.resolve(), found["code"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[20_000, 100_000])
    parser.add_argument("--baseline", default="main",
                        help="git revision to compare with (default: main)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each (revision, size), alternating; the least kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    tmp = Path(tempfile.mkdtemp(prefix="asl-parent-memory-"))
    try:
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                             check=True, capture_output=True, text=True).stdout.strip()
        models = synth.generate_models(large, seed=args.seed, lineage=True)
        paths = {}
        for size in (small, large):
            paths[size] = tmp / f"portfolio-{size}"
            paths[size].mkdir()
            for start in range(0, size, SHARD):
                synth.write_portfolio(paths[size] / f"part-{start // SHARD:03d}.jsonl",
                                      models[start:min(start + SHARD, size)])
        del models
        print(f"portfolios     {small:,} and {large:,} synthetic models with lineage "
              f"(seed {args.seed}), JSON Lines in files of {SHARD:,}", flush=True)
        print(f"load average   {' '.join(f'{x:.1f}' for x in os.getloadavg())} at start, "
              f"{time.strftime('%H:%M UTC', time.gmtime())}", flush=True)
        codes = {f"baseline {args.baseline} ({rev})": baseline, "this tree": ROOT}
        found: dict[tuple[str, int], dict[str, float]] = {}
        for _ in range(args.repeat):
            for size in (small, large):
                for label, code in codes.items():
                    got = measure(code, paths[size])
                    kept = found.get((label, size))
                    if kept is None or got["end"] < kept["end"]:
                        found[label, size] = got
        print(f"{'':<24}{'models':>9}{'after reading':>15}{'at the end':>12}"
              f"{'peak':>10}{'CPU':>8}", flush=True)
        for (label, _size), got in found.items():
            print(f"{label:<24}{got['models']:>9,}{(got['read'] - got['base']) / 2**20:>11.1f} MiB"
                  f"{(got['end'] - got['base']) / 2**20:>8.1f} MiB"
                  f"{got['peak'] / 2**20:>6.0f} MiB{got['cpu']:>7.1f}s")
        print("bytes a model (end, large - small):")
        per = {}
        for label in codes:
            a, b = found[label, small], found[label, large]
            per[label] = (b["end"] - a["end"]) / (b["models"] - a["models"])
            reading = (b["read"] - a["read"]) / (b["models"] - a["models"])
            print(f"  {label:<24}{per[label]:>7.0f}  (after reading: {reading:.0f})")
        first, now = per.values()
        print(f"  this tree / baseline    {now / first:7.2f} x")
        print(f"load average   {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end, "
              f"{time.strftime('%H:%M UTC', time.gmtime())}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
