"""The newest stored assessment of a model: one query, for SQLAlchemy or plain sqlite3.

`asl why MODEL` needs one row of one table. The statement below finds its id by the
(model_id, id) index alone and the row by primary key, so the lookup costs the same
among a hundred thousand models. `newest` runs it through a SQLAlchemy engine (any
database; `store.record.Store.newest` is this) as a `store.db.Read`, on a pooled
connection of the driver's (the service's `why` runs it on every request);
`newest_sqlite` through a standard-library sqlite3 connection (`store.sqlite_reader`: a
SQLite record read without importing SQLAlchemy). Neither imports sqlmodel, pydantic or
the ORM.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from store.db import Read

# store.tables.StoredAssessment's table and the columns this reader needs: one statement
# (the subquery by the index, the row by primary key), so one snapshot without a
# transaction around it.
NEWEST = ("SELECT id, framework, provenance FROM assessment WHERE id = "
          "(SELECT max(id) FROM assessment WHERE model_id = :model)")
_READ: Read | None = None  # the statement as a Read, made on first use


def newest(engine: Engine, model_id: str) -> tuple[int, str, bytes] | None:
    """The id, framework and stored provenance graph of a model's newest assessment,
    None when it has none."""
    global _READ
    if _READ is None:
        from sqlalchemy import Integer, LargeBinary, String, text

        from store.db import Read

        _READ = Read(text(NEWEST).columns(id=Integer, framework=String,
                                          provenance=LargeBinary))
    return _row(_READ.first(engine, model=model_id))


def newest_sqlite(conn: sqlite3.Connection, model_id: str) -> tuple[int, str, bytes] | None:
    """`newest`, read through a sqlite3 connection."""
    return _row(conn.execute(NEWEST, {"model": model_id}).fetchone())


def _row(row: Sequence[Any] | None) -> tuple[int, str, bytes] | None:
    if row is None:
        return None
    return int(row[0]), row[1], bytes(row[2])
