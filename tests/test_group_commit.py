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


def run_queued(engine: Engine, writes: list[Callable[[Connection], Any]],
               group: GroupCommit | None = None) -> tuple[list[Any], int]:
    """Run `writes` (through `group`, or a new one) from a thread each while another
    process holds the writers' turn, so that all of them queue before any commits;
    their outcomes (a result or the exception raised) and how many commits were made."""
    group = group or GroupCommit(engine)
    commits = commits_of(engine)
    outcomes: list[Any] = [None] * len(writes)

    def call(i: int) -> None:
        try:
            outcomes[i] = group.run(writes[i])
        except BaseException as exc:  # KeyboardInterrupt included: the outcome under test
            outcomes[i] = exc

    held = turns.take(str(engine.url.database), timeout=0)
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


def test_a_write_that_calls_run_is_refused(engine: Engine) -> None:
    group = GroupCommit(engine)
    with pytest.raises(RuntimeError, match="from within a write"):
        group.run(lambda conn: group.run(insert(1)))
    assert group.run(insert(2)) == 2  # and the next write goes on
    assert rows(engine) == [2]


def test_a_commit_that_fails_fails_its_whole_group_once(engine: Engine) -> None:
    """A deferred foreign key is checked at COMMIT: the group's transaction fails as a
    whole, and no write is run again (it cannot be told whose it is)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE c (p INTEGER REFERENCES p (id) "
                          "DEFERRABLE INITIALLY DEFERRED)"))
    runs: list[int] = []

    def child(x: int) -> Callable[[Connection], int]:
        def write(conn: Connection) -> int:
            runs.append(x)
            conn.execute(text("INSERT INTO c VALUES (:p)"), {"p": 7 if x == 2 else None})
            return x
        return write

    outcomes, commits = run_queued(engine, [child(x) for x in range(4)])
    assert all(isinstance(o, Exception) and "FOREIGN KEY" in str(o) for o in outcomes)
    assert sorted(runs) == [0, 1, 2, 3] and commits == 1  # one COMMIT, refused
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM c")).scalar() == 0


def test_a_leader_interrupted_mid_group_leaves_the_next_write_free_to_go(
        engine: Engine) -> None:
    """KeyboardInterrupt from a write, in the leading thread: that thread raises it, the
    group's other writes fail (nothing of them committed), and the lead is not lost: a
    later write through the same GroupCommit goes on."""
    def interrupted(conn: Connection) -> int:
        raise KeyboardInterrupt

    group = GroupCommit(engine)
    outcomes, commits = run_queued(engine, [insert(0), interrupted, insert(2)], group)
    assert commits == 0 and rows(engine) == []
    # raised in the leading thread (which ran the write), the others' writes undone
    assert sorted(type(o).__name__ for o in outcomes) == ["KeyboardInterrupt",
                                                          "RuntimeError", "RuntimeError"]
    done: list[int] = []
    after = threading.Thread(target=lambda: done.append(group.run(insert(5))))
    after.start()
    after.join(timeout=60)
    assert done == [5] and rows(engine) == [5]
