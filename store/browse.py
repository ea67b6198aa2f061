"""Browsing the record a page at a time: the newest assessment of each model, filtered
and counted in the database (a portfolio of 100,000 models is never read whole to show
fifty of them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine

from store.record import SUMMARY_COLUMNS, A, Summary


@dataclass(frozen=True)
class Filters:
    """What to keep: a headline level (rsp-2.1's: the ASL), a decision, a framework (the
    base pack's name: `rsp-2.1` also matches results of `rsp-2.1+acme-lab`), and text
    the model id contains (any case)."""

    level: str | None = None
    decision: str | None = None
    framework: str | None = None
    q: str | None = None


def _latest(filters: Filters) -> Select:
    newest = select(func.max(A.c.id)).group_by(A.c.model_id)
    query = select(*SUMMARY_COLUMNS).where(A.c.id.in_(newest))
    if filters.level is not None:
        query = query.where(A.c.level == filters.level)
    if filters.decision is not None:
        query = query.where(A.c.decision == filters.decision)
    if filters.framework is not None:
        query = query.where(A.c.framework == filters.framework)
    if filters.q:
        query = query.where(func.lower(A.c.model_id).contains(filters.q.lower(),
                                                              autoescape=True))
    return query


def _newest_ids(filters: Filters) -> Select:
    """(model id, id of its newest assessment) of each model whose id contains `q`, read
    from the (model_id, id) index alone."""
    query = select(A.c.model_id, func.max(A.c.id).label("id")).group_by(A.c.model_id)
    if filters.q:
        query = query.where(func.lower(A.c.model_id).contains(filters.q.lower(),
                                                              autoescape=True))
    return query


def latest_page(engine: Engine, filters: Filters, limit: int, offset: int,
                order: Sequence[Any] = ()) -> tuple[list[Summary], int]:
    """One page of the newest assessment of every model that passes `filters`, by
    `order` (column expressions) and then model id, and how many pass in all.

    Filtered by id only and ordered by model id (the listing as it opens), the page and
    the count come from the index, and only the page's rows are read; a filter or an
    order on a result column reads the newest row of every model."""
    if filters.level is None and filters.decision is None and filters.framework is None \
            and not order:
        newest = _newest_ids(filters).subquery()
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(newest)).scalar_one()
            ids = conn.execute(select(newest.c.id).order_by(newest.c.model_id)
                               .limit(limit).offset(offset)).scalars().all()
            rows = conn.execute(select(*SUMMARY_COLUMNS).where(A.c.id.in_(ids))
                                .order_by(A.c.model_id)).mappings().all() if ids else []
        return [Summary(**row) for row in rows], int(total)
    query = _latest(filters)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(*order, A.c.model_id).limit(limit).offset(offset)
                            ).mappings().all()
    return [Summary(**row) for row in rows], int(total)


def summary_json(s: Summary) -> dict[str, Any]:
    """A stored assessment's row as `asl list`, `asl history --format json` and the
    service's model listings give it."""
    return {"assessment": s.id, "model": s.model_id, "assessed_at": s.assessed_at,
            "pack": {"name": s.pack_name, "version": s.pack_version},
            "pack_stack": s.pack_stack, "framework": s.framework, "level": s.level,
            **s.scalars, "required": s.required,
            "decision": s.decision, "missing_safeguards": s.missing_safeguards,
            "actions": s.actions, "batch": s.batch_id, "input_hash": s.input_hash}
