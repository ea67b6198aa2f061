"""Errors as `application/problem+json` (RFC 9457), rendered in one place.

Handlers raise `Problem`; the handlers installed here turn it, FastAPI's own errors,
an unusable database and anything unexpected into a problem body with `status`,
`title` and `detail`. No traceback ever reaches a client: an unexpected error is logged
with a reference that the client's body repeats.

A request that no endpoint matched (404, 405) is first put to the check the endpoints
of its prefix make before anything else (`install`'s `unmatched`: under `/v1/`, the
bearer token), so that without credentials it is refused as any of them refuses it
(401), whether or not the path exists, and only a caller who may ask learns that it
does not.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("asl.service")
# For a request no endpoint matched: the response to give instead of its 404 or 405
# (the refusal an endpoint of its prefix would give it), or None to give that.
Unmatched = Callable[[Request], Awaitable[Response | None]]


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "problems": {"type": "array", "items": {"type": "object"}},
    },
}
AUTHENTICATED = (401, 403, 422, 429, 503)  # what any endpoint taking a token may answer


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for errors answered as problem+json."""
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_TYPE: {"schema": PROBLEM_SCHEMA}}}
            for status in statuses}


class Problem(Exception):
    """An error answer: an HTTP status, a one-line `detail`, optional headers, and extra
    members of the problem body (`errors`, `problems`, ...)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(status: int, detail: str, **extra: Any) -> bytes:
    """The problem+json body for `status`."""
    return orjson.dumps({"type": "about:blank", "title": HTTPStatus(status).phrase,
                         "status": status, "detail": detail, **extra})


def problem_response(problem: Problem) -> Response:
    return Response(problem_body(problem.status, problem.detail, **problem.extra),
                    status_code=problem.status, headers=problem.headers,
                    media_type=PROBLEM_TYPE)


async def _on_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


def _http_handler(unmatched: Unmatched | None
                  ) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The handler of Starlette's HTTPException: the routing's own 404 (no such path)
    and 405 (not that method), put to `unmatched` first, and any other."""

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = (exc.detail if isinstance(exc.detail, str)
                  else HTTPStatus(exc.status_code).phrase)
        routing = exc.status_code == 405 or (exc.status_code == 404 and detail == "Not Found")
        if routing and unmatched is not None:
            instead = await unmatched(request)
            if instead is not None:
                return instead
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; GET /openapi.json lists them"
        elif exc.status_code == 405:
            detail = "this endpoint does not take that method"
        return problem_response(Problem(exc.status_code, detail, dict(exc.headers or {})))

    return on_http


def _place(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"path": _place(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
              for e in exc.errors()]
    first = errors[0] if errors else {"path": "", "message": "invalid request"}
    return problem_response(Problem(422, f"{first['path']}: {first['message']}",
                                    errors=errors))


async def _on_database(_request: Request, exc: Exception) -> Response:
    lines = str(getattr(exc, "orig", exc)).strip().splitlines()
    log.error("database error: %s", lines[0] if lines else type(exc).__name__)
    return problem_response(Problem(503, "the database cannot be used right now; try again "
                                    "later", {"Retry-After": "5"}))


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.error("internal error (ref %s)", ref, exc_info=exc)
    return problem_response(Problem(500, f"internal error; the server log has the details "
                                    f"under ref {ref}"))


def install(app: FastAPI, unmatched: Unmatched | None = None) -> None:
    """Render every error of `app` as problem+json; a request no endpoint matched is
    put to `unmatched` first (see the module's docstring)."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(HTTPException, _http_handler(unmatched))
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(DBAPIError, _on_database)
    app.add_exception_handler(PoolTimeout, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
