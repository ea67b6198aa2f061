"""Framework-neutral result columns: a result's headline `level`, its `required`
safeguards as a mapping, and its framework's other single-valued keys (`scalars`), in
place of the columns that only an RSP v2.1 result could fill (`asl`,
`required_deployment`, `required_security`, `comprehensive_required`).

Every result stored so far has the RSP v2.1 contract (nothing else could be stored), so
each row's `level` is its `asl`, its `required` is `{"deployment": ..., "security":
...}` and its `scalars` are `{"asl": ..., "comprehensive_assessment_required": ...}`:
the values `asl list` has always shown, now under any framework's names. The new
columns are added with a constant default (in place on SQLite), filled one distinct
combination of old values at a time (a few dozen, however many rows), and the old
columns dropped (`ALTER TABLE ... DROP COLUMN`, in place on SQLite 3.35 and later, so
the table, which holds every result, is never copied). Downgrading puts the old columns
back from the new ones; a result of another framework, which revision 0004 cannot
hold, keeps its `level` as `asl` and as both required levels when its `required` names
neither.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString
CHUNK = 500  # ids per UPDATE ... WHERE id IN (...)
OLD = ("asl", "required_deployment", "required_security", "comprehensive_required")
NEW = ("level", "required", "scalars")

assessment = sa.table(
    "assessment",
    sa.column("id", sa.Integer()),
    sa.column("asl", sa.String()),
    sa.column("required_deployment", sa.String()),
    sa.column("required_security", sa.String()),
    sa.column("comprehensive_required", sa.Boolean()),
    sa.column("level", sa.String()),
    sa.column("required", sa.JSON()),
    sa.column("scalars", sa.JSON()),
)


def upgrade() -> None:
    op.add_column("assessment", sa.Column("level", STR(), nullable=False, server_default=""))
    op.add_column("assessment", sa.Column("required", sa.JSON(), nullable=False,
                                          server_default="{}"))
    op.add_column("assessment", sa.Column("scalars", sa.JSON(), nullable=False,
                                          server_default="{}"))
    bind = op.get_bind()
    old = [assessment.c[name] for name in OLD]
    for asl, deployment, security, comprehensive in bind.execute(
            sa.select(*old).distinct()).all():
        bind.execute(
            sa.update(assessment)
            .where(*(column == value for column, value in zip(
                old, (asl, deployment, security, comprehensive), strict=True)))
            .values(level=asl, required={"deployment": deployment, "security": security},
                    scalars={"asl": asl,
                             "comprehensive_assessment_required": bool(comprehensive)}))
    if bind.dialect.name == "postgresql":
        for name in NEW:
            op.alter_column("assessment", name, server_default=None)
    op.drop_index("ix_assessment_asl", table_name="assessment")
    for name in OLD:
        op.drop_column("assessment", name)
    op.create_index("ix_assessment_level", "assessment", ["level"], unique=False)


def downgrade() -> None:
    op.add_column("assessment", sa.Column("asl", STR(), nullable=False, server_default=""))
    op.add_column("assessment", sa.Column("required_deployment", STR(), nullable=False,
                                          server_default=""))
    op.add_column("assessment", sa.Column("required_security", STR(), nullable=False,
                                          server_default=""))
    op.add_column("assessment", sa.Column("comprehensive_required", sa.Boolean(),
                                          nullable=False, server_default=sa.false()))
    bind = op.get_bind()
    # JSON values cannot be compared in SQL on every database: group the rows by the
    # old values they give, and update each group by id.
    groups: dict[tuple[str, str, str, bool], list[int]] = {}
    for row_id, level, required, scalars in bind.execute(
            sa.select(assessment.c.id, *(assessment.c[name] for name in NEW))).all():
        required, scalars = required or {}, scalars or {}
        old = (scalars.get("asl", level), required.get("deployment", level),
               required.get("security", level),
               bool(scalars.get("comprehensive_assessment_required", False)))
        groups.setdefault(old, []).append(row_id)
    for (asl, deployment, security, comprehensive), ids in groups.items():
        for start in range(0, len(ids), CHUNK):
            bind.execute(sa.update(assessment)
                         .where(assessment.c.id.in_(ids[start:start + CHUNK]))
                         .values(asl=asl, required_deployment=deployment,
                                 required_security=security,
                                 comprehensive_required=comprehensive))
    if bind.dialect.name == "postgresql":
        for name in OLD:
            op.alter_column("assessment", name, server_default=None)
    op.drop_index("ix_assessment_level", table_name="assessment")
    for name in NEW:
        op.drop_column("assessment", name)
    op.create_index("ix_assessment_asl", "assessment", ["asl"], unique=False)
