"""Record with each assessment the stack of packs it was made with, its framework (the
base pack's name), and a hash of its contract keys.

`pack_stack` lists each loaded pack's name and version, the base first; `framework`
is the base pack's name, indexed so portfolios can be listed by framework;
`contract_hash` lets a batch tell which results changed without reading them.

Existing assessments did not record their stack: each gets a stack of one entry, its
stored pack name and version (`rsp-2.1+acme-lab`, `sha256:...`), and the framework is
the first name in that pack name. Their `contract_hash` stays empty (the contract is
read from the stored result when it is needed).

The new NOT NULL columns are added with a constant default, which SQLite can add in
place (without copying the table, whose rows hold every result), and are then filled
in; PostgreSQL then drops the default, and SQLite, which cannot drop it in place, keeps
it (every insert gives both columns a value).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

assessment = sa.table(
    "assessment",
    sa.column("pack_name", sa.String()),
    sa.column("pack_version", sa.String()),
    sa.column("pack_stack", sa.JSON()),
    sa.column("framework", sa.String()),
)


def upgrade() -> None:
    op.add_column("assessment", sa.Column("pack_stack", sa.JSON(), nullable=False,
                                          server_default="[]"))
    op.add_column("assessment", sa.Column("framework", sqlmodel.sql.sqltypes.AutoString(),
                                          nullable=False, server_default=""))
    op.add_column("assessment", sa.Column("contract_hash", sqlmodel.sql.sqltypes.AutoString(),
                                          nullable=True))
    bind = op.get_bind()
    packs = bind.execute(sa.select(assessment.c.pack_name, assessment.c.pack_version)
                         .distinct()).all()
    for name, version in packs:  # a handful of pack versions, however many rows
        bind.execute(
            sa.update(assessment)
            .where(assessment.c.pack_name == name, assessment.c.pack_version == version)
            .values(pack_stack=[{"name": name, "version": version}],
                    framework=name.split("+", 1)[0]))
    if bind.dialect.name == "postgresql":
        op.alter_column("assessment", "pack_stack", server_default=None)
        op.alter_column("assessment", "framework", server_default=None)
    op.create_index("ix_assessment_framework", "assessment", ["framework"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_assessment_framework", table_name="assessment")
    op.drop_column("assessment", "contract_hash")
    op.drop_column("assessment", "framework")
    op.drop_column("assessment", "pack_stack")
