"""`GET /health`: is the database usable, and which packs are active (no token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "The database cannot be used",
                                         "content": {"application/json": {}}}})
def health(request: Request) -> Any:
    """200 with the active packs when the database answers; 503 when it does not."""
    state = request.app.state.asl
    try:
        stack = state.active_packs()
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "db": "unavailable", "packs": []},
                            status_code=503)
    return {"status": "ok", "db": "ok",
            "packs": [{"name": p.name, "version": p.version} for p in stack]}
