"""`asl batch` killed (SIGKILL) at random moments, many times in one run, on SQLite and
on PostgreSQL (issue 15, point 11).

One portfolio is batched into one database again and again, each run SIGKILLed, with
its pool workers (the whole process group), at a moment of its life: right as the
database is being created and its schema migrated, right as SQLite checkpoints its
write-ahead log into the database file (the first moment the file itself changes after
results are committed), and at random times drawn from a seeded generator over the
whole of a run (start-up, reading, the pool starting, assessing, committing). After
every kill the record must hold whole results only, each exactly a clean run's; after
the last, running the same command to the end must store every model exactly once and
write an `--output` byte for byte a clean run's.

Runs alternate `--jobs 1` (in-process) and `--jobs 2` (a pool of workers). The random
moments come from `random.Random(SEED)`; a failing draw is reproduced by the seed and
the kill's number in the assertion message.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest
import synth
from sqlalchemy import create_engine, text

from store.record import decompress

SEED = 15_11
MODELS = 120
RANDOM_KILLS = 6
RUN_TIMEOUT_S = 240
POLL_S = 0.002

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="needs Linux /proc and process groups")


def asl_command() -> tuple[list[str], dict[str, str]]:
    script = Path(sys.executable).with_name("asl")
    env = {k: v for k, v in os.environ.items() if k != "ASL_DATABASE_URL"}
    if script.exists():
        return [str(script)], env
    code = "import sys; sys.argv[0] = 'asl'; from cli.main import main; main()"
    return [sys.executable, "-c", code], env


def start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """asl in a process group of its own (it and its workers), output to files."""
    command, env = asl_command()
    with (cwd / "run.out").open("wb") as out, (cwd / "run.err").open("wb") as err:
        return subprocess.Popen([*command, *args], cwd=cwd, env=env, stdout=out, stderr=err,
                                start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the batch and every process of its group (only a group we started)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


class Record:
    """The database a batch writes, read the way the test needs: each stored model's
    results (as `--output` lines), and whether the schema exists yet."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = (create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
                       if url.startswith("postgresql") else None)

    def _rows(self, sql: str) -> list[Any]:
        if self.engine is None:
            path = self.url.removeprefix("sqlite:///")
            if not Path(path).exists():
                return []
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as conn:
                return conn.execute(sql).fetchall()
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql)))

    def stored(self) -> dict[str, list[str]]:
        """Every stored assessment's result line, per model, oldest first."""
        try:
            rows = self._rows("SELECT model_id, result FROM assessment ORDER BY id")
        except Exception as exc:  # no schema yet (killed while creating it)
            if "assessment" in str(exc) and ("no such table" in str(exc)
                                             or "does not exist" in str(exc)):
                return {}
            raise
        found: dict[str, list[str]] = {}
        for model, blob in rows:
            line = json.dumps(decompress(blob), sort_keys=True,
                              ensure_ascii=False)
            found.setdefault(model, []).append(line)
        return found

    def sound(self) -> None:
        """SQLite's integrity and foreign key checks pass (PostgreSQL keeps its own)."""
        if self.engine is None and Path(self.url.removeprefix("sqlite:///")).exists():
            assert self._rows("PRAGMA integrity_check") == [("ok",)]
            assert self._rows("PRAGMA foreign_key_check") == []

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def reference(portfolio: Path, root: Path) -> tuple[dict[str, str], str, float]:
    """A clean batch of the portfolio into a database of its own: each model's result
    line, the `--output` text, and how long the run took."""
    output = root / "clean.jsonl"
    began = time.monotonic()
    proc = start(["batch", str(portfolio), "--db", f"sqlite:///{root / 'clean.db'}",
                  "--jobs", "1", "--no-progress", "--output", str(output)], root)
    assert proc.wait(timeout=RUN_TIMEOUT_S) == 0, (root / "run.err").read_text()[-2000:]
    took = time.monotonic() - began
    lines = {json.loads(line)["model"]: json.dumps(json.loads(line), sort_keys=True,
                                                   ensure_ascii=False)
             for line in output.read_text(encoding="utf-8").splitlines()}
    assert len(lines) == MODELS
    return lines, output.read_text(encoding="utf-8"), took


def wait_until(proc: subprocess.Popen[bytes], moment: Callable[[], bool]) -> bool:
    """Poll `moment` until it is true (True) or the batch ends first (False)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not moment():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the moment to kill at never came"
        time.sleep(POLL_S)
    return True


def sqlite_moments(db: Path, record: Record) -> Iterator[tuple[str, Callable[[], bool]]]:
    """The SQLite run's chosen moments: the database file appearing (its schema is
    being created), then the file changing after results are committed (a checkpoint
    is copying the write-ahead log into it)."""
    yield "schema creation", db.exists

    seen: list[int] = []

    def checkpointing() -> bool:
        if not seen:  # wait for committed results, then note the file as it is
            if not record.stored() or not db.exists():
                return False
            seen.append(db.stat().st_mtime_ns)
            return False
        return db.stat().st_mtime_ns != seen[0]

    yield "WAL checkpoint", checkpointing


def postgres_moments(record: Record, dbname: str) -> Iterator[tuple[str, Callable[[], bool]]]:
    """The PostgreSQL run's chosen moment: a schema migration statement running."""
    def migrating() -> bool:
        rows = record._rows("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            f"'{dbname}' AND state = 'active' AND "
                            "(query ILIKE 'CREATE%' OR query ILIKE 'ALTER%')")
        return bool(rows[0][0])

    yield "schema creation", migrating


