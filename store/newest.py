"""The newest stored assessment of a model: one query, for SQLAlchemy or plain sqlite3.

`asl why MODEL` needs one row of one table. The two statements below find it by the
(model_id, id) index alone, then by primary key, so the lookup costs the same among a
hundred thousand models. `newest` runs them through a SQLAlchemy engine (any database;
`store.record.Store.newest` is this); `newest_sqlite` through a standard-library sqlite3
connection (`store.sqlite_reader`: a SQLite record read without importing SQLAlchemy).
Neither imports sqlmodel, pydantic or the ORM.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# store.tables.StoredAssessment's table and the columns this reader needs.
NEWEST_ID = "SELECT max(id) FROM assessment WHERE model_id = :model"
RECORD = "SELECT framework, provenance FROM assessment WHERE id = :id"

Row = Sequence[Any] | None  # one row, or None when the statement found none
Query = Callable[[str, dict[str, Any]], Row]  # runs a statement with its parameters


def newest(engine: Engine, model_id: str) -> tuple[int, str, bytes] | None:
    """The id, framework and stored provenance graph of a model's newest assessment,
    None when it has none."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return _newest(lambda sql, params: conn.execute(text(sql), params).one_or_none(),
                       model_id)


def newest_sqlite(conn: sqlite3.Connection, model_id: str) -> tuple[int, str, bytes] | None:
    """`newest`, read through a sqlite3 connection."""
    return _newest(lambda sql, params: conn.execute(sql, params).fetchone(), model_id)


def _newest(query: Query, model_id: str) -> tuple[int, str, bytes] | None:
    found = query(NEWEST_ID, {"model": model_id})
    if found is None or found[0] is None:
        return None
    row = query(RECORD, {"id": found[0]})
    if row is None:
        return None
    return int(found[0]), row[0], bytes(row[1])
