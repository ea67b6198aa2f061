"""Batches over HTTP: the runner that takes submitted portfolios from the database and
runs them with the existing batch runner (batch.runner.Batch), in the background.

A submitted batch is a `service_batch` row holding the body (store.service_tables). Each
worker process runs one `BatchRunner` thread: it claims the oldest queued batch (an
UPDATE that only one worker can win), runs it in this process with the active pack
stack (or the built-in framework it was submitted under), and writes its progress and a
heartbeat as models are done. What the batch stores is committed chunk by chunk, each
chunk whole (Batch.run), so a runner stopped at any moment, by SIGKILL included, leaves
whole results only. A running batch whose
heartbeat is older than the configured limit is marked failed (by any worker, when it is
read or when a runner looks for work); resuming it queues it again, and running it again
skips what was stored unchanged, as `asl batch` does.

Every batch's end is in the decision log. A run that finishes is logged by the record
(`batch.finish`, as `asl batch` runs are); a batch marked failed (its runner stopped
heartbeating, the server shut down, or the run could not be made) gets a `batch.finish`
entry in the same transaction, with the pack version of the run it started, if any
(which a batch notes when it starts one: `batch_run_id`).

All state lives in the database, so any worker answers `GET /v1/batches/{id}`.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from batch.executors import InProcess
from batch.runner import Batch, BatchReport
from batch.work import Entry
from engine.api import Body
from engine.assess import vocabulary
from engine.evidence import load_evidence
from service.heartbeat import Heartbeat
from service.state import ServiceState
from store import audit
from store.audit import rfc3339_now
from store.record import Store
from store.service_tables import ServiceBatch
from store.tables import BatchRun, PackVersion

SB = ServiceBatch.__table__  # type: ignore[attr-defined]
B = BatchRun.__table__  # type: ignore[attr-defined]
P = PackVersion.__table__  # type: ignore[attr-defined]
RUN_ROLE = "analyst"  # the role a batch runs, and is logged, with (its submitter's person)
log = logging.getLogger("asl.service")
POLL_SECONDS = 2.0  # between looks for queued batches (a submission here wakes it at once)
STALE_CHECK_SECONDS = 5.0  # between looks for batches whose runner stopped
SHOWN = 100  # rejections and changed models listed in a summary (the counts are whole)
STATES = ("queued", "running", "done", "failed")
RESUME_HINT = "POST /v1/batches/{id}/resume runs it again (what was stored is kept)"


class Stopped(Exception):
    """The server is shutting down: the batch in hand stops between chunks."""


def compress(content: bytes) -> bytes:
    return zlib.compress(content, 6)


def submit(conn: Any, person: str, content: bytes, fmt: str, framework: str | None = None
           ) -> int:
    """Queue a portfolio (in the caller's transaction), to be assessed with the active
    stack (`framework` None) or under the built-in `framework`; its batch id."""
    row = conn.execute(SB.insert().values(
        state="queued", submitted_by=person, submitted_at=rfc3339_now(), format=fmt,
        framework=framework, body=compress(content), done=0, total=0))
    return int(row.inserted_primary_key[0])


def _cutoff(stale_seconds: float) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=stale_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mark_failed(conn: Connection, batch_id: int, error: str, **values: Any) -> bool:
    """Mark the running batch `batch_id` failed, saying why (`error`; `values`: other
    columns to set), and append its `batch.finish` entry, in the caller's transaction;
    whether it was running (a batch already ended is left as it is, unlogged).

    The entry is the submitter's, as its run's `batch.start` is, with the pack and
    version of the run the batch started (none if it started none); its input is
    `{"batch": ID}` (the id `batch.submit` and `batch.resume` name) and its result
    `{"batch": ID, "run": RUN, "state": "failed", "done": N, "total": M}` (RUN: the
    batch run `batch.start` named, or null)."""
    ended = conn.execute(update(SB).where(SB.c.id == batch_id, SB.c.state == "running")
                         .values(state="failed", finished_at=rfc3339_now(), error=error,
                                 **values))
    if ended.rowcount != 1:
        return False
    row = conn.execute(select(SB.c.submitted_by, SB.c.done, SB.c.total, SB.c.batch_run_id)
                       .where(SB.c.id == batch_id)).one()
    pack = version = None
    if row.batch_run_id is not None:
        found = conn.execute(select(B.c.pack_version, P.c.name)
                             .join(P, P.c.version == B.c.pack_version, isouter=True)
                             .where(B.c.id == row.batch_run_id)).first()
        if found is not None:
            version, pack = found.pack_version, found.name
    audit.append(conn, actor=row.submitted_by, role=RUN_ROLE, action="batch.finish",
                 pack=pack, pack_version=version,
                 input_sha256=audit.sha256_of({"batch": batch_id}),
                 result_sha256=audit.sha256_of({"batch": batch_id, "run": row.batch_run_id,
                                                "state": "failed", "done": row.done,
                                                "total": row.total}))
    return True


def fail_stale(engine: Engine, stale_seconds: float) -> None:
    """Mark failed every running batch whose runner stopped heartbeating, each with its
    decision-log entry."""
    with engine.begin() as conn:
        stale = conn.execute(select(SB.c.id).where(
            SB.c.state == "running", SB.c.heartbeat_at < _cutoff(stale_seconds))).scalars()
        for batch_id in stale.all():  # (one short transaction when there is none)
            mark_failed(conn, batch_id, "its runner stopped (the server was stopped or "
                        "restarted); " + RESUME_HINT.format(id=batch_id))


def status(engine: Engine, batch_id: int, stale_seconds: float) -> dict[str, Any] | None:
    """What `GET /v1/batches/{id}` answers, or None when there is no such batch."""
    fail_stale(engine, stale_seconds)
    columns = [c for c in SB.c if c.name != "body"]
    with engine.connect() as conn:
        row = conn.execute(select(*columns).where(SB.c.id == batch_id)).mappings().first()
    if row is None:
        return None
    return {"id": row["id"], "state": row["state"], "done": row["done"],
            "total": row["total"], "summary": row["summary"] or {},
            "error": row["error"], "submitted_by": row["submitted_by"],
            "submitted_at": row["submitted_at"], "finished_at": row["finished_at"],
            "resumable": row["state"] == "failed"}


def resume(conn: Any, batch_id: int) -> bool:
    """Queue a failed batch again (in the caller's transaction); whether it was failed."""
    done = conn.execute(update(SB).where(SB.c.id == batch_id, SB.c.state == "failed")
                        .values(state="queued", error=None, finished_at=None, done=0,
                                batch_run_id=None))
    return bool(done.rowcount == 1)


def summary(report: BatchReport) -> dict[str, Any]:
    """A finished batch's summary: counts, and the first rejections and changed models."""
    changed = report.changed()
    return {"batch": report.batch_id, "pack_version": report.pack_version,
            "stack": report.stack, "assessed": report.assessed, "skipped": report.skipped,
            "rejected": len(report.rejected), "changed": len(changed),
            "errors": [{"file": e.file, "path": e.path, "message": e.message}
                       for e in report.rejected[:SHOWN]],
            "changed_models": [{"model": o.model, "asl": o.level, "decision": o.decision,
                                "before": list(o.before) if o.before else None}
                               for o in changed[:SHOWN]]}


class _Progress(Heartbeat):
    """Progress of the batch in hand, written with its heartbeat (`Heartbeat`), however
    long one step (loading, compiling) takes; `advance` is where a stop request ends it."""

    def __init__(self, engine: Engine, batch_id: int, stop: threading.Event) -> None:
        super().__init__(engine, f"asl-batch-{batch_id}")
        self.batch_id = batch_id
        self.stop = stop
        self.done = 0
        self.total = 0

    def write(self, conn: Connection) -> None:
        conn.execute(update(SB).where(SB.c.id == self.batch_id, SB.c.state == "running")
                     .values(done=self.done, total=self.total, heartbeat_at=rfc3339_now()))

    def advance(self, count: int) -> None:
        self.done += count
        if self.stop.is_set():
            raise Stopped

    def set_total(self, total: int) -> None:
        self.total = total


class _RunStore(Store):
    """The record a service batch runs into, which notes on the batch the run it starts
    (`batch_run_id`), so that a failure found later, by any worker, is logged with the
    run's pack version."""

    def __init__(self, engine: Engine, batch_id: int, person: str) -> None:
        super().__init__(engine, actor=person, role=RUN_ROLE)
        self.batch_id = batch_id

    def start_batch(self, pack_version: str, inputs: Sequence[str]) -> int:
        run_id = super().start_batch(pack_version, inputs)
        with self.engine.begin() as conn:
            conn.execute(update(SB).where(SB.c.id == self.batch_id)
                         .values(batch_run_id=run_id))
        return run_id


class BatchRunner:
    """One thread per worker process that runs queued batches, one at a time."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.stop = threading.Event()
        self.wakeup = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="asl-batches", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """Look for queued work now (a batch was just submitted to this worker)."""
        self.wakeup.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop between chunks: a batch in hand is marked failed (resumable)."""
        self.stop.set()
        self.wakeup.set()
        self.thread.join(timeout)

    def _loop(self) -> None:
        # Every transaction on SQLite takes the write lock (store.db), so looking for
        # work is kept to one short transaction per POLL_SECONDS.
        checked = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() - checked >= STALE_CHECK_SECONDS:
                    fail_stale(self.state.engine, self.state.config.batch_stale)
                    checked = time.monotonic()
                claimed = self._claim()
                if claimed is not None:
                    self._run(claimed)
                    continue
            except Exception as exc:  # the loop outlives any one failure; logged
                log.error("batch runner: %s", exc, exc_info=exc)
            self.wakeup.wait(POLL_SECONDS)
            self.wakeup.clear()

    def _claim(self) -> int | None:
        """The oldest queued batch, now running here; None when there is none."""
        engine = self.state.engine
        with engine.begin() as conn:
            batch_id = conn.execute(select(SB.c.id).where(SB.c.state == "queued")
                                    .order_by(SB.c.id).limit(1)).scalar()
            if batch_id is None:
                return None
            won = conn.execute(update(SB).where(SB.c.id == batch_id, SB.c.state == "queued")
                               .values(state="running", heartbeat_at=rfc3339_now()))
        return int(batch_id) if won.rowcount == 1 else None

    def _finish(self, batch_id: int, **values: Any) -> None:
        """The batch done: its run's own `batch.finish` is logged by the record."""
        with self.state.engine.begin() as conn:
            conn.execute(update(SB).where(SB.c.id == batch_id, SB.c.state == "running")
                         .values(state="done", finished_at=rfc3339_now(), **values))

    def _fail(self, batch_id: int, error: str, **values: Any) -> None:
        with self.state.engine.begin() as conn:
            mark_failed(conn, batch_id, error, **values)

    def _run(self, batch_id: int) -> None:
        engine = self.state.engine
        with engine.connect() as conn:
            row = conn.execute(select(SB.c.body, SB.c.format, SB.c.framework,
                                      SB.c.submitted_by).where(SB.c.id == batch_id)).one()
        try:
            with _Progress(engine, batch_id, self.stop) as progress:
                report = self._assess(batch_id, zlib.decompress(row.body), row.format,
                                      row.submitted_by, progress, row.framework)
        except Stopped:
            self._fail(batch_id, "stopped when the server shut down; "
                       + RESUME_HINT.format(id=batch_id), done=progress.done)
            return
        except Exception as exc:
            log.error("batch %s failed: %s", batch_id, exc, exc_info=exc)
            self._fail(batch_id, f"the batch could not be run ({type(exc).__name__}); the "
                       "server log has the details; " + RESUME_HINT.format(id=batch_id),
                       done=progress.done)
            return
        if report is not None:
            self._finish(batch_id, done=progress.total, total=progress.total,
                         batch_run_id=report.batch_id, summary=summary(report))

    def _assess(self, batch_id: int, content: bytes, fmt: str, person: str,
                progress: _Progress, framework: str | None = None) -> BatchReport | None:
        """Run the portfolio with the active stack (or `framework`'s pack); None when none
        of it could be read (the batch is then failed with the first problem)."""
        stack = self.state.framework_stack(framework)
        loaded = load_evidence([Body(content, fmt, "body")], vocabulary(stack.pack),
                               keep=Entry.of)
        entries, rejected = loaded.documents, loaded.errors
        del loaded
        if not entries and rejected:
            self._fail(batch_id, f"nothing could be read: {rejected[0]}", summary={
                "rejected": len(rejected),
                "errors": [{"file": e.file, "path": e.path, "message": e.message}
                           for e in rejected[:SHOWN]]})
            return None
        # The packs over the built-in rsp-2.1 base; another framework's base pack stands
        # in its place when given first (engine.packstack.pack_stack), so it is given.
        first = 1 if stack.packs[0].name == self.state.base.name else 0
        overlays = [str(d) for d in stack.dirs[first:]]
        runner = Batch(_RunStore(self.state.engine, batch_id, person), stack.pack,
                       InProcess(overlays), progress=progress.advance, overlays=overlays,
                       total=progress.set_total)
        return runner.run(entries, [f"batch {batch_id}"], rejected=rejected)
