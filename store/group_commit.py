"""Writes of many threads of one process, committed together: one transaction, one sync.

A stored assessment's write is small (a few rows and a decision-log entry), and on
SQLite with `synchronous=FULL` much of its transaction is the sync at commit, with the
database's one write lock held throughout. Under load (the service's request threads,
two or more workers) writers queue for that lock, then each commits and syncs alone. A
`GroupCommit` instead lets the writes waiting in a process go in together: the first
writer to arrive leads, takes the writers' turn (`engine.begin()`), runs every write
queued by then (those that came while it waited for the turn included) in that one
transaction, in the order they came, commits once, and hands the lead to the first
writer that queued meanwhile. Each write still commits before its caller returns, so an
answer never reports what a power cut could take back, and each is whole or absent:
when a write raises, the group is rolled back, that error is its caller's, and the
other writes run again, one transaction each; when the transaction itself fails (no
turn, the commit refused), every write of the group fails with that error, run once.

Nothing is read between the writes of a group that one of them could change for
another except through the transaction itself (the decision log's chain head is read
inside it, so entries chain in the order they were written). A write must not call
`run` itself, nor may `run` be called inside a transaction of the same engine (the
turn is not re-entrant): the first raises RuntimeError, the second would wait out the
busy timeout.
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


class _RolledBack(Exception):
    """A write of the group raised: roll the transaction back."""


class GroupCommit:
    """Commits the writes of this process's threads in groups (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._queued: list[_Write[Any]] = []
        self._leading = False
        self._writing = threading.local()  # set in a thread while it runs a group

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run `write` in a writer's transaction shared with other threads' writes, and
        return its result once that transaction has committed (or raise its error, or
        the transaction's)."""
        if getattr(self._writing, "active", False):
            raise RuntimeError("GroupCommit.run called from within a write")
        mine: _Write[T] = _Write(write)
        with self._lock:
            self._queued.append(mine)
            lead = not self._leading
            self._leading = True
        try:
            while not lead:
                mine.done.wait()
                if not mine.lead:
                    break
                lead, mine.lead = True, False
                mine.done.clear()
        except BaseException:  # interrupted while queued: leave, passing on any lead
            self._withdraw(mine, lead or mine.lead)
            raise
        if lead:
            self._lead(mine)
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

    def _withdraw(self, mine: _Write[Any], leading: bool) -> None:
        """Take `mine` out of the queue if it is still there; if it held the lead, pass
        it on (or put it down)."""
        with self._lock:
            if mine in self._queued:
                self._queued.remove(mine)
            if leading:
                self._pass_lead()

    def _pass_lead(self) -> None:
        """(Under the lock.) Wake the first queued write to lead, or put the lead down."""
        if self._queued:
            following = self._queued[0]
            following.lead = True
            following.done.set()
        else:
            self._leading = False

    def _lead(self, mine: _Write[Any]) -> None:
        """Commit the writes queued by the time the writers' turn is had, then pass the
        lead on (or put it down)."""
        group: list[_Write[Any]] = []
        failed: dict[int, Exception] = {}  # a write that raised: its position, its error
        self._writing.active = True
        try:
            try:
                with self.engine.begin() as conn:
                    group = self._take()
                    results = []
                    for i, write in enumerate(group):
                        try:
                            results.append(write.run(conn))
                        except Exception as exc:  # the caller's: raised in its thread
                            failed[i] = exc
                            raise _RolledBack from exc
            except _RolledBack:
                for i, write in enumerate(group):
                    if i in failed:
                        write.error, write.finished = failed[i], True
                self._alone([w for i, w in enumerate(group) if i not in failed])
            except Exception as exc:  # no turn, no transaction, or the commit failed
                group = group or self._take()
                for write in group:
                    write.error, write.finished = exc, True
            else:
                for write, result in zip(group, results, strict=True):
                    write.result, write.finished = result, True
        finally:
            self._writing.active = False
            if mine not in group:  # interrupted before the group was taken
                group.append(mine)
            for write in group:
                if not write.finished:  # the leader was interrupted mid-commit
                    write.error = RuntimeError("the write was interrupted; nothing of it "
                                               "was committed")
            with self._lock:
                if mine in self._queued:
                    self._queued.remove(mine)
                self._pass_lead()
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
