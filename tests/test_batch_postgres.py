"""`asl batch` into the throwaway PostgreSQL (tests/pg_server.py) under stress, as the
SQLite tests do it (issue 15, point 11): two batches writing one fresh database at once
(racing to create its schema), and a batch whose writes fail part-way because the disk
holding its tables fills up. The kill test is tests/test_batch_faults.py's.

The full disk is real: the database's tables go to a tablespace on a small tmpfs (so
the test needs to be allowed to mount one, as root in a VM or container usually is; it
is skipped otherwise), which is then enlarged for the run that resumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import synth
from pg_server import _run_as
from sqlalchemy import create_engine, text

from store.record import decompress

SEED = 15_07
SHARED = 80  # models in each portfolio of the two-batches-at-once test
FULL_MODELS = 400  # about 4 MB as stored since revision 0008: twice the tiny disk
TINY_DISK = "2m"  # the schema fits, and some of the results; not all of them
RUN_TIMEOUT_S = 240


def asl(*args: str | Path, cwd: Path, wait: bool = True) -> Any:
    script = Path(sys.executable).with_name("asl")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; sys.argv[0] = 'asl'; from cli.main import main; "
        "main()"]
    env = {k: v for k, v in os.environ.items() if k != "ASL_DATABASE_URL"}
    argv = [*command, *map(str, args)]
    if wait:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=False)
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stored(url: str) -> dict[str, list[str]]:
    """Every stored assessment's result (canonical JSON), per model, oldest first."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(text("SELECT model_id, result FROM assessment "
                                          "ORDER BY id")))
    finally:
        engine.dispose()
    found: dict[str, list[str]] = {}
    for model, blob in rows:
        found.setdefault(model, []).append(_canonical(decompress(blob)))
    return found


def _canonical(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, ensure_ascii=False)


def clean_results(portfolio: Path, root: Path) -> dict[str, str]:
    """Each model's result from a clean batch of `portfolio` into SQLite."""
    output = root / f"{portfolio.stem}-clean.jsonl"
    run = asl("batch", portfolio, "--db", root / f"{portfolio.stem}-clean.db", "--jobs", "1",
              "--no-progress", "--output", output, cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    return {json.loads(line)["model"]: _canonical(json.loads(line))
            for line in output.read_text(encoding="utf-8").splitlines()}


def counts(stdout: str) -> tuple[int, int, int]:
    line = next(line for line in stdout.splitlines() if line.startswith("  assessed "))
    words = line.replace(",", "").split()
    return int(words[1]), int(words[3]), int(words[6])


@pytest.mark.slow
@pytest.mark.parametrize("same", [False, True], ids=["two-portfolios", "same-portfolio-twice"])
def test_two_batches_into_one_postgresql_database_at_once(same: bool, postgres_url: str,
                                                          tmp_path: Path) -> None:
    """Both finish with exit 0 and nothing on standard error; the schema is made once;
    every model's result is a clean run's. Two portfolios of different models: one
    assessment each. One portfolio twice: one or two per model (two when both batches
    got to it first), identical, none lost."""
    docs = synth.generate_models(SHARED, seed=SEED, lineage=True)
    tags = ["c"] if same else ["a", "b"]
    paths = []
    for tag in tags:
        path = tmp_path / f"{tag}.jsonl"
        path.write_text("".join(json.dumps(d, separators=(",", ":")).replace(
            "synth-", f"synth-{tag}-") + "\n" for d in docs), encoding="utf-8")
        paths.append(path)
    if same:
        paths.append(paths[0])
    procs = [asl("batch", path, "--db", postgres_url, "--jobs", "1", "--no-progress",
                 cwd=tmp_path, wait=False) for path in paths]
    outs = [proc.communicate(timeout=RUN_TIMEOUT_S) for proc in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert err == ""

    expected: dict[str, str] = {}
    for path in dict.fromkeys(paths):
        expected |= clean_results(path, tmp_path)
    found = stored(postgres_url)
    assert sorted(found) == sorted(expected), "models lost or unknown models stored"
    assert {m: r for m, r in found.items() if set(r) != {expected[m]}} == {}
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()
    per_model = Counter(len(results) for results in found.values())
    if same:  # one assessment per model: the second writer skips what the first stored
        assert set(per_model) == {1}
        assert sum(counts(out)[0] for out, _ in outs) == sum(
            len(results) for results in found.values())
    else:
        assert per_model == {1: 2 * SHARED}
        assert [counts(out) for out, _ in outs] == [(SHARED, 0, 0), (SHARED, 0, 0)]


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A small tmpfs, owned by the user the server runs as; unmounted afterwards."""
    where = Path(tempfile.mkdtemp(prefix="asl-tiny-", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_DISK},mode=0700",
                              "tmpfs", str(where)], capture_output=True, text=True,
                             check=False)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        owner = _run_as()
        if owner:
            os.chown(where, owner["user"], owner["group"])
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


@pytest.mark.slow
def test_disk_full_under_postgresql_is_one_line_and_the_rerun_resumes(
        postgres_server: Any, tiny_disk: Path, tmp_path: Path) -> None:
    """The database's tables live on a 2 MiB disk: the batch stops with one line and
    exit status 1, leaving whole results only; with the disk enlarged, the same command
    resumes and stores every model exactly once, as a clean run does."""
    portfolio = tmp_path / "p.jsonl"
    synth.write_portfolio(portfolio, synth.generate_models(FULL_MODELS, seed=SEED))
    name = f"asl_full_{os.getpid()}"
    with postgres_server.connect_admin() as conn:
        conn.execute(f"CREATE TABLESPACE {name} LOCATION '{tiny_disk}'")
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" SET default_tablespace = {name}')
    url = postgres_server.url(name)
    try:
        args = ("batch", portfolio, "--db", url, "--no-progress", "--jobs", "1")
        full = asl(*args, cwd=tmp_path)
        assert full.returncode == 1, full.stderr[-2000:]
        assert full.stdout == ""
        assert len(full.stderr.splitlines()) == 1, full.stderr[-3000:]
        (line,) = full.stderr.splitlines()
        assert line.startswith(f"asl: cannot write to database {url}: "), line
        assert line.endswith("; every result committed before is stored, and running the "
                             "same command again resumes")
        assert "INSERT" not in line and "Traceback" not in line
        kept = stored(url)
        assert 0 < len(kept) < FULL_MODELS
        assert all(len(results) == 1 for results in kept.values())

        subprocess.run(["mount", "-o", "remount,size=256m", str(tiny_disk)], check=True)
        again = asl(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        assert counts(again.stdout) == (FULL_MODELS - len(kept), len(kept), 0)
        expected = clean_results(portfolio, tmp_path)
        found = stored(url)
        assert sorted(found) == sorted(expected)
        assert {m: r for m, r in found.items() if r != [expected[m]]} == {}
        assert {m: r for m, r in kept.items() if found[m] != r} == {}
    finally:
        with postgres_server.connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
