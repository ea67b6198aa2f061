"""Reading commands work on a database they may not write (issue 15, point 9).

`asl list` and `asl history` used to refuse a read-only SQLite record (they opened it
for writing, to migrate it). They now open a file they may not write read-only, and
print exactly what they print on a writable copy; nothing is created beside it.

root ignores permission bits, so the read-only runs happen in a forked child that
drops to `nobody` first (as tests/test_store_db.py does).
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from cli.main import main

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
READS = [["list"], ["list", "--format", "json"], ["history", "corvid-atlas-5"],
         ["diff", "corvid-atlas-5"]]


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _as_nobody(uid: int, gid: int, calls: list[list[str]], report: Any) -> None:
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        report.send([run(*call) for call in calls])
    except BaseException as exc:
        report.send(repr(exc))


def run_unprivileged(calls: list[list[str]]) -> list[tuple[int, str, str]]:
    """Each `asl CALL` as a user the permission bits apply to."""
    if os.geteuid() != 0:
        return [run(*call) for call in calls]
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("running as root, and cannot fork a child to drop to `nobody`")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root without a `nobody` user")
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_as_nobody, args=(nobody.pw_uid, nobody.pw_gid, calls, send))
    child.start()
    send.close()
    try:
        assert receive.poll(300), "the child running as nobody did not report"
        got = receive.recv()
    finally:
        child.join(30)
    assert isinstance(got, list), got
    return got


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="asl-readonly-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in (base, *base.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(base)


def test_list_history_and_diff_read_a_read_only_record(shared_dir: Path) -> None:
    record = shared_dir / "record"
    record.mkdir()
    database = record / "asl.db"
    for force in ([], ["--force"]):  # two assessments of each model, for diff
        code, _, err = run("batch", LINEAGE, "--db", database, "--no-progress", *force)
        assert code == 0, err
    calls = [[*call, "--db", str(database)] for call in READS]
    writable = [run(*call) for call in calls]
    assert all(code == 0 for code, _, _ in writable), writable
    database.chmod(0o444)
    record.chmod(0o555)
    before = sorted(p.name for p in record.iterdir())

    assert run_unprivileged(calls) == writable
    assert sorted(p.name for p in record.iterdir()) == before


def test_a_batch_still_refuses_a_read_only_record(shared_dir: Path) -> None:
    record = shared_dir / "record"
    record.mkdir()
    database = record / "asl.db"
    assert run("batch", LINEAGE, "--db", database, "--no-progress")[0] == 0
    database.chmod(0o444)
    record.chmod(0o555)
    ((code, out, err),) = run_unprivileged(
        [["batch", str(LINEAGE), "--db", str(database), "--no-progress"]])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(database) in err and "not writable" in err
