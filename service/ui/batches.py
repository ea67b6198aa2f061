"""`/ui/batches` (analyst, as the API's batches): upload a portfolio file (or paste one)
and queue it for the
service's background runner (service.routers.batches.queue_portfolio: the API's own
queueing and decision-log entry); `/ui/batches/{id}` follows it, reloading itself every
two seconds while it is queued or running (a refresh, no script), then shows its
summary: how many models were assessed, skipped and rejected, and which changed."""

from __future__ import annotations

from pathlib import PurePosixPath
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
from service.ui.session import PageError, Session, field, page, upload_fields

router = APIRouter(prefix="/ui/batches", include_in_schema=False)
Analyst = Annotated[Session, Depends(page(ANALYST))]
FORMATS = {"auto": "From the file name", "jsonl": "JSON Lines", "yaml": "YAML",
           "json": "JSON"}
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".yaml": "yaml", ".yml": "yaml",
            ".json": "json"}
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


def _format(chosen: str, filename: str | None) -> str:
    """The portfolio's format: the one chosen, or (auto) the one the file name says."""
    if chosen not in FORMATS:
        raise PageError(422, f"Choose a format: {', '.join(FORMATS)}.")
    if chosen != "auto":
        return chosen
    suffix = PurePosixPath(filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise PageError(422, "Choose the portfolio's format: " + (
            f"the file name {filename!r} ends in none of {', '.join(SUFFIXES)}."
            if filename else "pasted text has no file name to tell it by."))
    return SUFFIXES[suffix]


@router.post("")
async def submit(request: Request, session: Analyst) -> Response:
    """Queue the uploaded (or pasted) portfolio and follow it. The form is multipart
    (a file) or plain (pasted text); the body limit is the API's for `POST /v1/batches`
    (service.app)."""
    fields, upload = await upload_fields(request, session.csrf, "file")
    pasted = field(fields, "portfolio")
    if upload is not None and pasted.strip():
        raise PageError(422, "Give the portfolio either as a file or as pasted text, not "
                        "both.")
    fmt = _format(field(fields, "format", "auto"), upload[0] if upload else None)
    content = upload[1] if upload else pasted.encode("utf-8")
    who = Principal(session.token_id, session.token_id, session.person, session.role)
    try:
        queued = await queue_portfolio(request, who, content, fmt)
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
