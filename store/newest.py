"""The newest stored assessment of a model, read with SQLAlchemy core alone.

`asl why MODEL` needs one row of one table; naming that table here as a lightweight
`table()` clause (not store.tables' SQLModel classes) lets it answer without importing
sqlmodel, pydantic or the ORM. `store.record.Store.newest` is this same query.
"""

from __future__ import annotations

from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Engine

# The columns of store.tables.StoredAssessment this reader needs.
ASSESSMENT = table("assessment", column("id"), column("model_id"), column("framework"),
                   column("provenance"))


def newest(engine: Engine, model_id: str) -> tuple[int, str, bytes] | None:
    """The id, framework and stored provenance graph of a model's newest assessment,
    None when it has none: its id read from the (model_id, id) index alone, the rest
    by primary key, so the lookup costs the same among a hundred thousand models."""
    a = ASSESSMENT.c
    with engine.connect() as conn:
        aid = conn.execute(select(func.max(a.id)).where(a.model_id == model_id)).scalar()
        if aid is None:
            return None
        row = conn.execute(select(a.framework, a.provenance).where(a.id == aid)).one()
    return int(aid), row.framework, bytes(row.provenance)
