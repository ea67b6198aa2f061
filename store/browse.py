"""Browsing the record a page at a time: the newest assessment of each model, filtered,
sorted and counted in the database from the newest-assessment table (a portfolio of
100,000 models is never read whole, nor grouped, to show fifty of them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine

from store.record import SUMMARY_COLUMNS, A, Summary
from store.ui_tables import LatestAssessment

L = LatestAssessment.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Filters:
    """What to keep: a headline level (rsp-2.1's: the ASL), a decision, a framework (the
    base pack's name: `rsp-2.1` also matches results of `rsp-2.1+acme-lab`), and text
    the model id contains (any case)."""

    level: str | None = None
    decision: str | None = None
    framework: str | None = None
    q: str | None = None


# What a page may be sorted by (then by model id): a column of the newest-assessment table.
SORTABLE = ("model_id", "level", "decision", "assessed_at")


def _newest(filters: Filters, dialect: str) -> Select:
    """The newest-assessment rows of the models that pass `filters` (every filter is a
    column of that small table, or the model id, so no assessment row is read).

    On SQLite, LIKE already ignores the case of ASCII letters, and only theirs, as
    lower() does: the search skips lower() on every row (a third of the time)."""
    query = select(L.c.model_id, L.c.assessment_id)
    if filters.level is not None:
        query = query.where(L.c.level == filters.level)
    if filters.decision is not None:
        query = query.where(L.c.decision == filters.decision)
    if filters.framework is not None:
        query = query.where(L.c.framework == filters.framework)
    if filters.q and dialect == "sqlite":
        query = query.where(L.c.model_id.contains(filters.q, autoescape=True))
    elif filters.q:
        query = query.where(func.lower(L.c.model_id).contains(filters.q.lower(),
                                                              autoescape=True))
    return query


def latest_page(engine: Engine, filters: Filters, limit: int, offset: int,
                order: Sequence[tuple[str, bool]] = ()) -> tuple[list[Summary], int]:
    """One page of the newest assessment of every model that passes `filters`, sorted by
    `order` ((column of SORTABLE, descending) pairs) and then by model id in the same
    direction as the last of them, and how many pass in all.

    Which assessment is a model's newest comes from `assessment_latest` (store.ui_tables,
    kept by a trigger on every insert), whose indexes hold each filter and sort column
    followed by the model id: so the page's ids are read in index order (either way),
    the count from an index, and only the page's own assessment rows from the record.
    A search by id scans the model ids once, counting as it pages."""
    query = _newest(filters, engine.dialect.name)
    keys, descending = [], False
    for name, descending in order:
        if name not in SORTABLE:
            raise ValueError(f"cannot sort the model list by {name!r}")
        keys.append(L.c[name].desc() if descending else L.c[name].asc())
    keys.append(L.c.model_id.desc() if descending else L.c.model_id.asc())
    with engine.connect() as conn:
        if filters.q:
            counted = conn.execute(query.with_only_columns(
                L.c.assessment_id, func.count().over().label("total")).order_by(*keys)
                .limit(limit).offset(offset)).all()
            ids = [row.assessment_id for row in counted]
            total = counted[0].total if counted else (0 if offset == 0 else None)
        else:
            ids = list(conn.execute(query.with_only_columns(L.c.assessment_id)
                                    .order_by(*keys).limit(limit).offset(offset)).scalars())
            total = None
        if total is None:
            total = conn.execute(select(func.count()).select_from(query.subquery())
                                 ).scalar_one()
        found = {row["id"]: Summary(**row) for row in conn.execute(
            select(*SUMMARY_COLUMNS).where(A.c.id.in_(ids))).mappings()} if ids else {}
    return [found[i] for i in ids], int(total)


def summary_json(s: Summary) -> dict[str, Any]:
    """A stored assessment's row as `asl list`, `asl history --format json` and the
    service's model listings give it."""
    return {"assessment": s.id, "model": s.model_id, "assessed_at": s.assessed_at,
            "pack": {"name": s.pack_name, "version": s.pack_version},
            "pack_stack": s.pack_stack, "framework": s.framework, "level": s.level,
            **s.scalars, "required": s.required,
            "decision": s.decision, "missing_safeguards": s.missing_safeguards,
            "actions": s.actions, "batch": s.batch_id, "input_hash": s.input_hash}
