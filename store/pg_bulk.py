"""PostgreSQL's bulk writes of one chunk of assessments (store.record.Store.save_chunk).

Why not SQLAlchemy's executemany, as on SQLite: for a chunk of 64 assessments it builds
one multi-row INSERT of some 1,300 parameters, which psycopg parses again every chunk
(too long for its statement cache) and the server plans again, and it sends the models
and documents as a statement a row. Writing a batch's assessments that way cost the
writing process 0.34 ms of CPU a model and the server 0.38, twice SQLite's 0.37 in all;
this way 0.14 and 0.29 (benchmarks/store_write_bench.py, docs/performance.md). Here:

- models and evidence documents, which may well exist already (so COPY, which cannot
  skip a row, will not do), are one `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT
  DO NOTHING` each: one statement of one array a column, whatever the chunk's size;
- assessments are a binary COPY, with ids drawn from the table's sequence first, in the
  chunk's order (the ids the INSERT would give them), inside a savepoint: when a unique
  index refuses a row (another writer stored that assessment first) the COPY is rolled
  back to the savepoint and `copy_rows` says so, and the caller inserts the chunk, with
  those ids, by INSERT ... ON CONFLICT DO NOTHING as on SQLite. That is rare (two
  batches deciding the same thing at once), and costs the chunk's COPY; the ids are
  what the INSERT alone would have given.

psycopg is imported here only when a PostgreSQL connection is written, so SQLite-only
installs do not need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import JSON, Integer, LargeBinary, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from store.db import json_text

Encode = Callable[[Any], Any]

NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


@contextmanager
def _as_dbapi_error(statement: str) -> Iterator[None]:
    """psycopg's errors raised here (the statements go to the driver's connection, past
    SQLAlchemy) as SQLAlchemy raises them, DBAPIError, which is what the callers turn
    into one line (a full disk, the server gone: cli.db.write_failed)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error,
                                  hide_parameters=True) from exc


def _wire_type(column: Any) -> str:
    """The PostgreSQL type a column's values are sent as (binary COPY needs it exactly:
    varchar and json receive text)."""
    if isinstance(column.type, LargeBinary):
        return "bytea"
    if isinstance(column.type, Integer):
        return "int4"
    return "text"


def _encoder(column: Any) -> Encode | None:
    """What turns a row's value into what is sent (None: the value itself). JSON goes
    as its text: the server keeps a `json` value's text as given, so it is the text
    SQLAlchemy's json_serializer (store.db.json_text) would have sent."""
    if isinstance(column.type, JSON):
        return lambda value: None if value is None else json_text(value)
    return None


@cache
def _insert_new_sql(table: Table, names: tuple[str, ...]) -> str:
    """INSERT of the rows given as one array per column, doing nothing for a row whose
    key exists."""
    arrays = ", ".join(f"%s::{_wire_type(table.c[name])}[]" for name in names)
    values = ", ".join(f"u.{name}::json" if isinstance(table.c[name].type, JSON)
                       else f"u.{name}" for name in names)
    return (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {values} "
            f"FROM unnest({arrays}) AS u({', '.join(names)}) ON CONFLICT DO NOTHING")


def insert_new(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts of the same keys) into `table` in one statement, skipping
    those whose primary key (or another unique index) is already there."""
    if not rows:
        return
    names = tuple(rows[0])
    encoders = [_encoder(table.c[name]) for name in names]
    arrays = [[row[name] for row in rows] if encode is None
              else [encode(row[name]) for row in rows]
              for name, encode in zip(names, encoders, strict=True)]
    statement = _insert_new_sql(table, names)
    with _as_dbapi_error(statement), \
            conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(statement, arrays)


def next_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` values of `table`'s `id` sequence, ascending: the ids an INSERT of that
    many rows would give them, in order."""
    with _as_dbapi_error(NEXT_IDS), conn.connection.driver_connection.cursor() as cursor:
        return sorted(aid for (aid,) in cursor.execute(NEXT_IDS, (table.name, count)))


def copy_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """COPY `rows` (dicts of the same keys) into `table` in a savepoint: True, or False
    (nothing written) when a unique index refused one of them."""
    from psycopg.errors import UniqueViolation

    names = tuple(rows[0])
    encoders = [_encoder(table.c[name]) for name in names]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with _as_dbapi_error(statement):
        try:
            with conn.begin_nested(), conn.connection.driver_connection.cursor() as cursor, \
                    cursor.copy(statement) as copy:
                copy.set_types([_wire_type(table.c[name]) for name in names])
                for row in rows:
                    copy.write_row([row[name] if encode is None else encode(row[name])
                                    for name, encode in zip(names, encoders, strict=True)])
        except UniqueViolation:
            return False
    return True
