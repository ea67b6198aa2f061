"""Writes of many threads of one process, committed together: one transaction, one sync.

A stored assessment's write is small (a few rows and a decision-log entry), and on
SQLite with `synchronous=FULL` most of its transaction is the sync at commit, with the
database's one write lock held throughout. Under load (the service's request threads,
two or more workers) writers queue for that lock, then each commits and syncs alone. A
`GroupCommit` instead lets the writes waiting in a process go in together: the first
writer to arrive leads, takes the writers' turn (`engine.begin()`), runs every write
queued by then in that one transaction, in the order they came, commits once, and hands
the lead to the first writer that queued meanwhile. Each write still commits before its
caller returns, so an answer never reports what a power cut could take back, and each
is whole or absent: when one of a group fails, the group is rolled back and its writes
are run again one transaction each, so that the failure is the failing caller's alone.

Nothing is read between the writes of a group that one of them could change for
another except through the transaction itself (the decision log's chain head is read
inside it, so entries chain in the order they were written).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")


@dataclass(eq=False)
class _Write(Generic[T]):
    """One caller's write, and what became of it."""

    run: Callable[[Connection], T]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next group, not because it is done
    result: Any = None
    error: BaseException | None = None
    finished: bool = False  # committed (result) or failed (error)


class GroupCommit:
    """Commits the writes of this process's threads in groups (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._queued: list[_Write[Any]] = []
        self._leading = False

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run `write` in a writer's transaction shared with other threads' writes, and
        return its result once that transaction has committed (or raise its error, or
        the commit's)."""
        mine: _Write[T] = _Write(write)
        with self._lock:
            self._queued.append(mine)
            lead = not self._leading
            self._leading = True
        while not lead:
            mine.done.wait()
            if not mine.lead:
                break
            lead, mine.lead = True, False
            mine.done.clear()
        if lead:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[no-any-return]

    @property
    def waiting(self) -> int:
        """How many writes are queued for the next group."""
        with self._lock:
            return len(self._queued)

    def _take(self) -> list[_Write[Any]]:
        with self._lock:
            group, self._queued = self._queued, []
        return group

    def _lead(self) -> None:
        """Commit the writes queued by the time the writers' turn is had (those that
        came while the leader waited for it included), then pass the lead on (or put
        it down)."""
        group: list[_Write[Any]] = []
        try:
            try:
                with self.engine.begin() as conn:
                    group = self._take()
                    results = [write.run(conn) for write in group]
            except Exception as exc:
                group = group or self._take()  # begin() failed before taking them
                if len(group) == 1:
                    group[0].error, group[0].finished = exc, True
                else:  # run again alone: the failure is one caller's
                    self._alone(group)
            else:
                for write, result in zip(group, results, strict=True):
                    write.result, write.finished = result, True
        finally:
            for write in group:
                if not write.finished:  # the leader was interrupted mid-commit
                    write.error = RuntimeError("the write was interrupted; nothing of it "
                                               "was committed")
            with self._lock:
                if self._queued:
                    following = self._queued[0]
                    following.lead = True
                    following.done.set()
                else:
                    self._leading = False
            for write in group:
                write.done.set()

    def _alone(self, group: list[_Write[Any]]) -> None:
        """Each write of `group` in a transaction of its own."""
        for write in group:
            try:
                with self.engine.begin() as conn:
                    write.result = write.run(conn)
            except Exception as exc:  # raised in its caller's thread
                write.error = exc
            write.finished = True
