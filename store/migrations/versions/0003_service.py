"""The service's tables: API tokens, the decision log (append-only by trigger), draft
packs and the active pack stack.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString

# The decision log refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE). Its hash
# chain does not depend on this: someone who can drop a trigger can edit rows, and
# `asl audit verify` still finds the edit.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER decision_log_no_{verb.lower()} BEFORE {verb} ON decision_log
        BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION decision_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the decision log is append-only'; END $$""",
    """CREATE TRIGGER decision_log_no_change BEFORE UPDATE OR DELETE ON decision_log
       FOR EACH ROW EXECUTE FUNCTION decision_log_append_only()""",
    """CREATE TRIGGER decision_log_no_truncate BEFORE TRUNCATE ON decision_log
       FOR EACH STATEMENT EXECUTE FUNCTION decision_log_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", STR(), nullable=False),
        sa.Column("name", STR(), nullable=False),
        sa.Column("person", STR(), nullable=False),
        sa.Column("role", STR(), nullable=False),
        sa.Column("secret_sha256", STR(), nullable=False),
        sa.Column("created_at", STR(), nullable=False),
        sa.Column("created_by", STR(), nullable=False),
        sa.Column("expires_at", STR(), nullable=True),
        sa.Column("revoked_at", STR(), nullable=True),
        sa.Column("last_used_at", STR(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_api_token_live_name", "api_token", ["name"], unique=True,
                    sqlite_where=sa.text("revoked_at IS NULL"),
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "decision_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("decision_id", STR(), nullable=False),
        sa.Column("time", STR(), nullable=False),
        sa.Column("actor", STR(), nullable=False),
        sa.Column("role", STR(), nullable=True),
        sa.Column("action", STR(), nullable=False),
        sa.Column("pack", STR(), nullable=True),
        sa.Column("pack_version", STR(), nullable=True),
        sa.Column("input_sha256", STR(), nullable=True),
        sa.Column("result_sha256", STR(), nullable=True),
        sa.Column("prev_hash", STR(), nullable=False),
        sa.Column("hash", STR(), nullable=False),
        sa.Column("hmac", STR(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("decision_id"),
        sa.UniqueConstraint("prev_hash"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "pack_draft",
        sa.Column("name", STR(), nullable=False),
        sa.Column("version", STR(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", STR(), nullable=False),
        sa.Column("uploaded_at", STR(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "pack_active",
        sa.Column("name", STR(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", STR(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", STR(), nullable=False),
        sa.Column("uploaded_at", STR(), nullable=False),
        sa.Column("activated_by", STR(), nullable=False),
        sa.Column("activated_at", STR(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("position"),
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS decision_log_no_truncate ON decision_log")
        op.execute("DROP TRIGGER IF EXISTS decision_log_no_change ON decision_log")
        op.execute("DROP FUNCTION IF EXISTS decision_log_append_only()")
    op.drop_table("pack_active")
    op.drop_table("pack_draft")
    op.drop_table("decision_log")
    op.drop_index("uq_api_token_live_name", table_name="api_token")
    op.drop_table("api_token")
