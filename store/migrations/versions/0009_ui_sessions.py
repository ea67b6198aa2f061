"""The web UI's server-side sessions (shared by every `asl serve` worker), and the
newest assessment of each model kept in a table of its own for the model list.

`assessment_latest` is filled from the record once, here, and from then on by a trigger
on every insert into `assessment` (assessments are never updated or deleted), so it is
true whichever writer stored the row: `asl batch`, `asl assess --store`, the service,
or SQL. It follows 0008, whose removal of duplicate assessments must come before the
table is filled (the number 0007 went unused when the branches were joined).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString
COLUMNS = "model_id, assessment_id, level, decision, framework, assessed_at"
VALUES = "NEW.model_id, NEW.id, NEW.level, NEW.decision, NEW.framework, NEW.assessed_at"
# The newer assessment wins, whatever order concurrent writers commit in.
UPSERT = (f"INSERT INTO assessment_latest ({COLUMNS}) VALUES ({VALUES}) "
          "ON CONFLICT (model_id) DO UPDATE SET assessment_id = excluded.assessment_id, "
          "level = excluded.level, decision = excluded.decision, "
          "framework = excluded.framework, assessed_at = excluded.assessed_at "
          "WHERE assessment_latest.assessment_id < excluded.assessment_id")
SQLITE_TRIGGER = f"""CREATE TRIGGER assessment_latest_mark AFTER INSERT ON assessment
    BEGIN {UPSERT}; END"""
POSTGRES_TRIGGER = [
    f"""CREATE FUNCTION assessment_latest_mark() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN {UPSERT}; RETURN NULL; END $$""",
    """CREATE TRIGGER assessment_latest_mark AFTER INSERT ON assessment
       FOR EACH ROW EXECUTE FUNCTION assessment_latest_mark()""",
]
INDEXES = {"level": ("level", "model_id", "assessment_id"),
           "decision": ("decision", "model_id", "assessment_id"),
           "assessed": ("assessed_at", "model_id", "assessment_id"),
           "framework": ("framework", "model_id", "assessment_id"),
           "level_assessed": ("level", "assessed_at", "model_id"),
           "decision_assessed": ("decision", "assessed_at", "model_id"),
           "level_decision": ("level", "decision", "model_id"),
           "decision_level": ("decision", "level", "model_id")}


def upgrade() -> None:
    op.create_table(
        "ui_session",
        sa.Column("id_sha256", STR(), nullable=False),
        sa.Column("token_id", STR(), nullable=False),
        sa.Column("role", STR(), nullable=False),
        sa.Column("csrf", STR(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("idle_until", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_token.id"]),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    op.create_index("ix_ui_session_token_id", "ui_session", ["token_id"])
    op.create_table(
        "assessment_latest",
        sa.Column("model_id", STR(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("level", STR(), nullable=False),
        sa.Column("decision", STR(), nullable=False),
        sa.Column("framework", STR(), nullable=False),
        sa.Column("assessed_at", STR(), nullable=False),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessment.id"]),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"]),
        sa.PrimaryKeyConstraint("model_id"),
        sa.UniqueConstraint("assessment_id"),
    )
    for name, columns in INDEXES.items():
        op.create_index(f"ix_assessment_latest_{name}", "assessment_latest", list(columns))
    op.execute(f"INSERT INTO assessment_latest ({COLUMNS}) "
               "SELECT model_id, id, level, decision, framework, assessed_at FROM assessment "
               "WHERE id IN (SELECT max(id) FROM assessment GROUP BY model_id)")
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_TRIGGER:
            op.execute(statement)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS assessment_latest_mark ON assessment")
        op.execute("DROP FUNCTION IF EXISTS assessment_latest_mark()")
    else:
        op.execute("DROP TRIGGER IF EXISTS assessment_latest_mark")
    for name in INDEXES:
        op.drop_index(f"ix_assessment_latest_{name}", table_name="assessment_latest")
    op.drop_table("assessment_latest")
    op.drop_index("ix_ui_session_token_id", table_name="ui_session")
    op.drop_table("ui_session")