def kill_many(portfolio: Path, root: Path, fresh: Callable[[], Record],
              chosen: Callable[[Record], Iterator[tuple[str, Callable[[], bool]]]]) -> None:
    """Kill a batch of `portfolio` at each `chosen` moment and at RANDOM_KILLS random
    ones, checking the record after each; then run it to the end and check that every
    model is stored exactly once, identical to a clean run. A run that ends before its
    moment comes is checked the same way, and the next goes into a `fresh` database."""
    expected, clean_output, clean_s = reference(portfolio, root)
    rng = random.Random(SEED)
    output = root / "out.jsonl"
    record = fresh()
    plan: list[tuple[str, Callable[[], bool] | float]] = list(chosen(record))
    plan += [(f"random kill {i + 1} of seed {SEED}", rng.uniform(0.1, 1.0) * clean_s)
             for i in range(RANDOM_KILLS)]
    killed = 0
    for number, (what, when) in enumerate(plan):
        args = ["batch", str(portfolio), "--db", record.url, "--no-progress", "--output",
                str(output), "--jobs", str(1 + number % 2)]
        proc = start(args, root)
        try:
            if callable(when):
                hit = wait_until(proc, when)
            else:
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=when)
                hit = proc.poll() is None
        finally:
            kill_group(proc)
        if hit:
            killed += 1
            check_partial(record, expected, what)
            if output.exists():  # killed after its output was in place (in the checkpoint
                # SQLite makes as the last connection closes): every result was committed
                check_whole(record, expected, clean_output, output, what)
                output.unlink()
        else:  # it finished first: whole, and the next kills start afresh
            assert proc.returncode == 0, (root / "run.err").read_text()[-2000:]
            check_whole(record, expected, clean_output, output, what)
            output.unlink()
            record = fresh()
    assert killed >= len(plan) // 2, f"only {killed} of {len(plan)} runs were killed"

    proc = start(["batch", str(portfolio), "--db", record.url, "--no-progress", "--output",
                  str(output), "--jobs", "2"], root)
    assert proc.wait(timeout=RUN_TIMEOUT_S) == 0, (root / "run.err").read_text()[-2000:]
    assert (root / "run.err").read_text() == ""
    check_whole(record, expected, clean_output, output, "the final run")


def check_partial(record: Record, expected: dict[str, str], what: str) -> None:
    """After a kill: the database is sound and holds whole results only, each model's
    at most once and exactly a clean run's."""
    record.sound()
    stored = record.stored()
    doubled = sorted(m for m, results in stored.items() if len(results) != 1)
    assert not doubled, f"after {what}: stored more than once: {doubled[:5]}"
    wrong = sorted(m for m, (result,) in stored.items() if result != expected.get(m))
    assert not wrong, f"after {what}: stored results differ from a clean run: {wrong[:5]}"


def check_whole(record: Record, expected: dict[str, str], clean_output: str, output: Path,
                what: str) -> None:
    """After a run to the end: every model stored exactly once, as a clean run stores
    it, and `--output` byte for byte a clean run's."""
    record.sound()
    stored = record.stored()
    assert sorted(stored) == sorted(expected), f"{what}: models lost or unknown ones stored"
    assert {m: r for m, r in stored.items() if r != [expected[m]]} == {}, what
    assert output.read_text(encoding="utf-8") == clean_output, what


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "portfolio.jsonl"
    synth.write_portfolio(path, synth.generate_models(MODELS, seed=SEED, lineage=True))
    return path


@pytest.mark.slow
def test_killed_at_random_moments_on_sqlite(portfolio: Path, tmp_path: Path) -> None:
    made: list[Record] = []

    def fresh() -> Record:
        made.append(Record(f"sqlite:///{tmp_path / f'asl-{len(made)}.db'}"))
        return made[-1]

    def chosen(record: Record) -> Iterator[tuple[str, Callable[[], bool]]]:
        return sqlite_moments(Path(record.url.removeprefix("sqlite:///")), record)

    kill_many(portfolio, tmp_path, fresh, chosen)


@pytest.mark.slow
def test_killed_at_random_moments_on_postgresql(portfolio: Path, postgres_server: Any,
                                                tmp_path: Path) -> None:
    made: list[tuple[str, Record]] = []

    def fresh() -> Record:
        name = f"asl_faults_{len(made)}_{os.getpid()}"
        with postgres_server.connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append((name, Record(postgres_server.url(name))))
        return made[-1][1]

    def chosen(record: Record) -> Iterator[tuple[str, Callable[[], bool]]]:
        return postgres_moments(record, made[-1][0])

    try:
        kill_many(portfolio, tmp_path, fresh, chosen)
    finally:
        with postgres_server.connect_admin() as conn:
            for name, record in made:
                record.dispose()
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
