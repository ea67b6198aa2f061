"""store.group_commit: the writes of many threads commit together, each caller gets its
own result once committed, one failing write fails only its caller, and decision-log
entries written in one group still chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from store import audit, turns
from store.db import connect
from store.group_commit import GroupCommit

THREADS = 8


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = connect(f"sqlite:///{tmp_path}/asl.db")
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    yield made
    made.dispose()


def commits_of(engine: Engine) -> list[int]:
    """A list that grows by one at each commit on `engine` from now on."""
    seen: list[int] = []
    event.listen(engine, "commit", lambda _conn: seen.append(1))
    return seen


def insert(x: int, fail: bool = False) -> Callable[[Connection], int]:
    def write(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        if fail:
            raise ValueError(f"write {x} refused")
        return x
    return write


def rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT x FROM t ORDER BY x"))]


def run_queued(engine: Engine, writes: list[Callable[[Connection], Any]]
               ) -> tuple[list[Any], int]:
    """Run `writes` from a thread each while another process holds the writers' turn,
    so that all of them queue before any commits; their outcomes (a result or the
    exception raised) and how many commits were made."""
    group = GroupCommit(engine)
    commits = commits_of(engine)
    outcomes: list[Any] = [None] * len(writes)

    def call(i: int) -> None:
        try:
            outcomes[i] = group.run(writes[i])
        except Exception as exc:
            outcomes[i] = exc

    held = turns.take(str(engine.url.database), deadline=time.monotonic())
    assert held is not None
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(writes))]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while group.waiting < len(writes):  # the leader waits for the turn with them
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        turns.give_back(held)
    for thread in threads:
        thread.join(timeout=60)
    return outcomes, len(commits)


def test_writes_queued_together_commit_once_and_each_caller_gets_its_result(
        engine: Engine) -> None:
    outcomes, commits = run_queued(engine, [insert(x) for x in range(THREADS)])
    assert outcomes == list(range(THREADS))
    assert commits == 1
    assert rows(engine) == list(range(THREADS))


def test_a_failing_write_fails_its_caller_alone(engine: Engine) -> None:
    writes = [insert(x, fail=x == 3) for x in range(THREADS)]
    outcomes, commits = run_queued(engine, writes)
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "write 3 refused"
    assert [o for i, o in enumerate(outcomes) if i != 3] == [x for x in range(THREADS)
                                                             if x != 3]
    assert rows(engine) == [x for x in range(THREADS) if x != 3]  # nothing of write 3
    assert commits == THREADS - 1  # the group rolled back, then each alone


def test_one_write_alone_is_one_commit_and_its_error_is_raised(engine: Engine) -> None:
    group = GroupCommit(engine)
    commits = commits_of(engine)
    assert group.run(insert(1)) == 1
    with pytest.raises(ValueError, match="write 2 refused"):
        group.run(insert(2, fail=True))
    assert rows(engine) == [1] and len(commits) == 1


def test_decision_log_entries_written_in_one_group_chain(engine: Engine) -> None:
    def entry(i: int) -> Callable[[Connection], Any]:
        return lambda conn: audit.append(conn, actor=f"person-{i}", action="assess")

    outcomes, commits = run_queued(engine, [entry(i) for i in range(THREADS)])
    assert commits == 1
    assert sorted(o.seq for o in outcomes) == list(range(1, THREADS + 1))
    verified = audit.verify(engine)
    assert verified.failure is None and verified.checked == THREADS


def test_many_threads_many_writes_all_stored(engine: Engine) -> None:
    """No write lost or doubled when the lead passes from thread to thread."""
    group = GroupCommit(engine)
    per_thread = 25
    failures: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                assert group.run(insert(t * per_thread + i)) == t * per_thread + i
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert rows(engine) == list(range(THREADS * per_thread))
