"""Compact derivations: conclusion and provenance edge rows go, results and graphs are
stored in the compact zstd form, the rules that fired are a compressed column, and one
assessment per model, input hash, pack version and assessment superseded.

The `conclusion` and `provenance_edge` tables held some 40 KiB per model (of about 57)
and said nothing the result and the graph do not; re-assessment only asked them which
rules fired, which each assessment now keeps in `fired` (filled here from the edges).
Every stored result, graph and evidence document is re-encoded (knowledge_graph.stored:
about 1.5, 3.3 and 0.6 KiB a model instead of 3.7, 9 and 1.6; documents' JSON `body`
becomes compressed `content`) and decodes to exactly what it was.

`supersedes` is the model's previous assessment (0 for its first). Assessments stored
twice by concurrent batches (the same model, input hash and pack version as the model's
previous assessment, by another batch run that was running at the same time) are
deleted, the oldest kept; an assessment redone on purpose (`--force`, or by a batch run
after the previous one finished) stays. The unique index then makes a second writer of
the same assessment skip it.

Downgrading rebuilds the conclusion and edge rows from the results and graphs, and
re-encodes those as zlib'd JSON; deleted duplicates stay deleted.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa
import sqlmodel
from alembic import op

from knowledge_graph import stored

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

STR = sqlmodel.sql.sqltypes.AutoString
CHUNK = 500  # rows per read and per executemany

assessment = sa.table(
    "assessment",
    sa.column("id", sa.Integer()),
    sa.column("model_id", sa.String()),
    sa.column("input_hash", sa.String()),
    sa.column("pack_version", sa.String()),
    sa.column("batch_id", sa.Integer()),
    sa.column("result", sa.LargeBinary()),
    sa.column("provenance", sa.LargeBinary()),
    sa.column("fired", sa.LargeBinary()),
    sa.column("supersedes", sa.Integer()),
)
document = sa.table("evidence_document", sa.column("hash", sa.String()),
                    sa.column("body", sa.JSON()), sa.column("content", sa.LargeBinary()))
batch_run = sa.table("batch_run", sa.column("id", sa.Integer()),
                     sa.column("started", sa.String()), sa.column("finished", sa.String()))
conclusion = sa.table(
    "conclusion", sa.column("assessment_id", sa.Integer()),
    sa.column("conclusion_id", sa.String()), sa.column("kind", sa.String()),
    sa.column("value", sa.JSON()), sa.column("rule", sa.String()),
    sa.column("because", sa.JSON()))
edge = sa.table(
    "provenance_edge", sa.column("assessment_id", sa.Integer()),
    sa.column("source", sa.String()), sa.column("target", sa.String()),
    sa.column("role", sa.String()), sa.column("name", sa.String()),
    sa.column("rule_id", sa.String()))


def _json(blob: bytes) -> Any:
    return orjson.loads(stored.inflate(blob))


def _rows(bind: sa.Connection) -> Iterator[list[sa.Row[Any]]]:
    """Every assessment's id, result and graph, a chunk at a time (by id)."""
    last = 0
    while True:
        rows = bind.execute(sa.select(assessment.c.id, assessment.c.result,
                                      assessment.c.provenance)
                            .where(assessment.c.id > last).order_by(assessment.c.id)
                            .limit(CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _duplicates(bind: sa.Connection) -> tuple[list[int], dict[int, int]]:
    """(ids of assessments stored twice by concurrent batches, the previous assessment of
    every other one)."""
    runs = {row.id: (row.started, row.finished or "\uffff")
            for row in bind.execute(sa.select(batch_run))}
    gone: list[int] = []
    previous: dict[int, int] = {}
    kept: dict[str, sa.Row[Any]] = {}
    for row in bind.execute(sa.select(assessment.c.id, assessment.c.model_id,
                                      assessment.c.input_hash, assessment.c.pack_version,
                                      assessment.c.batch_id)
                            .order_by(assessment.c.model_id, assessment.c.id)):
        last = kept.get(row.model_id)
        if (last is not None and (last.input_hash, last.pack_version)
                == (row.input_hash, row.pack_version)
                and last.batch_id in runs and row.batch_id in runs
                and last.batch_id != row.batch_id
                and runs[row.batch_id][0] < runs[last.batch_id][1]):  # ran at the same time
            gone.append(row.id)
            continue
        previous[row.id] = 0 if last is None else last.id
        kept[row.model_id] = row
    return gone, previous


def upgrade() -> None:
    # Imported here: Alembic imports every migration to find the newest revision, and
    # each command checks the schema before it starts.
    from knowledge_graph.provenance import fired_rules
    from store.record import pack_names

    bind = op.get_bind()
    blob_default = sa.text("'\\x'::bytea") if bind.dialect.name == "postgresql" \
        else sa.text("X''")
    op.add_column("assessment", sa.Column("fired", sa.LargeBinary(), nullable=False,
                                          server_default=blob_default))
    op.add_column("assessment", sa.Column("supersedes", sa.Integer(), nullable=False,
                                          server_default="0"))
    if bind.dialect.name == "postgresql":
        op.alter_column("assessment", "fired", server_default=None)
    gone, previous = _duplicates(bind)
    for start in range(0, len(gone), CHUNK):
        part = gone[start:start + CHUNK]
        for table in (conclusion, edge):
            bind.execute(table.delete().where(table.c.assessment_id.in_(part)))
        bind.execute(assessment.delete().where(assessment.c.id.in_(part)))
    update = (sa.update(assessment).where(assessment.c.id == sa.bindparam("row_id"))
              .values(result=sa.bindparam("new_result"),
                      provenance=sa.bindparam("new_provenance"),
                      fired=sa.bindparam("new_fired"),
                      supersedes=sa.bindparam("new_supersedes")))
    for rows in _rows(bind):
        changed = []
        for row in rows:
            graph = stored.decode(bytes(row.provenance))
            changed.append({
                "row_id": row.id,
                "new_result": stored.pack(orjson.dumps(_json(bytes(row.result)),
                                                       option=orjson.OPT_SORT_KEYS)),
                "new_provenance": stored.encode(graph),
                "new_fired": pack_names(fired_rules(graph)),
                "new_supersedes": previous[row.id]})
        bind.execute(update, changed)
    _evidence_up(bind, blob_default)
    op.drop_index("ix_conclusion_rule", table_name="conclusion")
    op.drop_index("ix_conclusion_assessment_id", table_name="conclusion")
    op.drop_table("conclusion")
    op.drop_index("ix_provenance_edge_assessment_id", table_name="provenance_edge")
    op.drop_table("provenance_edge")
    op.create_index("uq_assessment_once", "assessment",
                    ["model_id", "input_hash", "pack_version", "supersedes"], unique=True)


def _evidence_up(bind: sa.Connection, blob_default: Any) -> None:
    """Evidence documents' JSON `body` to compressed `content`."""
    op.add_column("evidence_document", sa.Column("content", sa.LargeBinary(), nullable=False,
                                                 server_default=blob_default))
    if bind.dialect.name == "postgresql":
        op.alter_column("evidence_document", "content", server_default=None)
    update = (sa.update(document).where(document.c.hash == sa.bindparam("key"))
              .values(content=sa.bindparam("packed")))
    for rows in _documents(bind):
        bind.execute(update, [{"key": row.hash, "packed": stored.pack(orjson.dumps(
            row.body, option=orjson.OPT_SORT_KEYS))} for row in rows])
    op.drop_column("evidence_document", "body")


def _evidence_down(bind: sa.Connection) -> None:
    """Evidence documents' compressed `content` back to a JSON `body`."""
    op.add_column("evidence_document", sa.Column("body", sa.JSON(), nullable=False,
                                                 server_default="{}"))
    if bind.dialect.name == "postgresql":
        op.alter_column("evidence_document", "body", server_default=None)
    update = (sa.update(document).where(document.c.hash == sa.bindparam("key"))
              .values(body=sa.bindparam("data")))
    for rows in _documents(bind):
        bind.execute(update, [{"key": row.hash, "data": _json(bytes(row.content))}
                              for row in rows])
    op.drop_column("evidence_document", "content")


def _documents(bind: sa.Connection) -> Iterator[list[sa.Row[Any]]]:
    """Every evidence document, a chunk at a time (by hash)."""
    last = ""
    while True:
        rows = bind.execute(sa.select(document).where(document.c.hash > last)
                            .order_by(document.c.hash).limit(CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].hash


def downgrade() -> None:
    from knowledge_graph.provenance import edge_rows

    op.drop_index("uq_assessment_once", table_name="assessment")
    op.create_table(
        "conclusion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("conclusion_id", STR(), nullable=False),
        sa.Column("kind", STR(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("rule", STR(), nullable=False),
        sa.Column("because", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessment.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conclusion_assessment_id", "conclusion", ["assessment_id"])
    op.create_index("ix_conclusion_rule", "conclusion", ["rule"])
    op.create_table(
        "provenance_edge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("source", STR(), nullable=False),
        sa.Column("target", STR(), nullable=False),
        sa.Column("role", STR(), nullable=False),
        sa.Column("name", STR(), nullable=True),
        sa.Column("rule_id", STR(), nullable=False),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessment.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_provenance_edge_assessment_id", "provenance_edge", ["assessment_id"])
    bind = op.get_bind()
    update = (sa.update(assessment).where(assessment.c.id == sa.bindparam("row_id"))
              .values(result=sa.bindparam("new_result"),
                      provenance=sa.bindparam("new_provenance")))
    for rows in _rows(bind):
        changed, conclusions, edges = [], [], []
        for row in rows:
            result = _json(bytes(row.result))
            graph = stored.decode(bytes(row.provenance))
            changed.append({"row_id": row.id,
                            "new_result": zlib.compress(orjson.dumps(
                                result, option=orjson.OPT_SORT_KEYS), 3),
                            "new_provenance": stored.encode_legacy(graph)})
            conclusions += [{"assessment_id": row.id, "conclusion_id": c["id"],
                             "kind": c["kind"], "value": c["value"], "rule": c["rule"],
                             "because": c["because"]} for c in result["conclusions"]]
            edges += [{"assessment_id": row.id, "source": s, "target": t, "role": r,
                       "name": n, "rule_id": rule}
                      for s, t, r, n, rule in edge_rows(graph)]
        bind.execute(update, changed)
        if conclusions:
            bind.execute(conclusion.insert(), conclusions)
        if edges:
            bind.execute(edge.insert(), edges)
    op.drop_column("assessment", "supersedes")
    op.drop_column("assessment", "fired")
    _evidence_down(bind)
