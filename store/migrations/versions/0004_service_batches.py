"""Batches submitted to the service (`POST /v1/batches`): body, state, progress,
heartbeat and summary.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "service_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", STR(), nullable=False),
        sa.Column("submitted_by", STR(), nullable=False),
        sa.Column("submitted_at", STR(), nullable=False),
        sa.Column("format", STR(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", STR(), nullable=True),
        sa.Column("finished_at", STR(), nullable=True),
        sa.Column("batch_run_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", STR(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("service_batch") as batch_op:
        batch_op.create_index(batch_op.f("ix_service_batch_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_batch") as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_batch_state"))
    op.drop_table("service_batch")
