"""Alembic environment: runs the migrations on the connection asl hands it (or, when
Alembic's own command line is used, on `ASL_DATABASE_URL`), in one transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables on the metadata)

MIGRATION_LOCK = 7_146_582_318  # PostgreSQL advisory lock: one migrator at a time


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from store.db import database_url

        with create_engine(database_url(None)).begin() as conn:
            _migrate(conn)
    else:
        _migrate(connection)


def _migrate(connection: object) -> None:
    context.configure(connection=connection, target_metadata=SQLModel.metadata,
                      render_as_batch=True, transactional_ddl=True)
    if connection.dialect.name == "postgresql":  # type: ignore[attr-defined]
        connection.exec_driver_sql(  # type: ignore[attr-defined]
            f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    with context.begin_transaction():
        context.run_migrations()


run()
