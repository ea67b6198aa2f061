"""Benchmark: how long `asl --help` and `asl --version` take beyond starting Python.

Runs, interleaved, `python -c pass` (the baseline: the interpreter of this venv starting
and stopping), `asl --help` and `asl --version` (the console script beside it), each as a
fresh process, several times; prints for each the median wall time and the median CPU
time (user + system, of the process alone, from `wait4`), and for the two asl commands
the extra over the baseline and their ratio to it. Interleaving the runs spreads a busy
machine's noise over all three alike. Target (issue 10, item 14): at most 0.3 s more than
the bare interpreter, wall and CPU alike. Also lists the heavy packages a plain
`import cli.main` still pulls in (it should be none).

    python benchmarks/startup_bench.py           # 15 repetitions
    python benchmarks/startup_bench.py -n 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_EXTRA_S = 0.3
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "networkx", "durable_rules_engine", "durable",
         "fastapi", "uvicorn", "pydantic", "yaml", "rich", "dask", "psycopg", "engine",
         "knowledge_graph", "store", "batch", "service")


def asl_command() -> list[str]:
    """The console script beside this interpreter, else `python -c` on cli.main."""
    script = Path(sys.executable).with_name("asl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, its output discarded."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def heavy_imports() -> list[str]:
    """The HEAVY top-level packages in sys.modules after `import cli.main`."""
    code = ("import sys, cli.main; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    return [name for name in HEAVY if name in loaded]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--repeat", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "asl --help": [*asl_command(), "--help"],
        "asl --version": [*asl_command(), "--version"],
    }
    for argv in commands.values():  # warm the file cache: the first run reads from disk
        run_once(argv)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            times[name].append(run_once(argv))
    median = {name: (statistics.median(w for w, _ in runs),
                     statistics.median(c for _, c in runs)) for name, runs in times.items()}
    base_wall, base_cpu = median["python -c pass"]
    print(f"start-up, median of {args.repeat} interleaved runs each ({sys.executable})")
    print(f"{'command':<16}{'wall s':>9}{'cpu s':>9}{'+wall s':>10}{'+cpu s':>9}"
          f"{'x wall':>8}{'x cpu':>8}")
    worst = 0.0
    for name, (wall, cpu) in median.items():
        extra = "" if name == "python -c pass" else (
            f"{wall - base_wall:>10.3f}{cpu - base_cpu:>9.3f}"
            f"{wall / base_wall:>8.2f}{cpu / max(base_cpu, 1e-3):>8.2f}")
        if name != "python -c pass":
            worst = max(worst, wall - base_wall, cpu - base_cpu)
        print(f"{name:<16}{wall:>9.3f}{cpu:>9.3f}{extra}")
    verdict = "within" if worst <= TARGET_EXTRA_S else "OVER"
    print(f"largest extra over the bare interpreter: {worst:.3f} s ({verdict} the "
          f"{TARGET_EXTRA_S} s target)")
    heavy = heavy_imports()
    print(f"heavy packages imported by `import cli.main`: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
