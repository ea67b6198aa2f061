"""A batch whose writes fail part-way (issue 15, point 5).

Disk full or an I/O error during `asl batch` used to print SQLAlchemy's traceback with
the row data bound to the failing statement. Here the batch runs under a file-size
limit (RLIMIT_FSIZE, as `ulimit -f` sets; Python ignores SIGXFSZ, so the write fails
with EFBIG and SQLite reports an I/O error): it stops with one line and exit status 1,
the record holds whole results only, and running it again without the limit resumes,
storing every model exactly once.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import synth

MODELS = 150
LIMIT_BYTES = 2 * 1024 * 1024  # the schema and a few dozen results fit; 150 do not
SUMMARY_LINE = "  assessed {}, unchanged {} (skipped), rejected 0"


def asl(*args: str | Path, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """`asl ARGS` in a subprocess, with at most `limit` bytes per file written."""
    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code = "import sys; sys.argv[0] = 'asl'; from cli.main import main; main()"
    env = {k: v for k, v in os.environ.items() if k != "ASL_DATABASE_URL"}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False,
                          preexec_fn=limited)


def stored(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [row[0] for row in conn.execute("SELECT model_id FROM assessment")]


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no file-size limit here")
def test_a_write_failing_part_way_is_one_line_and_the_rerun_resumes(tmp_path: Path) -> None:
    portfolio = tmp_path / "p.jsonl"
    synth.write_portfolio(portfolio, synth.generate_models(MODELS, seed=15))
    database = tmp_path / "asl.db"
    args = ("batch", portfolio, "--db", database, "--no-progress", "--jobs", "1")

    full = asl(*args, cwd=tmp_path, limit=LIMIT_BYTES)

    assert full.returncode == 1, full.stderr[-2000:]
    assert full.stdout == ""
    (line,) = full.stderr.splitlines()
    assert line.startswith(f"asl: cannot write to database sqlite:///{database}: ")
    assert line.endswith("; every result committed before is stored, and running the "
                         "same command again resumes")
    kept = stored(database)
    assert 0 < len(kept) < MODELS and len(set(kept)) == len(kept)

    again = asl(*args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-2000:]
    assert SUMMARY_LINE.format(MODELS - len(kept), len(kept)) in again.stdout.splitlines()
    assert sorted(stored(database)) == sorted(doc["model"]["id"]
                                              for doc in synth.generate_models(MODELS, seed=15))
