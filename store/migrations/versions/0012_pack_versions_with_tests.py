"""A stored pack's version covers all of its files, its test cases included: every draft
and active overlay (`pack_draft`, `pack_active`) gets the version of its stored files
as store.packs.files_version computes it.

Why: the spec makes a pack's version "the content hash of that pack's own files", and
activation refuses a draft whose version differs from the one reviewed. The version was
the hash of `pack.yaml` and the rules only (batch.stack.layer_version, what a result
records of each pack), so a draft whose test cases changed after review kept its version
and was activated. Rows stored before keep working without this (each compares with
itself), but a version in GET /v1/packs would then depend on when the pack was uploaded;
so they are rewritten, in place (an UPDATE per row: the tables hold a few packs).
What each result records of its packs is not a stored pack's version and does not
change.

Downgrading writes back the old version: the same hash over `pack.yaml` and the rule
files alone, which is layer_version of the files written out.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("pack_draft", "pack_active")


def _rewrite(version_of: Callable[[Mapping[str, str]], str]) -> None:
    """Set every stored pack's `version` to `version_of(its files)`."""
    bind = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column("name", sa.String()), sa.column("version", sa.String()),
                         sa.column("files", sa.JSON()))
        rows = bind.execute(sa.select(table.c.name, table.c.files)).all()
        for row in rows:
            files: dict[str, Any] = dict(row.files)
            bind.execute(table.update().where(table.c.name == row.name)
                         .values(version=version_of(files)))


def upgrade() -> None:
    from store.packs import files_version

    _rewrite(files_version)


def downgrade() -> None:
    from store.packs import files_version

    _rewrite(lambda files: files_version({name: text for name, text in files.items()
                                          if not name.startswith("tests/")}))
