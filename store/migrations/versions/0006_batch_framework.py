"""Service batches get a `framework` column of their own: the built-in framework a
batch was submitted under (`POST /v1/batches?framework=`), or NULL for the active pack
stack. Until now it rode in the `format` column after the format
(`jsonl framework=openai-pf-2`).

Upgrading adds the column (NULL by default, in place on SQLite) and splits every row
whose `format` carries the mark: `format` keeps the body's format, `framework` gets the
name. Those rows are few (one per batch submitted with `?framework=`), so they are read
and rewritten one by one. Downgrading folds the framework back into `format` the old
way, then drops the column.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString
MARK = " framework="  # how revisions 0004 and 0005 wrote it: "<format> framework=<name>"

service_batch = sa.table(
    "service_batch",
    sa.column("id", sa.Integer()),
    sa.column("format", sa.String()),
    sa.column("framework", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("service_batch") as batch_op:
        batch_op.add_column(sa.Column("framework", STR(), nullable=True))
    bind = op.get_bind()
    marked = bind.execute(sa.select(service_batch.c.id, service_batch.c.format)
                          .where(service_batch.c.format.like(f"%{MARK}%"))).all()
    for row_id, stored in marked:
        fmt, _, name = stored.partition(MARK)
        bind.execute(sa.update(service_batch).where(service_batch.c.id == row_id)
                     .values(format=fmt, framework=name or None))


def downgrade() -> None:
    bind = op.get_bind()
    chosen = bind.execute(sa.select(service_batch.c.id, service_batch.c.format,
                                    service_batch.c.framework)
                          .where(service_batch.c.framework.is_not(None))).all()
    for row_id, fmt, name in chosen:
        bind.execute(sa.update(service_batch).where(service_batch.c.id == row_id)
                     .values(format=f"{fmt}{MARK}{name}"))
    with op.batch_alter_table("service_batch") as batch_op:
        batch_op.drop_column("framework")
