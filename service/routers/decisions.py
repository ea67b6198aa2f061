"""The decision log (`GET /v1/decisions`, admin): newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from service.auth import ADMIN, Principal, require
from service.problems import AUTHENTICATED, problem_responses
from service.routers.models import JSON_CONTENT, json_bytes
from store import audit

router = APIRouter(prefix="/v1/decisions", tags=["decisions"],
                   responses=problem_responses(*AUTHENTICATED))


@router.get("", responses={200: {"content": JSON_CONTENT}})
def decisions(request: Request, _: Annotated[Principal, Depends(require(ADMIN))],
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              before: Annotated[int | None, Query(ge=1, le=2**31 - 1,
                                                  description="only entries before this "
                                                  "seq (the next page)")] = None
              ) -> Response:
    """Entries of the decision log, newest first; `before` pages back."""
    found = audit.recent(request.app.state.asl.engine, limit, before)
    return json_bytes({"decisions": [d.to_json() for d in found],
                       "next_before": found[-1].seq if len(found) == limit else None})
