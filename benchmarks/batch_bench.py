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
    peaks: dict[int, int] = field(default_factory=dict)  # each process's own peak RSS
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
            self.peaks[pid] = max(self.peaks.get(pid, 0), stats[pid][2])

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
    parent_rss: int = 0  # the batch process's own peak
    server_cpu: float = 0.0  # CPU seconds of the PostgreSQL server meanwhile (in others_cpu)

    @property
    def rate(self) -> float:
        return self.models / self.wall


def run_batch(label: str, portfolio: Path, db: Path, models: int, jobs: int,
              output: Path | None = None, url: str | None = None) -> Run:
    """Run `asl batch` once as a subprocess (into the SQLite file `db`, or `url`, with
    `db` naming its log files); fail loudly unless it exits 0."""
    proc, watch, thread, busy, start, out_path, err_path = _start(
        portfolio, db, jobs, output, url)
    _, status = os.waitpid(proc.pid, 0)
    return _finish(label, models, db, proc, status, watch, thread, busy, start,
                   out_path, err_path)


def _start(portfolio: Path, db: Path, jobs: int, output: Path | None = None,
           url: str | None = None) -> tuple[Any, ...]:
    cmd = [*asl_command(), "batch", str(portfolio), "--db", url or f"sqlite:///{db}",
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
    return proc, watch, thread, busy, start, out_path, err_path


def _finish(label: str, models: int, db: Path, proc: Any, status: int, watch: TreeWatch,
            thread: threading.Thread, busy: float, start: float, out_path: Path,
            err_path: Path) -> Run:
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
               watch.cpu.get(proc.pid, 0.0), db.stat().st_size if db.exists() else 0,
               wal.stat().st_size if wal.exists() else 0, stdout,
               max(0.0, busy - sum(watch.cpu.values())), watch.peaks.get(proc.pid, 0))


def run_pair(label: str, halves: list[Path], tmp: Path, models: int) -> Run:
    """Two `asl batch --jobs 1` at once, each on its own half of the portfolio into its
    own SQLite file: what two processes assessing in-process reach on this machine (the
    ceiling `--jobs 2` is measured against). One `Run` for both: wall until both end,
    CPU and memory summed."""
    started = [_start(half, tmp / f"asl-pair-{i}.db", 1) for i, half in enumerate(halves)]
    runs = []
    for i, (proc, *rest) in enumerate(started):
        _, status = os.waitpid(proc.pid, 0)
        runs.append(_finish(f"{label} [{i}]", models // 2, tmp / f"asl-pair-{i}.db", proc,
                            status, *rest))
    start = min(s[4] for s in started)
    wall = max(s[4] + r.wall for s, r in zip(started, runs, strict=True)) - start
    return Run(label, models, wall, sum(r.peak_tree_rss for r in runs),
               max(r.max_rss for r in runs), sum(r.cpu_total for r in runs),
               sum(r.cpu_main for r in runs), sum(r.db_bytes for r in runs),
               sum(r.wal_bytes for r in runs), runs[0].stdout + runs[1].stdout,
               max(r.others_cpu for r in runs), sum(r.parent_rss for r in runs))


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

