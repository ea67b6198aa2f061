"""The first schema: models, evidence documents, pack versions, assessments (with the
contract keys as columns), their conclusions and provenance edges, and batch runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 11:13:07.821528
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("finished", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("pack_version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("assessed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "model",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_assessed", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "pack_version",
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("base", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_used", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "evidence_document",
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("file", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("received", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["model.id"],
        ),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("evidence_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_document_model_id"), ["model_id"], unique=False
        )

    op.create_table(
        "assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("evidence_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pack_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pack_version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("input_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("assessed_at", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("asl", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("required_deployment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("required_security", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("comprehensive_required", sa.Boolean(), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("missing_safeguards", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("provenance", sa.LargeBinary(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batch_run.id"],
        ),
        sa.ForeignKeyConstraint(
            ["evidence_hash"],
            ["evidence_document.hash"],
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["model.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pack_version"],
            ["pack_version.version"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "model_id", name="uq_assessment_batch_model"),
    )
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_asl"), ["asl"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessment_decision"), ["decision"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessment_input_hash"), ["input_hash"], unique=False)
        batch_op.create_index("ix_assessment_model_latest", ["model_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_assessment_pack_version"), ["pack_version"], unique=False
        )

    op.create_table(
        "conclusion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("conclusion_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("because", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conclusion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conclusion_assessment_id"), ["assessment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_conclusion_rule"), ["rule"], unique=False)

    op.create_table(
        "provenance_edge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("provenance_edge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provenance_edge_assessment_id"), ["assessment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("provenance_edge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provenance_edge_assessment_id"))

    op.drop_table("provenance_edge")
    with op.batch_alter_table("conclusion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conclusion_rule"))
        batch_op.drop_index(batch_op.f("ix_conclusion_assessment_id"))

    op.drop_table("conclusion")
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_pack_version"))
        batch_op.drop_index("ix_assessment_model_latest")
        batch_op.drop_index(batch_op.f("ix_assessment_input_hash"))
        batch_op.drop_index(batch_op.f("ix_assessment_decision"))
        batch_op.drop_index(batch_op.f("ix_assessment_asl"))

    op.drop_table("assessment")
    with op.batch_alter_table("evidence_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_document_model_id"))

    op.drop_table("evidence_document")
    op.drop_table("pack_version")
    op.drop_table("model")
    op.drop_table("batch_run")
