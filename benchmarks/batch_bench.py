"""Benchmark: `asl batch` on a synthetic portfolio with lineage, as a real subprocess.

Prints, in one run: for `--jobs 2` and `--jobs 1` (each into a fresh SQLite database),
the wall time, models/second, the peak resident memory of the batch process tree and the
database size; the plain-Python lower bound (`benchmarks/plain_eval.py` over the same
documents) and the ratio batch / plain; peak memory at a quarter of the size, to show
whether memory depends on the portfolio's size; where the time goes (an in-process
cProfile of a small sample); and a check of every model's ASL and decision against
plain_eval (the oracle the tests use). Target (issue): >= 4,000 models/s with 2 jobs;
memory independent of portfolio size.

    python benchmarks/batch_bench.py             # 100,000 models (tens of minutes)
    python benchmarks/batch_bench.py -n 5000     # a quick run
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import plain_eval
import synth

from batch.executors import InProcess
from batch.runner import Batch
from batch.work import Entry, assess_jobs, input_hash
from engine.assess import assess_document, evaluator_for, vocabulary
from engine.evidence import load_evidence
from knowledge_graph.provenance import dump, edge_rows
from knowledge_graph.report import assessment_document, provenance
from store.db import connect
from store.record import Store, compress

ROOT = Path(__file__).resolve().parent.parent
ASSESS = "assess_jobs (workers' share)"
TARGET_RATE = 4_000
SHARD = 10_000  # models per JSON Lines file: asl refuses a file over 50 MB (about 32,000)
POLL_S = 0.2
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def say(line: str = "") -> None:
    print(line, flush=True)


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


# -- running `asl batch` and watching its process tree ----------------------------------

def write_shards(directory: Path, models: list[dict[str, Any]]) -> None:
    """The portfolio as a directory of JSON Lines files, in model order (asl reads a
    directory's files sorted, as one portfolio)."""
    directory.mkdir()
    for start in range(0, len(models), SHARD):
        synth.write_portfolio(directory / f"part-{start // SHARD:03d}.jsonl",
                              models[start:start + SHARD])


def busy_cpu_s() -> float:
    """CPU seconds this machine has spent busy since boot, all processes (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK


def asl_command() -> list[str]:
    """The console script beside this interpreter, else `python -c` on cli.main."""
    script = Path(sys.executable).with_name("asl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


def _proc_stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, resident bytes) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as fh:
            rss = int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, rss


@dataclass
class TreeWatch:
    """Polls /proc every POLL_S: the summed RSS of `root` and all its descendants (peak),
    the largest RSS of any one of them, and the last CPU time seen per process (wait4's
    rusage is no use here: it misses pool workers the batch process never reaps)."""

    root: int
    peak_rss: int = 0
    max_rss: int = 0
    cpu: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                got = _proc_stat(int(name))
                if got is not None:
                    stats[int(name)] = got
        tree, todo = set(), [self.root]
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in tree:
                tree.add(pid)
                todo.extend(children.get(pid, ()))
        self.peak_rss = max(self.peak_rss, sum(stats[p][2] for p in tree))
        self.max_rss = max([self.max_rss, *(stats[p][2] for p in tree)])
        for pid in tree:
            self.cpu[pid] = stats[pid][1]

    def loop(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(POLL_S)


@dataclass
class Run:
    label: str
    models: int
    wall: float
    peak_tree_rss: int  # summed over the process tree, polled
    max_rss: int  # the largest single process, polled
    cpu_total: float  # CPU seconds of the tree, polled (each up to POLL_S stale)
    cpu_main: float  # of which the batch process itself
    db_bytes: int
    wal_bytes: int
    stdout: str
    others_cpu: float  # CPU seconds the rest of the machine used meanwhile

    @property
    def rate(self) -> float:
        return self.models / self.wall


def run_batch(label: str, portfolio: Path, db: Path, models: int, jobs: int,
              output: Path | None = None) -> Run:
    """Run `asl batch` once as a subprocess; fail loudly unless it exits 0."""
    cmd = [*asl_command(), "batch", str(portfolio), "--db", f"sqlite:///{db}",
           "--no-progress", "--jobs", str(jobs)]
    if output is not None:
        cmd += ["--output", str(output)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    out_path, err_path = db.with_suffix(".stdout"), db.with_suffix(".stderr")
    with out_path.open("w") as out, err_path.open("w") as err:
        busy = busy_cpu_s()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=db.parent)
        watch = TreeWatch(proc.pid)
        thread = threading.Thread(target=watch.loop, daemon=True)
        thread.start()
        _, status = os.waitpid(proc.pid, 0)
        wall = time.perf_counter() - start
        busy = busy_cpu_s() - busy
        proc.returncode = os.waitstatus_to_exitcode(status)
        watch.stop.set()
        thread.join()
    stdout = out_path.read_text()
    if proc.returncode != 0:
        tail = err_path.read_text()[-2000:]
        raise SystemExit(f"{label}: asl batch exited {proc.returncode}\n{stdout[-2000:]}{tail}")
    wal = db.with_name(db.name + "-wal")
    return Run(label, models, wall, watch.peak_rss, watch.max_rss, sum(watch.cpu.values()),
               watch.cpu.get(proc.pid, 0.0), db.stat().st_size,
               wal.stat().st_size if wal.exists() else 0, stdout,
               max(0.0, busy - sum(watch.cpu.values())))


def check_summary(run: Run, assessed: int, unchanged: int = 0) -> None:
    match = re.search(r"assessed (\d+), unchanged (\d+) \(skipped\), rejected (\d+)", run.stdout)
    got = tuple(int(g) for g in match.groups()) if match else None
    if got != (assessed, unchanged, 0):
        raise SystemExit(f"{run.label}: expected assessed {assessed}, unchanged {unchanged}, "
                         f"rejected 0; the summary says:\n{run.stdout[:500]}")


# -- the in-process profile of a small sample -------------------------------------------

def profile_sample(path: Path, tmp: Path) -> tuple[int, float, float, dict[str, float]]:
    """Load `path` and batch it in this process (InProcess, like --jobs 1) under cProfile.
    Returns (models, load seconds unprofiled, batch seconds profiled, profiled seconds of
    each part)."""
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    start = time.perf_counter()
    loaded = load_evidence([str(path)], vocab)
    load_s = time.perf_counter() - start
    store = Store(connect(f"sqlite:///{tmp / 'asl-profile.db'}"))
    runner = Batch(store, evaluator.pack, InProcess(()))
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    entries = [Entry.of(d) for d in loaded.documents]
    runner.run(entries, [str(path)])
    profiler.disable()
    run_s = time.perf_counter() - start
    store.engine.dispose()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(fn: Any) -> float:
        code = fn.__code__
        key = (code.co_filename, code.co_firstlineno, code.co_name)
        return stats[key][3] if key in stats else 0.0

    parts = {
        ASSESS: cumulative(assess_jobs),
        "  engine: assess_document": cumulative(assess_document),
        "  provenance graph": cumulative(provenance),
        "  result + conclusions": cumulative(assessment_document),
        "  graph dump + edge rows": cumulative(dump) + cumulative(edge_rows),
        "  of which zlib of the result": cumulative(compress),
        "job prep: compact entries, hashes": cumulative(Entry.of.__func__)
        + cumulative(input_hash),
        "Store.save_many (a chunk per transaction)": cumulative(Store.save_many),
    }
    return len(loaded.documents), load_s, run_s, parts


# -- main ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="models in the portfolio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-n", type=int, default=500,
                        help="models in the in-process profile sample (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    n, small_n = args.n, max(1, args.n // 4)

    tmp = Path(tempfile.mkdtemp(prefix="asl-batch-bench-"))
    full_path, small_path = tmp / "portfolio", tmp / "portfolio-small"
    start = time.perf_counter()
    models = synth.generate_models(n, seed=args.seed, lineage=True)
    write_shards(full_path, models)
    write_shards(small_path, models[:small_n])  # lineage only points back: whole
    sample_path = tmp / "portfolio-sample.jsonl"
    synth.write_portfolio(sample_path, models[:args.profile_n])
    del models
    shards = sorted(full_path.iterdir())
    say(f"portfolio      {n:,} models with lineage (seed {args.seed}), "
        f"{mib(sum(p.stat().st_size for p in shards))} JSON Lines in {len(shards)} files "
        f"of {SHARD:,} in {full_path} "
        f"({time.perf_counter() - start:.1f} s to generate)")
    say(f"command        {' '.join(asl_command())} batch PORTFOLIO --db sqlite:///{tmp}/"
        "asl-jobsN.db --no-progress --jobs N")
    say(f"memory         peak RSS summed over the batch process and its workers, polled "
        f"from /proc every {POLL_S} s [largest single process]")
    say(f"machine        {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    say()

    # The lower bound: plain Python over the same documents, as read back from the file.
    start = time.perf_counter()
    docs = []
    for shard in shards:
        with shard.open() as fh:
            docs += [json.loads(line) for line in fh]
    parse_s = time.perf_counter() - start
    plain_s = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        expected = plain_eval.evaluate_portfolio(docs)
        plain_s = min(plain_s, time.perf_counter() - start)
    del docs
    expected_by_id = {r["model"]: r for r in expected}
    del expected
    say(f"plain Python lower bound   {n / plain_s:>9,.0f} models/s  ({plain_s:.2f} s, best "
        f"of 3; {n / (plain_s + parse_s):,.0f} models/s with json.loads of the file)")

    if args.profile_n:
        count, load_s, run_s, parts = profile_sample(sample_path, tmp)
        say()
        say(f"where the time goes: first {count:,} models in this process (InProcess, like "
            "--jobs 1), ms per model")
        say(f"  evidence load (parse + validate, unprofiled)  {load_s / count * 1e3:7.2f}")
        say(f"  Batch.run under cProfile                      {run_s / count * 1e3:7.2f}  "
            "(cProfile inflates Python-heavy parts)")
        for name, seconds in parts.items():
            say(f"    {name:<42}  {seconds / count * 1e3:7.2f}  {seconds / run_s:5.0%}")
        rest = run_s - parts[ASSESS]
        say(f"  with --jobs 2 the parent does load + job prep + save ("
            f"{(load_s + rest) / count * 1e3:.2f} ms/model profiled), the workers "
            f"assess_jobs ({parts[ASSESS] / count * 1e3:.2f} ms/model of CPU, "
            "split over 2)")
    say()

    runs: list[Run] = []

    def report(run: Run) -> None:
        say(f"{run.label:<26} {run.rate:>9,.0f} models/s  wall {run.wall:8.1f} s   "
            f"peak RSS {mib(run.peak_tree_rss):>10} [{mib(run.max_rss)}]   "
            f"db {mib(run.db_bytes)} + wal {mib(run.wal_bytes)}   "
            f"CPU {run.cpu_total:.0f} s (parent {run.cpu_main:.0f} s)")
        if run.others_cpu > 0.05 * run.wall:
            say(f"{'':<26} NOTE: other processes used {run.others_cpu:,.0f} CPU-s of the "
                f"{run.wall * (os.cpu_count() or 1):,.0f} available meanwhile")
        say(f"{'':<26} ratio batch / plain time {run.wall / (plain_s * run.models / n):,.0f} x")

    full2 = run_batch(f"asl batch --jobs 2, {n:,}", full_path, tmp / "asl-jobs2.db", n, 2)
    check_summary(full2, n)
    runs.append(full2)
    report(full2)

    small2 = run_batch(f"asl batch --jobs 2, {small_n:,}", small_path,
                       tmp / "asl-jobs2-small.db", small_n, 2)
    check_summary(small2, small_n)
    report(small2)
    (tmp / "asl-jobs2-small.db").unlink()

    # Check every model against the oracle: re-run the --jobs 2 portfolio into its own
    # database with --output (every model is unchanged, so skipped, and written out).
    output = tmp / "results.jsonl"
    rerun = run_batch(f"re-run, all unchanged, {n:,}", full_path, tmp / "asl-jobs2.db", n, 2,
                      output)
    check_summary(rerun, 0, n)
    asl_decision = contract = seen = 0
    with output.open() as fh:
        for line in fh:
            got = json.loads(line)
            want = expected_by_id.get(got["model"])
            seen += 1
            if want is None or (got["asl"], got["decision"]) != (want["asl"], want["decision"]):
                asl_decision += 1
            if want is None or any(got.get(k) != v for k, v in want.items()):
                contract += 1
    missing = len(expected_by_id) - seen
    say(f"{rerun.label:<26} {rerun.rate:>9,.0f} models/s  wall {rerun.wall:8.1f} s   "
        f"(skips every model, writes --output: {mib(output.stat().st_size)})  "
        f"peak RSS {mib(rerun.peak_tree_rss)}")
    say(f"check against plain_eval   {seen:,} results: {asl_decision + missing} asl/decision "
        f"mismatches, {contract + missing} with any contract key differing, {missing} missing")
    output.unlink()
    for name in ("asl-jobs2.db", "asl-jobs2.db-wal", "asl-jobs2.db-shm"):
        (tmp / name).unlink(missing_ok=True)

    full1 = run_batch(f"asl batch --jobs 1, {n:,}", full_path, tmp / "asl-jobs1.db", n, 1)
    check_summary(full1, n)
    runs.append(full1)
    report(full1)
    for name in ("asl-jobs1.db", "asl-jobs1.db-wal", "asl-jobs1.db-shm"):
        (tmp / name).unlink(missing_ok=True)

    say()
    say(f"target: >= {TARGET_RATE:,} models/s with 2 jobs; memory independent of portfolio "
        "size")
    short = "" if full2.rate >= TARGET_RATE else f"NOT met, {TARGET_RATE / full2.rate:,.0f} x short"
    say(f"  speed   {full2.rate:,.0f} models/s with 2 jobs: {short or 'met'}")
    say(f"  memory  peak RSS with 2 jobs: {mib(small2.peak_tree_rss)} at {small_n:,} models, "
        f"{mib(full2.peak_tree_rss)} at {n:,} "
        f"({full2.peak_tree_rss / small2.peak_tree_rss:.2f} x for {n / small_n:.0f} x the "
        "models)")
    say(f"  speedup --jobs 2 over --jobs 1: {full2.rate / full1.rate:.2f} x")
    say(f"  check   {asl_decision + missing} mismatches against plain_eval "
        f"({'OK' if asl_decision + missing == 0 else 'WRONG RESULTS'})")
    if args.keep:
        say(f"kept {tmp}")
    else:
        shutil.rmtree(tmp)
    if asl_decision + missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
