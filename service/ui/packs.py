"""`/ui/packs`: the active stack and the drafts awaiting activation (viewer), each draft
with what it changes against the active stack (engine.packdiff, as `asl rules diff`);
a rule author uploads a draft from a form, and an admin who is not its uploader
activates the version shown (four eyes). Upload and activation are the API's own
(service.routers.packs.upload_draft and activate_draft): the same validation in a
limited process, the same checks and the same decision-log entries.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.errors import PackError
from engine.loader import PACK_NAME, load_pack
from engine.packdiff import PackDiff, diff_packs
from service.auth import ADMIN, RULE_AUTHOR, VIEWER, Principal
from service.problems import Problem
from service.routers.packs import activate_draft, upload_draft
from service.state import ServiceState
from service.ui.render import html_page, url_part
from service.ui.session import PageError, Session, field, form_fields, page
from store import packs

router = APIRouter(prefix="/ui/packs", include_in_schema=False)
EXTRA_FILES = 3  # rules/ and tests/ files the upload form has room for


def _principal(session: Session) -> Principal:
    return Principal(session.token_id, session.token_id, session.person, session.role)


def _page_error(exc: Problem) -> PageError:
    found = exc.extra.get("problems") or []
    details = "; ".join(f"{p.get('file')}:{p.get('line')}: {p.get('message')}"
                        for p in found[:5])
    return PageError(exc.status, exc.detail + (f": {details}" if details else ""))


def _diff(state: ServiceState, draft: packs.StoredPack) -> PackDiff | None:
    """The draft over the active stack against the active stack (None if it no longer
    loads over it)."""
    stack = state.loaded_stack()
    root = state.workdir / "packs"
    dirs = [packs.materialize(p, root) if p.name != draft.name
            else packs.materialize(draft, root) for p in stack.packs]
    if draft.name not in {p.name for p in stack.packs}:
        dirs.append(packs.materialize(draft, root))
    try:
        return diff_packs(stack.pack, load_pack(dirs))
    except PackError:  # a draft that was valid over an older stack may not load now
        return None


def _overview(state: ServiceState) -> dict[str, Any]:
    with state.engine.connect() as conn:
        active = packs.active(conn, state.base)
        drafts = packs.drafts(conn)
    return {"active": active, "drafts": [(d, _diff(state, d)) for d in drafts]}


@router.get("")
async def packs_page(request: Request, session: Annotated[Session, Depends(page(VIEWER))]
                     ) -> Response:
    """The active stack, the drafts with their diffs, and the forms the role allows."""
    state: ServiceState = request.app.state.asl
    overview = await run_in_threadpool(_overview, state)
    return html_page(request, "packs.html", session, extra=range(EXTRA_FILES),
                     done=request.query_params.get("done", ""), **overview)


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
    return RedirectResponse(f"/ui/packs?done=uploaded+{url_part(name)}#draft-"
                            f"{url_part(name)}", status_code=303)


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
