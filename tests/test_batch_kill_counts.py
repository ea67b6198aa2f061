"""A killed batch's run record counts what it committed (issue 15, point 8).

The run record's counts used to be written only when the batch finished, so a batch
killed after committing hundreds of results read `assessed 0`. Each chunk's transaction
now adds to the count, so at any moment, killed included, the record matches the
assessments it holds; the rerun's record counts the rest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import synth

from batch.executors import CHUNK

MODELS = 250
KILL_AFTER = 2 * CHUNK  # at least two chunks committed, well before the end


def asl_process(*args: str | Path, cwd: Path) -> subprocess.Popen[bytes]:
    code = "import sys; sys.argv[0] = 'asl'; from cli.main import main; main()"
    env = {k: v for k, v in os.environ.items() if k != "ASL_DATABASE_URL"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)) as conn:
        return conn.execute(sql).fetchall()


def committed(database: Path, batch_id: int) -> int:
    if not database.exists():
        return 0
    try:
        return int(query(database, "SELECT count(*) FROM assessment "
                                   f"WHERE batch_id = {batch_id}")[0][0])
    except sqlite3.OperationalError:  # the schema is still being created
        return 0


def test_a_killed_batch_records_what_it_committed(tmp_path: Path) -> None:
    portfolio = tmp_path / "p.jsonl"
    synth.write_portfolio(portfolio, synth.generate_models(MODELS, seed=8))
    database = tmp_path / "asl.db"
    args = ("batch", portfolio, "--db", database, "--no-progress", "--jobs", "1")
    running = asl_process(*args, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 600
        while committed(database, 1) < KILL_AFTER:
            assert running.poll() is None, running.stderr.read() if running.stderr else ""
            assert time.monotonic() < deadline, "the batch committed too little in time"
            time.sleep(0.05)
        os.killpg(running.pid, signal.SIGKILL)
    finally:
        running.wait(60)
        if running.stderr:
            running.stderr.close()

    ((finished, assessed),) = query(database, "SELECT finished, assessed FROM batch_run")
    kept = committed(database, 1)
    assert finished is None
    assert KILL_AFTER <= kept < MODELS
    assert assessed == kept

    rerun = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'asl'; "
                            "from cli.main import main; main()", *map(str, args)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600,
                           check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    runs = query(database, "SELECT id, assessed, skipped FROM batch_run ORDER BY id")
    assert runs == [(1, kept, 0), (2, MODELS - kept, kept)]
    assert committed(database, 2) == MODELS - kept
