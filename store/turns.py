"""Writers of one SQLite file taking turns across processes, without SQLite's sleeps.

SQLite lets one writer in at a time; a writer that finds the file locked waits in its
busy handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between tries and so wakes long
after the lock was freed. With two service workers storing assessments at once (each
write transaction holds the lock for 2-4 ms), those sleeps put 50 ms on the 99th
percentile of BEGIN IMMEDIATE and up to half a second on its slowest
(benchmarks/serve_bench.py). So before BEGIN IMMEDIATE a writer takes an exclusive
`flock` on a file beside the database, `<database>-lock`, and holds it until its
transaction ends: then SQLite's lock is free whenever a writer asks for it. A writer
that finds the turn taken waits for it in the kernel (a blocking flock, in a thread of
its own so that the wait stays bounded), woken the moment it is given back: polling
for it instead (every 1 ms, or every switch of the GIL under load) let the process
that had just given it back take it again first, and the other waited tens of ms.
Every asl writer takes the turn (`store.db.SQLiteEngine.begin`); a writer that does not
(another program) is still kept apart by SQLite's own lock.

The wait is bounded by the busy timeout, as SQLite's is: past it, or when the lock file
cannot be opened (a read-only directory, a file system without flock), the writer goes
on to SQLite's own wait, which decides as it always did (as it does where there is no
flock at all). The lock file is left in place (removing it would let two writers hold
locks on two different files); its contents are never read. The kernel drops the lock
when its holder exits, however it exits.
"""

from __future__ import annotations

import os
import threading

try:
    import fcntl
except ImportError:  # not a POSIX system: SQLite's own lock alone
    fcntl = None  # type: ignore[assignment]


def lock_path(database: str) -> str:
    """The lock file of the SQLite file `database`."""
    return f"{database}-lock"


def take(database: str, timeout: float) -> int | None:
    """Wait (at most `timeout` seconds) for the writers' turn on `database`: the open
    lock file, to be passed to `give_back`, or None when the turn could not be had
    (the caller then relies on SQLite's own lock alone)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:  # taken: wait for it below, if at all
        if timeout <= 0:
            os.close(fd)
            return None
    except BaseException:  # no flock on this file system (OSError), or interrupted
        os.close(fd)
        return None
    return _Wait(fd).result(timeout)


def give_back(fd: int) -> None:
    """End a turn `take` gave: closing the file releases its lock."""
    os.close(fd)


class _Wait:
    """A blocking flock on `fd` in a thread of its own, which the caller waits for at
    most a timeout; the turn, if it comes after the caller stopped waiting, is given
    back at once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._had = threading.Event()
        self._abandoned = False
        self._failed = False
        threading.Thread(target=self._wait, name="asl-writers-turn", daemon=True).start()

    def _wait(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            self._failed = True
        with self._lock:
            if self._abandoned:  # the caller went on without it
                os.close(self.fd)
                return
            self._had.set()

    def result(self, timeout: float) -> int | None:
        """The fd, holding the turn, or None (the fd then closed by whichever side is
        last)."""
        had = self._had.wait(timeout)
        with self._lock:
            if not had and not self._had.is_set():
                self._abandoned = True
                return None
        if self._failed:
            os.close(self.fd)
            return None
        return self.fd
