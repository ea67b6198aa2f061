"""A draft pack's portfolio impact on the draft's review page: which stored models would
get another value of a contract key under the active stack with the draft than under
the active stack as it is, over every stored model.

The impact is `asl impact --draft`'s (batch.impact.draft_impact, the one
implementation), worked out off the request path: the first view of a draft starts a
job, a thread of the worker that showed it, which runs the impact in the same limited
child as the draft's diff and tests (service.packcheck.run_impact) and writes its phase,
progress and heartbeat into the job's row (store.ui_tables.DraftImpactJob) as it goes;
the page shows that progress and reloads itself until the job ends, then shows the
result. A job belongs to one (draft version, active stack, record state: the newest
assessment id) and its row is shared by every worker, so a reload, on any worker, reads
it again rather than working it out again; a new draft version, an activation or a new
stored assessment makes another job, and until that one ends the page shows the last
finished impact of the same draft, saying what it was worked out for.

A row left running by a worker that stopped (no beat for STALE_SECONDS) is taken over by
the next worker to show the page; a failed job is shown with its reason and a button
that starts it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError

from service.heartbeat import Heartbeat
from service.packcheck import DraftRunStopped, Layer, run_impact
from service.state import ServiceState
from store.packs import StoredPack
from store.record import A
from store.ui_tables import DraftImpactJob

J = DraftImpactJob.__table__  # type: ignore[attr-defined]
SHOWN_COLUMNS = [c for c in J.c if c.name != "result"]  # the whole impact is read apart
log = logging.getLogger("asl.service")
STALE_SECONDS = 30.0  # a running job without a beat this long is taken over
SHOWN = 200  # models of each list the page shows (the counts are whole; the JSON has all)


@dataclass
class Impact:
    """What the page shows of a finished impact: the models whose headline changes (each
    with every contract key that changes), the models whose other keys only change (the
    first SHOWN of each, and how many there are), how many are unchanged, how many
    stored models there are and how many could change and were assessed again, and
    evidence either side rejected."""

    headline: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)
    other: list[tuple[str, list[tuple[str, str, str]]]] = field(default_factory=list)
    headline_count: int = 0
    other_count: int = 0
    unchanged: int = 0
    reassessed: int = 0
    stored: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass
class Job:
    """A draft's impact job as the page shows it: its state (running, done, failed),
    phase and progress, when it started and how long it took, why it failed, and its
    impact when done. `current` is False for the last finished job of an earlier
    version, stack or record state, shown while the current one runs."""

    key: str
    state: str
    phase: str
    done: int
    total: int
    started_at: float
    finished_at: float | None
    error: str | None
    record: int
    impact: Impact | None = None
    current: bool = True

    @property
    def seconds(self) -> float | None:
        """How long the job took (None while it runs)."""
        return None if self.finished_at is None else self.finished_at - self.started_at


def _text(value: Any) -> str:
    """A contract value in a table cell: text as it is, a list joined, none as a dash."""
    if value is None or value == []:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def headline_keys(state: ServiceState) -> set[str]:
    """The contract keys that are the headline: level, decision, and the framework's own
    name for its level (rsp-2.1: `asl`)."""
    key = state.loaded_stack().pack.spec.level.key
    return {"level", "decision", *([key] if key else [])}


def summary(found: dict[str, Any], headline: set[str]) -> dict[str, Any]:
    """What the page shows of the impact `found` (batch.impact.StoredImpact.to_json):
    kept beside the whole impact, so a page never reads more than SHOWN models."""
    lists: dict[str, list[Any]] = {"headline": [], "other": []}
    for model, changes in found["models"].items():
        target = "headline" if headline & {c["key"] for c in changes} else "other"
        lists[target].append([model, [[c["key"], _text(c["old"]), _text(c["new"])]
                                      for c in changes]])
    return {"headline": lists["headline"][:SHOWN], "other": lists["other"][:SHOWN],
            "headline_count": len(lists["headline"]), "other_count": len(lists["other"]),
            "unchanged": found["unchanged"], "reassessed": found["reassessed"],
            "stored": found["stored"],
            "rejected": [*found["rejected_old"], *found["rejected_new"]][:SHOWN]}


def _impact(blob: bytes) -> Impact:
    data = orjson.loads(zlib.decompress(blob))
    return Impact(headline=[(m, [tuple(c) for c in cs]) for m, cs in data["headline"]],
                  other=[(m, [tuple(c) for c in cs]) for m, cs in data["other"]],
                  headline_count=data["headline_count"], other_count=data["other_count"],
                  unchanged=data["unchanged"], reassessed=data["reassessed"],
                  stored=data["stored"], rejected=data["rejected"])


def record_state(conn: Connection) -> int:
    """The newest assessment's id (0 with none): assessments are only ever added, so
    any new result, whoever stored it, changes it."""
    return int(conn.execute(select(func.max(A.c.id))).scalar() or 0)


def _stack_versions(stack: Sequence[StoredPack]) -> list[list[str]]:
    """The active stack as a job is keyed by it and its row keeps it: each pack's name
    and version."""
    return [[p.name, p.version] for p in stack]


def job_key(draft: StoredPack, versions: list[list[str]], record: int) -> str:
    """The job of this draft version over this active stack (`_stack_versions`) and record
    state."""
    parts = [draft.name, draft.version, versions, record]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _job(row: Any, current: bool = True) -> Job:
    job = Job(row.key, row.state, row.phase, row.done, row.total, row.started_at,
              row.finished_at, row.error, row.record, current=current)
    if row.summary is not None:
        job.impact = _impact(row.summary)
    return job


def draft_job(state: ServiceState, draft: StoredPack, stack: Sequence[StoredPack],
              layers: Sequence[Layer], starts: list[Callable[[], None]]
              ) -> tuple[Job, Job | None]:
    """The draft's current impact job, claimed here when there is none (or when its
    worker stopped): what starts its thread is added to `starts`, for the caller to
    run once the page is sent. And, while the job has not finished, the last finished
    job of the same draft, if any, to show meanwhile."""
    versions = _stack_versions(stack)
    with state.engine.connect() as conn:  # the usual case, read only (no write lock)
        record = record_state(conn)
        key = job_key(draft, versions, record)
        row = conn.execute(select(*SHOWN_COLUMNS).where(J.c.key == key)).first()
    if row is not None and row.state == "done":
        return _job(row), None
    now = time.time()
    start = False
    with state.engine.begin() as conn:
        row = conn.execute(select(*SHOWN_COLUMNS).where(J.c.key == key)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(J).values(
                        key=key, draft=draft.name, version=draft.version,
                        stack=json.dumps(versions), record=record, state="running",
                        phase="starting", done=0, total=0, started_at=now,
                        heartbeat_at=now))
                start = True
            except IntegrityError:  # another worker started it first
                pass
        elif row.state == "running" and row.heartbeat_at < now - STALE_SECONDS:
            start = conn.execute(update(J).where(
                J.c.key == key, J.c.heartbeat_at == row.heartbeat_at).values(
                    phase="starting", done=0, total=0, started_at=now,
                    heartbeat_at=now)).rowcount == 1
        row = conn.execute(select(*SHOWN_COLUMNS).where(J.c.key == key)).one()
        earlier = None
        if row.state != "done":
            earlier = conn.execute(select(*SHOWN_COLUMNS).where(
                J.c.draft == draft.name, J.c.state == "done", J.c.key != key)
                .order_by(J.c.finished_at.desc()).limit(1)).first()
    if start:
        starts.append(threading.Thread(target=_run, args=(state, key, draft, layers),
                                       name=f"asl-impact-{draft.name}", daemon=True).start)
    return _job(row), None if earlier is None else _job(earlier, current=False)


def forget(state: ServiceState, draft: str) -> None:
    """Drop the draft's failed jobs (so the next view of its page starts one again)."""
    with state.engine.begin() as conn:
        conn.execute(delete(J).where(J.c.draft == draft, J.c.state == "failed"))


