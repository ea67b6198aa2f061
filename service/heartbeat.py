"""A background job's progress written with its heartbeat by a thread of its own.

A batch (`service.batches`) and a draft's portfolio impact (`service.ui.impact`) run
for minutes in the background; readers follow their rows, and a job whose heartbeat
stops is known to be dead (a restarted server marks it failed). One phase (loading a
pack, reading the record) can take longer than the interval, so the job does not write
its progress itself: it only says where it is, and this thread writes the latest every
`SECONDS`, in a transaction of its own, until the job ends.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("asl.service")
SECONDS = 1.0  # between writes of a running job's progress and heartbeat


class Heartbeat:
    """Writes `write(conn)` every SECONDS while the `with` block runs. A write that fails
    (a busy or briefly unavailable database) is logged and tried again at the next beat:
    progress is advisory, the job's own result is stored by the job."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def write(self, conn: Connection) -> None:
        """Store the job's latest progress and heartbeat (what a subclass keeps)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._finished.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._finished.wait(SECONDS):
            try:
                with self.engine.begin() as conn:
                    self.write(conn)
            except Exception as exc:  # a busy database: the next beat tries again
                log.warning("%s heartbeat: %s", self.name, exc)
