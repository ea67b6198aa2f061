"""Writers of one SQLite file taking turns across processes, without SQLite's sleeps.

SQLite lets one writer in at a time; a writer that finds the file locked waits in its
busy handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between tries and so wakes long
after the lock was freed. With two service workers storing assessments at once (each
write transaction holds the lock for 2-4 ms), those sleeps put 50 ms on the 99th
percentile of BEGIN IMMEDIATE and up to half a second on its slowest
(benchmarks/serve_bench.py). So before BEGIN IMMEDIATE a writer takes an exclusive
`flock` on a file beside the database, `<database>-lock`, polled every 0.1-1 ms, and
holds it until its transaction ends: then SQLite's lock is free whenever a writer asks
for it. Every asl writer takes the turn (`store.db.SQLiteEngine.begin`); a writer that
does not (another program) is still kept apart by SQLite's own lock.

The wait is bounded by the busy timeout, as SQLite's is: past it, or when the lock file
cannot be opened (a read-only directory, a file system without flock), the writer goes
on to SQLite's own wait, which decides as it always did. The lock file is left in place
(removing it would let two writers hold locks on two different files); its contents are
never read. The kernel drops the lock when its holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
import time

FIRST_PAUSE_S = 0.0001
LONGEST_PAUSE_S = 0.001  # one waiting thread per process polls (the others wait in-process)


def lock_path(database: str) -> str:
    """The lock file of the SQLite file `database`."""
    return f"{database}-lock"


def take(database: str, deadline: float) -> int | None:
    """Wait (until the monotonic `deadline`) for the writers' turn on `database`: the
    open lock file, to be passed to `give_back`, or None when the turn could not be
    had (the caller then relies on SQLite's own lock alone)."""
    try:
        fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    pause = FIRST_PAUSE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
        except OSError:  # no flock here
            break
    os.close(fd)
    return None


def give_back(fd: int) -> None:
    """End a turn `take` gave: closing the file releases its lock."""
    os.close(fd)
