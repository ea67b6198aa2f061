"""Compact name lists: each assessment's `kinds` (a JSON list of the kinds of fact
present) and `fired` (the rules that fired, zlib'd) are kept the same way, sorted, one
a line, compressed with the shared dictionary of the stored derivations
(store.record.pack_names); and the indexes on `assessment.input_hash` and
`assessment.pack_version` go.

Why: an assessment's row had grown to 8.6 KiB a model in SQLite (the target is 8 KiB)
as the web UI's newest-assessment table and the once-only index arrived. The two name
lists took about 600 bytes a row and now take about 210 (the dictionary holds the
pack's rule ids and kinds); the two indexes took about 190 bytes a row and no query
reads them: an assessment is looked up by its model (ix_assessment_model_latest), and
by its model, input hash and pack version through uq_assessment_once, whose leading
columns those are; `pack_version` rows are never deleted, so its foreign key needs no
index on this side either. Both lists are read only as sets (re-assessment's
prefilter), so nothing that is shown changes.

Downgrading writes `kinds` back as a sorted JSON list and `fired` as zlib'd text and
creates the indexes again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:15:00.000000
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHUNK = 1_000  # rows per read and per executemany


def _convert(source: str, target_type: sa.types.TypeEngine[Any], empty: str,
             fired: Callable[[bytes], bytes], kinds: Callable[[Any], Any]) -> None:
    """Replace `kinds` by a column of `target_type` holding `kinds(old value)` (filled
    through `source`, a new column, `empty` its default while it is added), and rewrite
    `fired` with `fired(old)`. The columns are added, dropped and renamed in place
    (SQLite's own ALTER TABLE): recreating the table would copy every stored graph and
    trip the foreign keys that point at it."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # NOT NULL from the start (SQLite cannot add it later), with a default for the
    # moment the column is added; PostgreSQL drops the default again.
    op.add_column("assessment", sa.Column(source, target_type, nullable=False,
                                          server_default=sa.text(empty)))
    table = sa.table("assessment", sa.column("id", sa.Integer()),
                     sa.column("kinds", sa.JSON() if source == "kinds_packed"
                               else sa.LargeBinary()),
                     sa.column("fired", sa.LargeBinary()), sa.column(source, target_type))
    write = (table.update().where(table.c.id == sa.bindparam("row_id"))
             .values({source: sa.bindparam("new_kinds"), "fired": sa.bindparam("new_fired")}))
    last = 0
    while True:
        rows = bind.execute(sa.select(table.c.id, table.c.kinds, table.c.fired)
                            .where(table.c.id > last).order_by(table.c.id)
                            .limit(CHUNK)).all()
        if not rows:
            break
        bind.execute(write, [{"row_id": row.id, "new_kinds": kinds(row.kinds),
                              "new_fired": fired(bytes(row.fired))} for row in rows])
        last = rows[-1].id
    op.drop_column("assessment", "kinds")
    if sqlite:
        op.execute(f"ALTER TABLE assessment RENAME COLUMN {source} TO kinds")
    else:
        op.alter_column("assessment", source, new_column_name="kinds", server_default=None)


def upgrade() -> None:
    from store.record import pack_names, unpack_names

    op.drop_index("ix_assessment_input_hash", table_name="assessment")
    op.drop_index("ix_assessment_pack_version", table_name="assessment")
    sqlite = op.get_bind().dialect.name == "sqlite"
    _convert("kinds_packed", sa.LargeBinary(), "X''" if sqlite else "'\\x'::bytea",
             fired=lambda old: pack_names(unpack_names(old)),
             kinds=lambda old: pack_names(old if isinstance(old, list) else orjson.loads(old)))


def downgrade() -> None:
    from store.record import unpack_names

    _convert("kinds_json", sa.JSON(), "'[]'" if op.get_bind().dialect.name == "sqlite"
             else "'[]'::json",
             fired=lambda new: zlib.compress("\n".join(sorted(unpack_names(new))).encode(), 9),
             kinds=lambda new: sorted(unpack_names(bytes(new))))
    op.create_index("ix_assessment_pack_version", "assessment", ["pack_version"])
    op.create_index("ix_assessment_input_hash", "assessment", ["input_hash"])
