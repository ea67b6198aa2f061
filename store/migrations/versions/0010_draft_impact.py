"""The drafts' portfolio impact jobs (store.ui_tables.DraftImpactJob): each draft's
impact over every stored model, worked out in the background once per draft version,
active stack and record state, and read by every `asl serve` worker.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "draft_impact",
        sa.Column("key", STR(), nullable=False),
        sa.Column("draft", STR(), nullable=False),
        sa.Column("version", STR(), nullable=False),
        sa.Column("stack", STR(), nullable=False),
        sa.Column("record", sa.Integer(), nullable=False),
        sa.Column("state", STR(), nullable=False),
        sa.Column("phase", STR(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("summary", sa.LargeBinary(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("error", STR(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_draft_impact_draft", "draft_impact", ["draft"])


def downgrade() -> None:
    op.drop_index("ix_draft_impact_draft", table_name="draft_impact")
    op.drop_table("draft_impact")