def postgres_run(label: str, portfolio: Path, tmp: Path, models: int) -> Run | str:
    """The same batch into a throwaway PostgreSQL (tests/pg_server.py: local, fsync off,
    like the SQLite runs' page cache); the reason instead when there is no server."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_server

    bindir = pg_server.find_bindir()
    if bindir is None:
        return pg_server.SKIP_REASON
    try:
        server = pg_server.start_server(bindir)
    except pg_server.ServerStartError as exc:
        return f"the server did not start: {str(exc).splitlines()[0]}"
    try:
        with server.connect_admin() as conn:
            conn.execute('CREATE DATABASE "asl_bench"')
        served = server.cpu_seconds()
        run = run_batch(label, portfolio, tmp / "asl-pg", models, 2,
                        url=server.url("asl_bench"))
        run.server_cpu = server.cpu_seconds() - served
        return run
    finally:
        pg_server.stop_server(bindir, server.base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5_000, help="models in the portfolio "
                        "(the issue's figures: 20000)")
    parser.add_argument("--memory", type=int, nargs="+", metavar="N",
                        help="portfolio sizes to compare peak RSS at with --jobs 2 "
                        "(default: n/4 and n; the issue's: 20000 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-n", type=int, default=500,
                        help="models in the in-process profile sample (0: skip)")
    parser.add_argument("--no-postgres", action="store_true",
                        help="skip the run into a throwaway PostgreSQL")
    parser.add_argument("--pg-rounds", type=int, default=1, metavar="N",
                        help="run the SQLite --jobs 2 and PostgreSQL batches N times, "
                        "alternating, and compare the fastest of each (the ratio then "
                        "depends less on other work on the machine)")
    parser.add_argument("--no-pair", action="store_true",
                        help="skip the two concurrent in-process batches (with "
                        "--no-postgres: memory and speed of --jobs 2 only)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    n = args.n
    sizes = sorted(set(args.memory or [max(1, n // 4), n]))

    tmp = Path(tempfile.mkdtemp(prefix="asl-batch-bench-"))
    start = time.perf_counter()
    models = synth.generate_models(max(n, *sizes), seed=args.seed, lineage=True)
    paths = {size: tmp / f"portfolio-{size}" for size in {n, *sizes}}
    for size, path in paths.items():  # lineage only points back: any prefix is whole
        write_shards(path, models[:size])
    halves = [tmp / "half-0.jsonl", tmp / "half-1.jsonl"]
    synth.write_portfolio(halves[0], models[:n // 2])
    synth.write_portfolio(halves[1], models[n // 2:n])
    sample_path = tmp / "portfolio-sample.jsonl"
    synth.write_portfolio(sample_path, models[:args.profile_n])
    del models
    full_path = paths[n]
    shards = sorted(full_path.iterdir())
    say(f"portfolio      {n:,} models with lineage (seed {args.seed}), "
        f"{mib(sum(p.stat().st_size for p in shards))} JSON Lines in {len(shards)} files "
        f"of {SHARD:,} in {full_path} "
        f"({time.perf_counter() - start:.1f} s to generate)")
    say(f"command        {' '.join(asl_command())} batch PORTFOLIO --db sqlite:///{tmp}/"
        "asl-jobsN.db --no-progress --jobs N")
    say(f"memory         peak RSS summed over the batch process and its workers, polled "
        f"from /proc every {POLL_S} s [largest single process]")
    say("CPU            CPU seconds of the batch's process tree (parent and workers)")
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
    say()

    def report(run: Run) -> None:
        say(f"{run.label:<30} {run.rate:>7,.0f} models/s  wall {run.wall:7.1f} s  "
            f"CPU {run.cpu_total:6.1f} s = {run.cpu_total / run.models * 1e3:5.2f} ms/model "
            f"(parent {run.cpu_main:.1f} s)  peak RSS {mib(run.peak_tree_rss)} "
            f"[{mib(run.max_rss)}; parent {mib(run.parent_rss)}]  "
            f"db {mib(run.db_bytes + run.wal_bytes)}")
        if run.server_cpu:
            say(f"{'':<30} and the PostgreSQL server's CPU {run.server_cpu:.1f} s = "
                f"{run.server_cpu / run.models * 1e3:.2f} ms/model")
        others = run.others_cpu - run.server_cpu
        if others > 0.05 * run.wall:
            say(f"{'':<30} NOTE: other processes used {others:,.0f} CPU-s of the "
                f"{run.wall * (os.cpu_count() or 1):,.0f} available meanwhile")

    pair = None if args.no_pair else run_pair(f"2 x asl batch --jobs 1, {n // 2:,}",
                                              halves, tmp, n)
    if pair is not None:
        report(pair)
    full2 = run_batch(f"asl batch --jobs 2, {n:,}", full_path, tmp / "asl-jobs2.db", n, 2)
    check_summary(full2, n)
    report(full2)
    pg = None if args.no_postgres else postgres_run(
        f"PostgreSQL --jobs 2, {n:,}", full_path, tmp, n)
    if isinstance(pg, Run):
        check_summary(pg, n)
        report(pg)
    elif pg is not None:
        say(f"PostgreSQL: not run: {pg}")
    fastest, pg_fastest = full2, pg
    for round_ in range(2, args.pg_rounds + 1 if isinstance(pg, Run) else 0):
        again = run_batch(f"asl batch --jobs 2, {n:,} ({round_})", full_path,
                          tmp / f"asl-jobs2-{round_}.db", n, 2)
        check_summary(again, n)
        report(again)
        pg_again = postgres_run(f"PostgreSQL --jobs 2, {n:,} ({round_})", full_path, tmp, n)
        if not isinstance(pg_again, Run):
            raise SystemExit(f"PostgreSQL, round {round_}: not run: {pg_again}")
        check_summary(pg_again, n)
        report(pg_again)
        fastest = min(fastest, again, key=lambda run: run.wall)
        if isinstance(pg_fastest, Run) and pg_again.wall < pg_fastest.wall:
            pg_fastest = pg_again

    memory: dict[int, Run] = {n: full2}
    for size in sizes:
        if size not in memory:
            db = tmp / f"asl-memory-{size}.db"
            memory[size] = run_batch(f"asl batch --jobs 2, {size:,}", paths[size], db,
                                     size, 2)
            check_summary(memory[size], size)
            report(memory[size])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

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
    report(rerun)
    say(f"check against plain_eval   {seen:,} results: {asl_decision + missing} asl/decision "
        f"mismatches, {contract + missing} with any contract key differing, {missing} missing")

    say()
    say("ratios, measured in this run")
    if pair is not None:
        say(f"  --jobs 2 / two in-process batches:  wall rate {full2.rate / pair.rate:.2f} x,"
            f" CPU per model {full2.cpu_total / pair.cpu_total:.2f} x (target: within 1.5 x)")
    if isinstance(pg_fastest, Run):
        best = f", fastest of {args.pg_rounds} each" if args.pg_rounds > 1 else ""
        say(f"  PostgreSQL / SQLite (--jobs 2{best}): wall rate "
            f"{pg_fastest.rate / fastest.rate:.2f} x, CPU per model "
            f"{pg_fastest.cpu_total / fastest.cpu_total:.2f} x, with the server's "
            f"{(pg_fastest.cpu_total + pg_fastest.server_cpu) / fastest.cpu_total:.2f} x "
            "(target: at least 0.5 x)")
    peaks = {size: memory[size].peak_tree_rss for size in sizes}
    spread = max(peaks.values()) / min(peaks.values())
    say("  peak RSS (--jobs 2):                " + ", ".join(
        f"{mib(peak)} at {size:,}" for size, peak in peaks.items())
        + f": largest / smallest {spread:.2f} x (target: within 1.10 x)")
    say(f"  batch / plain Python time:          {full2.wall / plain_s:,.0f} x")
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
