"""Benchmark: bytes stored per model, and `asl why MODEL` from a large record.

Prints, in one run:

1. Bytes per model in SQLite with full provenance, after (this schema: compact zstd
   results and graphs, the rules fired as one column) and before (the same assessments
   taken down to schema revision 0005 by the migration's downgrade, which rebuilds the
   conclusion and provenance edge rows and the zlib'd JSON blobs exactly as 0005 stored
   them), each database vacuumed, with the ratio and each table's and index's share.
   Target (issue 13 point 3): at most 8 KiB per model.
2. `asl why MODEL` wall time, start-up included, on a stored assessment among `--why`
   (default 100,000) stored models (the batch's rows copied under new model ids), the
   median of several runs, beside `asl --version` (Python and click starting) measured
   the same way. Target (point 6): under 0.3 s.

    python benchmarks/storage_bench.py            # 2,000 models, why among 100,000
    python benchmarks/storage_bench.py -n 500 --why 20000
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import synth

from store.db import _config, connect

ROOT = Path(__file__).resolve().parent.parent
ASL = str(Path(sys.executable).parent / "asl")
SEED = 4_242  # not the dictionary's training seed
RUNS = 7


def say(line: str = "") -> None:
    print(line, flush=True)


def vacuumed_size(db: Path) -> tuple[int, dict[str, int]]:
    """The file's size after VACUUM, and each table's and index's bytes (dbstat)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        parts = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
    return db.stat().st_size, parts


def downgrade(db: Path, revision: str) -> None:
    from alembic import command

    engine = connect(f"sqlite:///{db}", migrate=False)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    engine.dispose()


def show_sizes(label: str, size: int, parts: dict[str, int], models: int) -> float:
    per = size / models
    say(f"  {label:<8}{per / 1024:8.2f} KiB per model ({size / 2**20:,.1f} MiB for "
        f"{models:,} models)")
    for name, n in sorted(parts.items(), key=lambda kv: -kv[1])[:8]:
        if n / models >= 16:
            say(f"            {name:<36}{n / models:8.0f} bytes per model")
    return per


def clone(db: Path, copies: int) -> int:
    """Copy every stored model's rows under new ids until the record holds `copies`
    times as many models; the number of models."""
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(assessment)")
                   if r[1] not in ("id", "model_id", "batch_id")]
        names = ", ".join(columns)
        for k in range(1, copies):
            conn.execute("INSERT INTO model (id, first_assessed) SELECT id || '~' || ?, "
                         "first_assessed FROM model WHERE id NOT LIKE '%~%'", (k,))
            conn.execute(f"INSERT INTO assessment (model_id, {names}) SELECT "
                         f"model_id || '~' || ?, {names} FROM assessment "
                         "WHERE model_id NOT LIKE '%~%' ORDER BY id", (k,))
        conn.commit()
        conn.execute("ANALYZE")
        return int(conn.execute("SELECT count(*) FROM model").fetchone()[0])


def wall(args: list[str]) -> float:
    """Median wall seconds of running `args` (output discarded), after one warm-up."""
    times = []
    for i in range(RUNS + 1):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000, help="models in the portfolio")
    parser.add_argument("--why", type=int, default=100_000,
                        help="stored models `asl why` looks one up among")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        portfolio = base / "portfolio.jsonl"
        synth.write_portfolio(portfolio, synth.generate_models(args.n, seed=SEED,
                                                               lineage=True))
        after = base / "after.db"
        subprocess.run([ASL, "batch", str(portfolio), "--db", str(after), "--no-progress",
                        "--jobs", str(args.jobs)], check=True, stdout=subprocess.DEVNULL)
        before = base / "before.db"
        shutil.copy(after, before)
        downgrade(before, "0005")
        say(f"storage, {args.n:,} synthetic models with lineage (SQLite, vacuumed):")
        old = show_sizes("before", *vacuumed_size(before), args.n)
        new = show_sizes("after", *vacuumed_size(after), args.n)
        say(f"  ratio after/before {new / old:.3f}; target at most 8 KiB per model: "
            f"{'met' if new <= 8192 else 'NOT met'}")

        models = clone(after, max(1, args.why // args.n))
        with sqlite3.connect(after) as conn:
            model = conn.execute("SELECT model_id FROM assessment ORDER BY id DESC "
                                 "LIMIT 1").fetchone()[0]
        say(f"\n`asl why {model}` among {models:,} stored models (median of {RUNS} runs, "
            "start-up included):")
        floor = wall([ASL, "--version"])
        took = wall([ASL, "why", model, "--db", str(after), "--conclusion", "decision"])
        say(f"  asl --version   {floor:6.3f} s")
        say(f"  asl why         {took:6.3f} s (ratio to --version {took / floor:.2f}); "
            f"target under 0.3 s: {'met' if took < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
