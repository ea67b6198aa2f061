"""`/ui/batches` (analyst, as the API's batches): paste a portfolio and queue it for the
service's background runner (service.routers.batches.queue_portfolio: the API's own
queueing and decision-log entry); `/ui/batches/{id}` follows it, reloading itself every
two seconds while it is queued or running (a refresh, no script), then shows its
summary: how many models were assessed, skipped and rejected, and which changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service import batches
from service.auth import ANALYST, Principal
from service.problems import Problem
from service.routers.batches import queue_portfolio
from service.ui.render import html_page
from service.ui.session import PageError, Session, field, form_fields, page

router = APIRouter(prefix="/ui/batches", include_in_schema=False)
Analyst = Annotated[Session, Depends(page(ANALYST))]
FORMATS = {"jsonl": "JSON Lines", "yaml": "YAML", "json": "JSON"}
RECENT = 20


def _recent(request: Request) -> list[dict[str, object]]:
    """The newest batches, without their bodies."""
    state = request.app.state.asl
    batches.fail_stale(state.engine, state.config.batch_stale)
    table = batches.SB
    columns = [table.c.id, table.c.state, table.c.done, table.c.total, table.c.submitted_by,
               table.c.submitted_at, table.c.finished_at]
    with state.engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(table.c.id.desc()).limit(RECENT))
        return [dict(row) for row in rows.mappings()]


@router.get("")
async def batches_page(request: Request, session: Analyst) -> Response:
    """The form and the newest batches."""
    recent = await run_in_threadpool(_recent, request)
    return html_page(request, "batches.html", session, recent=recent, formats=FORMATS)


@router.post("")
async def submit(request: Request, session: Analyst) -> Response:
    """Queue the pasted portfolio and follow it."""
    fields = await form_fields(request, session.csrf)
    fmt = field(fields, "format", "jsonl")
    if fmt not in FORMATS:
        raise PageError(422, f"Choose a format: {', '.join(FORMATS)}.")
    who = Principal(session.token_id, session.token_id, session.person, session.role)
    try:
        queued = await queue_portfolio(request, who, field(fields, "portfolio").encode("utf-8"),
                                       fmt)
    except Problem as exc:
        raise PageError(exc.status, exc.detail) from None
    return RedirectResponse(f"/ui/batches/{queued['id']}", status_code=303)


@router.get("/{batch_id}")
async def batch_page(request: Request, session: Analyst,
                     batch_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    """One batch: its progress while it runs, its summary once it is done."""
    state = request.app.state.asl
    found = await run_in_threadpool(batches.status, state.engine, batch_id,
                                    state.config.batch_stale)
    if found is None:
        raise PageError(404, f"No batch {batch_id}.")
    return html_page(request, "batch.html", session, batch=found,
                     live=found["state"] in ("queued", "running"))
