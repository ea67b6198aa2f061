"""Batches over HTTP (analyst): `POST /v1/batches` queues a portfolio for the
background runner (service.batches) and answers 202 at once; `GET /v1/batches/{id}`
reports its state, progress and summary from the database (any worker answers);
`POST /v1/batches/{id}/resume` queues a failed batch again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from engine.errors import InputError
from engine.evidence_reading import Body, documents_in
from service import batches
from service.auth import ANALYST, Principal, require
from service.evidence import BODY, SYNTAX, Framework, body_format, error_json, framework_stack
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.routers.assess import EVIDENCE_BODY
from service.routers.models import JSON_CONTENT, ROW_ID_MAX, json_bytes
from service.state import ServiceState
from store import audit
from store.canonical import evidence_input

router = APIRouter(prefix="/v1/batches", tags=["batches"],
                   responses=problem_responses(*AUTHENTICATED, 404))
Analyst = Annotated[Principal, Depends(require(ANALYST))]
BatchId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


def _state(request: Request) -> ServiceState:
    return request.app.state.asl  # type: ignore[no-any-return]


async def queue_portfolio(request: Request, who: Principal, content: bytes, fmt: str,
                          framework: str | None = None) -> dict[str, Any]:
    """Queue a portfolio (to be assessed under `framework`, default the active stack)
    with its decision-log entry and wake this worker's runner (the API's submit and the
    UI's): `{"id", "state": "queued", "decision_id"}`."""
    if not content.strip():
        raise Problem(400, "the body is empty; send a portfolio")
    state = _state(request)

    def queue() -> dict[str, Any]:
        stack = framework_stack(state, framework)  # an unknown one is refused, not queued
        given = audit.sha256_of(_readable(content, fmt))  # before the write lock
        with state.engine.begin() as conn:
            batch_id = batches.submit(conn, who.person, content, fmt, framework)
            entry = audit.append(conn, actor=who.person, role=who.role,
                                 action="batch.submit", pack=stack.pack.name,
                                 pack_version=stack.pack.version, input_sha256=given,
                                 result_sha256=audit.sha256_of({"batch": batch_id}))
        return {"id": batch_id, "state": "queued", "decision_id": entry.decision_id}

    answer = await run_in_threadpool(queue)
    request.app.state.batches.wake()
    return answer


def _readable(content: bytes, fmt: str) -> Any:
    """The canonical evidence of a portfolio body (what its decision-log entry hashes);
    400 when it is not JSON or YAML (or not UTF-8) at all, so that nothing is queued or
    logged. A JSON Lines body is read line by line, as `asl batch` and `POST /v1/assess`
    read it: one unreadable line among readable ones is one rejected document, which
    the runner reports with the evidence that breaks the format, model by model; a body
    with no readable line is 400."""
    errors: list[InputError] = []
    found = documents_in(Body(content, fmt, BODY), None, errors)
    syntax = [e for e in errors if e.message.startswith(SYNTAX)]
    if syntax and (not found or any(not e.path for e in syntax)):
        first = syntax[0]
        raise Problem(400, f"{BODY}{' ' + first.path if first.path else ''}: "
                      f"{first.message}", errors=[error_json(e) for e in syntax])
    return evidence_input([data for _, data in found],
                          len(found) == 1 and found[0][0] == "")


@router.post("", status_code=202, openapi_extra=EVIDENCE_BODY,
             responses={202: {"content": JSON_CONTENT}, **problem_responses(400, 413, 415)})
async def submit(request: Request, who: Analyst, framework: Framework = None) -> Response:
    """Queue a portfolio (JSON Lines, YAML or JSON; its own size limit, `asl serve
    --max-batch-body`) to be assessed and stored in the background with the active pack
    stack, or under `framework` (a built-in pack), as `asl batch [--framework NAME]`
    does: 202 with its `id`; follow it with GET /v1/batches/{id}."""
    fmt = body_format(request)
    content = await request.body()
    return json_bytes(await queue_portfolio(request, who, content, fmt, framework),
                      status=202)


def _status(state: ServiceState, batch_id: int) -> dict[str, Any]:
    found = batches.status(state.engine, batch_id, state.config.batch_stale)
    if found is None:
        raise Problem(404, f"no batch {batch_id}")
    return found


@router.get("/{batch_id}", responses={200: {"content": JSON_CONTENT}})
async def batch_status(request: Request, batch_id: BatchId, _: Analyst) -> Response:
    """The batch's `state` (queued, running, done, failed), `done` of `total` models,
    and once done its `summary` (assessed, skipped, rejected, changed, the first
    problems); a failed batch says why in `error` and can be resumed."""
    return json_bytes(await run_in_threadpool(_status, _state(request), batch_id))


@router.post("/{batch_id}/resume", status_code=202,
             responses={202: {"content": JSON_CONTENT}, **problem_responses(409)})
async def resume(request: Request, batch_id: BatchId, who: Analyst) -> Response:
    """Queue a failed batch again: it runs from the start, and what it stored before is
    skipped as unchanged. 409 unless the batch has failed."""
    state = _state(request)

    def queue_again() -> dict[str, Any]:
        current = _status(state, batch_id)
        with state.engine.begin() as conn:
            if not batches.resume(conn, batch_id):
                raise Problem(409, f"batch {batch_id} is {current['state']}; only a failed "
                              "batch is resumed")
            entry = audit.append(conn, actor=who.person, role=who.role,
                                 action="batch.resume",
                                 input_sha256=audit.sha256_of({"batch": batch_id}),
                                 result_sha256=audit.sha256_of({"batch": batch_id,
                                                                "state": "queued"}))
        return {"id": batch_id, "state": "queued", "decision_id": entry.decision_id}

    answer = await run_in_threadpool(queue_again)
    request.app.state.batches.wake()
    return json_bytes(answer, status=202)
