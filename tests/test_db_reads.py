"""SQLite transactions: a writer's (`engine.begin()`) takes the write lock up front; a
reader's (`engine.connect()`) reads a snapshot without it, so it neither waits for a
writer nor holds one up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from store.db import connect


def test_a_read_does_not_wait_for_an_open_write(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'asl.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        with engine.begin() as writer:
            writer.execute(text("INSERT INTO probe VALUES (1)"))
            with engine.connect() as reader:  # the write is not committed: not seen
                assert reader.execute(text("SELECT count(*) FROM probe")).scalar() == 0
        with engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM probe")).scalar() == 1
    finally:
        engine.dispose()


def test_writers_wait_for_each_other(tmp_path: Path) -> None:
    """Two writers that each read before writing both succeed, one after the other
    (a deferred transaction would fail to upgrade after the other's commit)."""
    engine = connect(f"sqlite:///{tmp_path / 'asl.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE counter (n INTEGER)"))
            conn.execute(text("INSERT INTO counter VALUES (0)"))
        errors: list[BaseException] = []

        def bump() -> None:
            try:
                for _ in range(20):
                    with engine.begin() as conn:
                        n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                        time.sleep(0.001)
                        conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 60
    finally:
        engine.dispose()