def full_result(state: ServiceState, draft: str) -> bytes | None:
    """The whole impact (JSON) of the draft's newest finished job, None with none."""
    with state.engine.connect() as conn:
        blob = conn.execute(select(J.c.result).where(J.c.draft == draft, J.c.state == "done")
                            .order_by(J.c.finished_at.desc()).limit(1)).scalar()
    return None if blob is None else zlib.decompress(blob)


def child_url(url: str) -> str:
    """The database URL as the child, in another directory, must see it: a relative
    SQLite path made absolute; a password kept (it travels on the child's stdin)."""
    parsed = make_url(url)
    database = parsed.database
    if (parsed.get_backend_name() == "sqlite" and database and database != ":memory:"
            and not database.startswith("file:")):
        parsed = parsed.set(database=str(Path(database).resolve()))
    return parsed.render_as_string(hide_password=False)


class _Beat(Heartbeat):
    """A running job's progress, written with its heartbeat (`Heartbeat`), however long
    one phase (reading the record) takes; `tell` is how the job says where it is."""

    def __init__(self, engine: Engine, key: str) -> None:
        super().__init__(engine, f"asl-impact-beat-{key[:8]}")
        self.key = key
        self.told: tuple[str, int, int] = ("starting", 0, 0)

    def tell(self, phase: str, done: int, total: int) -> None:
        self.told = (phase, done, total)

    def write(self, conn: Connection) -> None:
        phase, done, total = self.told
        conn.execute(update(J).where(J.c.key == self.key, J.c.state == "running")
                     .values(phase=phase, done=done, total=total, heartbeat_at=time.time()))


def _run(state: ServiceState, key: str, draft: StoredPack, layers: Sequence[Layer]) -> None:
    """Work the job out in the limited child and store what it found (or why not)."""
    values: dict[str, Any]
    try:
        with _Beat(state.engine, key) as beat:
            found = run_impact(draft.name, draft.files, layers, state.workdir,
                               child_url(state.config.db_url), beat.tell)
        shown = summary(found, headline_keys(state))
        values = {"state": "done", "phase": "done", "done": found["reassessed"],
                  "total": found["reassessed"],
                  "summary": zlib.compress(orjson.dumps(shown), 6),
                  "result": zlib.compress(orjson.dumps(found), 6)}
    except DraftRunStopped as exc:
        values = {"state": "failed", "error": str(exc)}
    except Exception as exc:  # the job outlives nothing; logged, and shown as failed
        log.error("draft impact of %s failed: %s", draft.name, exc, exc_info=exc)
        values = {"state": "failed",
                  "error": f"the impact could not be worked out ({type(exc).__name__}); "
                  "the server log has the details"}
    with state.engine.begin() as conn:
        conn.execute(update(J).where(J.c.key == key, J.c.state == "running")
                     .values(finished_at=time.time(), heartbeat_at=time.time(), **values))
        if values["state"] == "done":  # the finished jobs of earlier states are done with
            conn.execute(delete(J).where(J.c.draft == draft.name, J.c.key != key,
                                         J.c.state != "running"))
