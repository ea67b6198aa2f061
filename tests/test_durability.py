"""Durability is chosen per use (issue 15, point 10).

SQLite commits with `synchronous=FULL` (synced at every commit: it survives power
loss), which is what the decision log, activated packs and tokens need, and what a batch
gets too (it enters the decision log; FULL costs it about 1.5%); `bulk=True` commits
with NORMAL, the benchmark's baseline. The setting has to be in force when a
transaction begins (SQLite ignores a change inside one), so it is checked inside the
very transactions that write.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from cli.store_options import open_store
from service.config import ServiceConfig
from service.state import ServiceState
from store import audit
from store.db import connect

FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports


def synchronous(engine: Engine) -> int:
    with engine.begin() as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_the_default_is_full_and_bulk_is_normal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'asl.db'}"
    durable, bulk = connect(url), connect(url, bulk=True)
    try:
        assert synchronous(durable) == FULL
        assert synchronous(bulk) == NORMAL
    finally:
        durable.dispose()
        bulk.dispose()


def test_commands_open_the_record_with_full(tmp_path: Path) -> None:
    for bulk, expected in ((False, FULL), (True, NORMAL)):
        store = open_store(str(tmp_path / "asl.db"), bulk=bulk)
        try:
            assert synchronous(store.engine) == expected
        finally:
            store.engine.dispose()


def test_the_service_appends_decisions_with_full(tmp_path: Path) -> None:
    state = ServiceState.open(ServiceConfig(f"sqlite:///{tmp_path / 'asl.db'}"))
    try:
        with state.engine.begin() as conn:
            audit.append(conn, actor="tester", action="pack.activate", key=b"")
            in_force = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
        assert in_force == FULL
    finally:
        state.close()
