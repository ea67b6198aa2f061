"""`/ui/packs`: the active stack and the drafts awaiting activation (viewer); a rule
author uploads a draft from a form. `/ui/packs/{name}` (rule author, as the API's diff
and test) reviews a draft: what it changes against the active stack, which stored models
would then get another level or decision (service.ui.impact) and its test cases,
run as `GET /v1/packs/{name}/diff` and `POST .../test` run them (service.packcheck, in
the limited child process). All three are worked out off the request path, started by
the page's first view, and the page reloads itself until they are there; an admin who
is not its uploader activates the version shown there (four eyes). Upload and
activation are the API's own (service.routers.packs.upload_draft and activate_draft):
the same validation, the same checks and the same decision-log entries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from engine.loader import PACK_NAME
from service.auth import ADMIN, RULE_AUTHOR, VIEWER, Principal
from service.packcheck import DraftRunStopped, Layer, run_draft
from service.problems import Problem
from service.routers.packs import activate_draft, upload_draft
from service.state import ServiceState
from service.ui.impact import draft_job, forget, full_result
from service.ui.render import html_page, url_part
from service.ui.session import PageError, Session, field, form_fields, page
from store import packs

log = logging.getLogger("asl.service")
router = APIRouter(prefix="/ui/packs", include_in_schema=False)
EXTRA_FILES = 3  # rules/ and tests/ files the upload form has room for


def _principal(session: Session) -> Principal:
    return Principal(session.token_id, session.token_id, session.person, session.role)


def _page_error(exc: Problem) -> PageError:
    found = exc.extra.get("problems") or []
    details = "; ".join(f"{p.get('file')}:{p.get('line')}: {p.get('message')}"
                        for p in found[:5])
    return PageError(exc.status, exc.detail + (f": {details}" if details else ""))


_CHECKS: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
_CHECKS_KEPT = 64  # draft versions whose diff and test run this process keeps
_PENDING: set[tuple[str, str, str, tuple[tuple[str, str], ...]]] = set()
_CHECKS_LOCK = threading.Lock()


def _checks(state: ServiceState, name: str, draft: packs.StoredPack,
            stack: list[packs.StoredPack], layers: list[Layer],
            starts: list[Callable[[], None]]) -> dict[str, Any] | None:
    """The draft's diff against the active stack and its test run, once per draft
    version and stack in this process (neither depends on the record); None while a
    thread of this process works them out, started (by `starts`, once the page is
    sent) on first view: the two limited children take seconds, and the page is not
    kept waiting for them."""
    key = (str(state.workdir), name, draft.version, tuple((p.name, p.version) for p in stack))
    with _CHECKS_LOCK:
        if key in _CHECKS:
            return _CHECKS[key]
        if key in _PENDING:
            return None
        _PENDING.add(key)
    starts.append(threading.Thread(target=_work_checks, args=(state, key, draft, layers),
                                   name=f"asl-checks-{name}", daemon=True).start)
    return None


def _work_checks(state: ServiceState, key: tuple[str, str, str, tuple[tuple[str, str], ...]],
                 draft: packs.StoredPack, layers: list[Layer]) -> None:
    """Run the diff and the tests (two limited children, at the same time) and keep
    what they found, or why they stopped."""
    def run(task: str) -> tuple[Any, str | None]:
        try:
            return run_draft(task, draft.name, draft.files, layers, state.workdir), None
        except DraftRunStopped as exc:
            return None, str(exc)
        except Exception as exc:  # shown on the page; the server log has the details
            log.error("draft %s %s: %s", draft.name, task, exc, exc_info=exc)
            return None, f"it could not be run ({type(exc).__name__})"

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = dict(zip(("diff", "test"), pool.map(run, ("diff", "test")), strict=True))
        answers: dict[str, Any] = {}
        for task, (answer, stopped) in runs.items():
            answers[task] = answer
            answers[f"{task}_stopped"] = stopped
        with _CHECKS_LOCK:
            while len(_CHECKS) >= _CHECKS_KEPT:
                del _CHECKS[next(iter(_CHECKS))]
            _CHECKS[key] = answers
    finally:
        with _CHECKS_LOCK:
            _PENDING.discard(key)


def _review(state: ServiceState, name: str) -> dict[str, Any]:
    """The draft `name`, its diff against the active stack, its test run, and its
    portfolio impact job (service.ui.impact: started in the background on first view)."""
    with state.engine.connect() as conn:
        draft = packs.draft(conn, name)
        stack = packs.active(conn, state.base)
    if draft is None:
        raise PageError(404, f"No draft pack {name!r}.")
    layers = [Layer(p.name, packs.materialize(p, state.workdir / "packs")) for p in stack]
    starts: list[Callable[[], None]] = []
    job, earlier = draft_job(state, draft, stack, layers, starts)
    checks = _checks(state, name, draft, stack, layers, starts)
    return {"draft": draft, "job": job, "earlier": earlier, "checking": checks is None,
            "starts": starts,
            **(checks or {"diff": None, "test": None, "diff_stopped": None,
                          "test_stopped": None})}


def _overview(state: ServiceState) -> dict[str, Any]:
    with state.engine.connect() as conn:
        return {"active": packs.active(conn, state.base), "drafts": packs.drafts(conn)}


@router.get("")
async def packs_page(request: Request, session: Annotated[Session, Depends(page(VIEWER))]
                     ) -> Response:
    """The active stack, the drafts with their diffs, and the forms the role allows."""
    state: ServiceState = request.app.state.asl
    overview = await run_in_threadpool(_overview, state)
    return html_page(request, "packs.html", session, extra=range(EXTRA_FILES),
                     done=request.query_params.get("done", ""), **overview)


@router.get("/{name}")
async def draft_page(request: Request, name: str,
                     session: Annotated[Session, Depends(page(RULE_AUTHOR))]) -> Response:
    """One draft under review: its diff against the active stack, its test cases, and
    (for an admin who did not upload it) the form that activates this version."""
    review = await run_in_threadpool(_review, request.app.state.asl, name)
    starts = review.pop("starts")
    live = review["checking"] or review["job"].state == "running"
    response = html_page(request, "draft.html", session, live=live, **review)
    if starts:  # the work this view claimed begins once the page is sent
        response.background = BackgroundTask(lambda: [start() for start in starts])
    return response


@router.get("/{name}/impact.json")
async def impact_json(request: Request, name: str,
                      session: Annotated[Session, Depends(page(RULE_AUTHOR))]) -> Response:
    """The draft's whole impact, as `asl impact --draft NAME --format json` gives its
    models and counts (the newest finished one)."""
    found = await run_in_threadpool(full_result, request.app.state.asl, name)
    if found is None:
        raise PageError(404, f"No finished impact of the draft {name!r} yet.")
    return Response(found, media_type="application/json")


@router.post("/{name}/impact")
async def impact_again(request: Request, name: str,
                       session: Annotated[Session, Depends(page(RULE_AUTHOR))]) -> Response:
    """Work a failed impact out again: its job is dropped, and the page starts another."""
    await form_fields(request, session.csrf)
    await run_in_threadpool(forget, request.app.state.asl, name)
    return RedirectResponse(f"/ui/packs/{url_part(name)}#impact", status_code=303)


@router.post("")
async def upload(request: Request,
                 session: Annotated[Session, Depends(page(RULE_AUTHOR))]) -> Response:
    """Upload a draft overlay from the form: pack.yaml and up to EXTRA_FILES more."""
    fields = await form_fields(request, session.csrf)
    name = field(fields, "name").strip()
    files = {"pack.yaml": field(fields, "pack.yaml")}
    for i in range(EXTRA_FILES):
        file_name, text = field(fields, f"file{i}").strip(), field(fields, f"text{i}")
        if file_name or text.strip():
            files[file_name] = text
    if not PACK_NAME.fullmatch(name) or len(name) > 100:
        raise PageError(422, "Give the pack's own name (a-z, 0-9, _ . -), as its pack.yaml "
                        "says.")
    try:
        await upload_draft(request.app.state.asl, name, files, _principal(session))
    except Problem as exc:
        raise _page_error(exc) from None
    return RedirectResponse(f"/ui/packs/{url_part(name)}", status_code=303)


@router.post("/{name}/activate")
async def activate(request: Request, name: str,
                   session: Annotated[Session, Depends(page(ADMIN))]) -> Response:
    """Activate the version of the draft the admin reviewed on the page."""
    fields = await form_fields(request, session.csrf)
    try:
        await activate_draft(request.app.state.asl, name, field(fields, "version"),
                             _principal(session))
    except Problem as exc:
        raise _page_error(exc) from None
    return RedirectResponse(f"/ui/packs?done=activated+{url_part(name)}", status_code=303)
