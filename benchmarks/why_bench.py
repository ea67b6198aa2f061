"""Benchmark: `asl why MODEL` answered from the record among many stored models.

Assesses a few synthetic models for real (`asl batch`, benchmarks/synth.py) into a fresh
SQLite database, then fills it to N stored models (default 100,000) by copying those
assessments' rows under distinct model ids (each copy is a real assessment's stored
record; only its model id differs), all in one transaction. Then runs, interleaved,
`python -c pass` (the baseline: this venv's interpreter starting and stopping) and
`asl why MODEL --db DB` for one of the really assessed models, and an interpreter that
only imports the third-party modules that command imports (its floor while it uses them),
each as a fresh process,
several times, and prints the median wall and CPU time (user + system, from `wait4`) of
each, the extra over the baseline and the ratio to it. Target (issue 13, item 6): under
0.3 s wall, start-up included. Also prints the load average, and which heavy packages
the command imported.

    python benchmarks/why_bench.py                 # 100,000 models, 15 runs each
    python benchmarks/why_bench.py -N 10000 -n 30
    python benchmarks/why_bench.py --before /work/main/.venv/bin/asl   # and another asl

Every command runs with Python's bytecode cache on, in a directory of the benchmark's
(PYTHONPYCACHEPREFIX; the warm-up run fills it), as an installed asl runs: a
PYTHONDONTWRITEBYTECODE in the environment would otherwise have asl's own modules
compiled from source at every start (`--no-bytecode-cache` measures that).

With `--before ASL`, the `asl` console script of another checkout (say, the commit before
a change) answers the same question from the same record, interleaved with the rest.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from startup_bench import asl_command, run_once
from synth import generate_models, write_portfolio

TARGET_WALL_S = 0.3
HEAVY = ("durable_rules_engine", "engine.evaluator", "alembic", "sqlmodel", "pydantic",
         "sqlalchemy.orm", "store.packs", "networkx", "sqlalchemy")
COPY_CHUNK = 5_000


def assess_real(db: Path, work: Path, count: int) -> list[str]:
    """Assess `count` synthetic models into `db` with `asl batch`; their ids."""
    models = generate_models(count, seed=13)
    portfolio = work / "portfolio.jsonl"
    write_portfolio(portfolio, models)
    subprocess.run([*asl_command(), "batch", str(portfolio), "--db", str(db)], check=True,
                   stdout=subprocess.DEVNULL)
    return [doc["model"]["id"] for doc in models]


def fill(db: Path, total: int) -> int:
    """Copy the stored assessments (and their model rows) under new ids until `db`
    holds `total` models; the number of models it holds."""
    conn = sqlite3.connect(db)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(assessment)")
                   if row[1] not in ("id", "model_id")]
        listed = ", ".join(columns)
        templates = conn.execute(f"SELECT model_id, {listed} FROM assessment ORDER BY id"
                                 ).fetchall()
        (first,) = conn.execute("SELECT min(first_assessed) FROM model").fetchone()
        have = conn.execute("SELECT count(*) FROM model").fetchone()[0]
        marks = ", ".join("?" * (len(columns) + 1))
        conn.execute("BEGIN")
        for start in range(have, total, COPY_CHUNK):
            rows = [(f"copy-{i:06d}-{templates[i % len(templates)][0]}",
                     *templates[i % len(templates)][1:])
                    for i in range(start, min(start + COPY_CHUNK, total))]
            conn.executemany("INSERT INTO model (id, first_assessed) VALUES (?, ?)",
                             [(row[0], first) for row in rows])
            conn.executemany(f"INSERT INTO assessment (model_id, {listed}) VALUES ({marks})",
                             rows)
        conn.execute("COMMIT")
        return conn.execute("SELECT count(*) FROM model").fetchone()[0]
    finally:
        conn.close()


def imported(db: Path, model: str) -> set[str]:
    """The modules in sys.modules after `asl why MODEL` ran in a fresh process."""
    code = ("import sys\nfrom cli.main import main\n"
            f"sys.argv = ['asl', 'why', {model!r}, '--db', {str(db)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    return set(subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=True).stderr.split())


OURS = {"cli", "engine", "knowledge_graph", "store", "batch", "service", "importers", "rules"}


def third_party(loaded: set[str]) -> list[str]:
    """The third-party modules (not the standard library's, not asl's own) among
    `loaded`."""
    return sorted(name for name in loaded if name.split(".")[0] not in OURS
                  and name.split(".")[0] not in sys.stdlib_module_names
                  and not name.startswith("_"))


def floor_code(loaded: set[str]) -> str:
    """`python -c` code importing the third-party modules that `asl why MODEL` imported:
    what its start-up rests on, as a floor measured beside it."""
    theirs = third_party(loaded)
    return ("import importlib\nfor name in " + repr(theirs) + ":\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except ImportError:\n        pass\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-N", "--models", type=int, default=100_000, help="stored models")
    parser.add_argument("--real", type=int, default=40, help="models assessed for real")
    parser.add_argument("-n", "--repeat", type=int, default=15, help="runs of each command")
    parser.add_argument("--no-bytecode-cache", dest="bytecode", action="store_false",
                        help="leave the environment's bytecode settings as they are")
    parser.add_argument("--before", metavar="ASL",
                        help="another checkout's asl script, timed on the same record")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asl-why-bench-") as tmp:
        work = Path(tmp)
        db = work / "asl.db"
        if args.bytecode:  # for every command this runs, the warm-up included
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        started = time.perf_counter()
        real = assess_real(db, work, args.real)
        stored = fill(db, args.models)
        size = db.stat().st_size
        print(f"record: {stored:,} stored models ({args.real} assessed, the rest copies of "
              f"their rows), {size / 2**20:.0f} MiB, built in "
              f"{time.perf_counter() - started:.0f} s")
        model = real[len(real) // 2]
        loaded = imported(db, model)
        commands = {"python -c pass": [sys.executable, "-c", "pass"],
                    "its third-party imports": [sys.executable, "-c", floor_code(loaded)],
                    f"asl why {model}": [*asl_command(), "why", model, "--db", str(db)]}
        if args.before:
            commands["the same, --before asl"] = [args.before, "why", model, "--db", str(db)]
        for argv in commands.values():  # warm the file cache
            run_once(argv)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                times[name].append(run_once(argv))
        median = {name: (statistics.median(w for w, _ in runs),
                         statistics.median(c for _, c in runs))
                  for name, runs in times.items()}
        heavy = [name for name in HEAVY if name in loaded]
    if args.before:
        print(f"--before asl: {args.before}")
    base_wall, base_cpu = median["python -c pass"]
    print(f"median of {args.repeat} interleaved runs each ({sys.executable}); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs; bytecode cache "
          f"{'on' if args.bytecode else 'as the environment says'}")
    print(f"{'command':<28}{'wall s':>9}{'cpu s':>9}{'+wall s':>10}{'+cpu s':>9}"
          f"{'wall x':>9}{'cpu x':>8}")
    for name, (wall, cpu) in median.items():
        print(f"{name:<28}{wall:>9.3f}{cpu:>9.3f}{wall - base_wall:>10.3f}"
              f"{cpu - base_cpu:>9.3f}{wall / base_wall:>9.1f}{cpu / base_cpu:>8.1f}")
    wall = median[f"asl why {model}"][0]
    print(f"target: under {TARGET_WALL_S} s wall: {'met' if wall < TARGET_WALL_S else 'NOT met'}"
          f" ({wall:.3f} s)")
    print(f"heavy modules imported by asl why MODEL: {', '.join(heavy) or 'none'}")
    if args.before:
        print(f"--before asl: {args.before}")
    packages = sorted({name.split(".")[0] for name in third_party(loaded)})
    print("its third-party imports: a fresh interpreter importing only the third-party "
          f"modules asl why MODEL imported (of {', '.join(packages)})")


if __name__ == "__main__":
    main()
