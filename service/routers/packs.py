"""Draft packs and the active stack (`/v1/packs`).

A rule author uploads a draft overlay (`PUT /v1/packs/{name}`): its file names are
checked, then it is validated, over the active stack, in a separate limited process
(service.packcheck) by what `asl rules validate` runs; a valid draft is stored with its
version (the hash of all of its files, its test cases' included: store.packs) and its
uploader. An admin who is not that person
activates the version they reviewed (`POST .../activate`); it is validated again over
the stack as it is then, and goes on top of the stack (or in its old place, for a new
version of an active pack). Each upload and activation appends a decision-log entry in
the same transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.loader import MAX_PACK_FILE_BYTES, PACK_NAME
from service.auth import ADMIN, RULE_AUTHOR, VIEWER, Principal, require
from service.bodies import json_model, openapi_body
from service.packcheck import DraftRunStopped, Layer, check_draft, run_draft
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.routers.models import JSON_CONTENT, json_bytes
from service.state import ServiceState
from store import audit, packs

router = APIRouter(prefix="/v1/packs", tags=["packs"],
                   responses=problem_responses(*AUTHENTICATED))
PackName = Annotated[str, Path(max_length=100, pattern=PACK_NAME.pattern,
                               description="the pack's own `name`")]


class PackUpload(BaseModel):
    """A draft overlay pack: each file's name inside the pack and its text."""

    model_config = ConfigDict(extra="forbid")
    files: dict[str, str] = Field(
        description="pack.yaml, rules/NAME.yaml, tests/NAME.yaml: name -> text",
        json_schema_extra={"propertyNames": {"pattern": f"^({packs.FILE_NAME.pattern})$"},
                           "maxProperties": packs.MAX_FILES, "required": ["pack.yaml"]})


class Activation(BaseModel):
    """The version of the draft that was reviewed."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(max_length=100)


def _state(request: Request) -> ServiceState:
    return request.app.state.asl  # type: ignore[no-any-return]


def _file_problems(files: dict[str, str]) -> list[dict[str, Any]]:
    def problem(file: str, code: str, message: str) -> dict[str, Any]:
        return {"file": file, "line": 0, "code": code, "message": message}

    found = [problem(n, "file-name", f"file name {n!r} is not allowed: use pack.yaml, "
                     "rules/NAME.yaml or tests/NAME.yaml (NAME: a-z, 0-9, _ . -)")
             for n in sorted(files) if not packs.FILE_NAME.fullmatch(n)]
    found += [problem(n, "too-large", "file over 5 MB") for n in sorted(files)
              if len(files[n].encode("utf-8")) > MAX_PACK_FILE_BYTES]
    if len(files) > packs.MAX_FILES:
        found.append(problem("", "too-many-files",
                             f"{len(files)} files; a pack has at most {packs.MAX_FILES}"))
    if "pack.yaml" not in files:
        found.append(problem("pack.yaml", "pack-missing", "a pack needs its pack.yaml"))
    return found


async def _validated(state: ServiceState, name: str, files: dict[str, str]
                     ) -> list[packs.StoredPack]:
    """The active stack the draft was validated over; 422 with the problems if there
    are any."""
    stack = await run_in_threadpool(state.active_packs)
    layers = [Layer(p.name, packs.materialize(p, state.workdir / "packs"))
              for p in [stack[0], *(p for p in stack[1:] if p.name != name)]]
    found = await run_in_threadpool(check_draft, name, files, layers, state.workdir)
    if found.problems:
        raise Problem(422, f"the pack has {len(found.problems)} problem(s)",
                      problems=found.problems)
    return stack


def _versions(stack: list[packs.StoredPack]) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in stack]


@router.get("", responses={200: {"content": JSON_CONTENT}})
def list_packs(request: Request, _: Annotated[Principal, Depends(require(VIEWER))]
               ) -> Response:
    """The active stack (the base pack, then the overlays in order) and every draft."""
    state = _state(request)
    with state.engine.connect() as conn:
        shown = [*packs.active(conn, state.base), *packs.drafts(conn)]
    return json_bytes({"packs": [p.summary() for p in shown]})


async def upload_draft(state: ServiceState, name: str, files: dict[str, str],
                       who: Principal) -> dict[str, Any]:
    """Check and validate the draft overlay `name` and store it with a decision-log
    entry: its summary and the entry's decision id (the API's upload and the UI's).
    Problem 422 with the problems (file, line, code, message) if it is not valid."""
    found = _file_problems(files)
    if name == state.base.name:
        found.append({"file": "pack.yaml", "line": 0, "code": "standalone",
                      "message": f"{name} is the base pack; only overlay packs are taken"})
    if found:
        raise Problem(422, f"the upload has {len(found)} problem(s)", problems=found)
    await _validated(state, name, files)

    def store() -> dict[str, Any]:
        with state.engine.begin() as conn:
            draft = packs.save_draft(conn, name, files, who.person, audit.rfc3339_now())
            entry = audit.append(conn, actor=who.person, role=who.role, action="pack.upload",
                                 pack=name, pack_version=draft.version,
                                 input_sha256=audit.sha256_of({"name": name,
                                                               "files": files}),
                                 result_sha256=audit.sha256_of(draft.summary()))
        return {**draft.summary(), "decision_id": entry.decision_id}

    return await run_in_threadpool(store)


@router.put("/{name}", status_code=201, openapi_extra=openapi_body(PackUpload),
            responses={201: {"content": JSON_CONTENT}, **problem_responses(400, 413, 415)})
async def upload(request: Request, name: PackName,
                 who: Annotated[Principal, Depends(require(RULE_AUTHOR))]) -> Response:
    """Upload (or replace) the draft overlay `name`: 201 with its version, or 422 with
    the validator's problems (file, line, code, message)."""
    body = await json_model(request, PackUpload)
    return json_bytes(await upload_draft(_state(request), name, body.files, who), status=201)


async def activate_draft(state: ServiceState, name: str, version: str, who: Principal
                         ) -> dict[str, Any]:
    """Put the reviewed `version` of the draft `name` in force, with a decision-log entry
    (the API's activation and the UI's). Problem 409 when the draft has changed since
    (another version), when `who` uploaded it, or when it no longer validates over the
    active stack; 404 when there is no such draft."""

    def pending() -> packs.StoredPack:
        with state.engine.connect() as conn:
            found = packs.draft(conn, name)
        if found is None:
            raise Problem(404, f"no draft pack {name!r}; GET /v1/packs lists them")
        if found.version != version:
            raise Problem(409, f"the draft {name!r} has changed since version "
                          f"{version} was reviewed; it is now {found.version}")
        if found.uploaded_by == who.person:
            raise Problem(409, f"{who.person} uploaded this draft, so another admin must "
                          "activate it (four eyes)")
        return found

    draft = await run_in_threadpool(pending)
    try:
        validated_over = await _validated(state, name, draft.files)
    except Problem as exc:
        raise Problem(409, "the draft no longer validates over the active stack; upload "
                      "a corrected version", problems=exc.extra["problems"]) from None

    def store() -> dict[str, Any]:
        with state.engine.begin() as conn:
            current = packs.draft(conn, name)
            if current is None or current.version != draft.version:
                raise Problem(409, f"the draft {name!r} changed while it was checked")
            if _versions(packs.active(conn, state.base)) != _versions(validated_over):
                raise Problem(409, "the active stack changed while the draft was checked; "
                              "try again")
            done = packs.activate(conn, draft, who.person, audit.rfc3339_now())
            stack = _versions(packs.active(conn, state.base))
            entry = audit.append(conn, actor=who.person, role=who.role,
                                 action="pack.activate", pack=name, pack_version=draft.version,
                                 input_sha256=audit.sha256_of({"name": name,
                                                               "version": version}),
                                 result_sha256=audit.sha256_of([list(v) for v in stack]))
        return {**done.summary(), "stack": [{"name": n, "version": v} for n, v in stack],
                "decision_id": entry.decision_id}

    return await run_in_threadpool(store)


@router.post("/{name}/activate", openapi_extra=openapi_body(Activation),
             responses={200: {"content": JSON_CONTENT},
                        **problem_responses(400, 404, 409, 413, 415)})
async def activate(request: Request, name: PackName,
                   who: Annotated[Principal, Depends(require(ADMIN))]) -> Response:
    """Put the reviewed version of the draft `name` in force. 409 when the draft has
    changed since (another version), when the activating person uploaded it, or when it
    no longer validates over the active stack."""
    body = await json_model(request, Activation)
    return json_bytes(await activate_draft(_state(request), name, body.version, who))


async def _on_draft(request: Request, name: str, task: str) -> Response:
    """Run `task` (test or diff) on the stored draft `name` over the active stack."""
    state = _state(request)

    def stored() -> tuple[packs.StoredPack, list[Layer]]:
        with state.engine.connect() as conn:
            found = packs.draft(conn, name)
            stack = packs.active(conn, state.base)
        if found is None:
            raise Problem(404, f"no draft pack {name!r}; GET /v1/packs lists them")
        return found, [Layer(p.name, packs.materialize(p, state.workdir / "packs"))
                       for p in stack]

    draft, layers = await run_in_threadpool(stored)
    try:
        answer = await run_in_threadpool(run_draft, task, name, draft.files, layers,
                                         state.workdir)
    except DraftRunStopped as exc:
        raise Problem(422, str(exc)) from None
    return json_bytes({"pack": name, "version": draft.version, **answer})


@router.post("/{name}/test", responses={200: {"content": JSON_CONTENT},
                                        **problem_responses(404)})
async def test_pack(request: Request, name: PackName,
                    _: Annotated[Principal, Depends(require(RULE_AUTHOR))]) -> Response:
    """As `asl rules test DRAFT --format json` over the active stack: each of the
    draft's cases (passed, failures, diff, rules fired) and the coverage of its rules.
    Run in a separate process under limits; nothing is stored."""
    return await _on_draft(request, name, "test")


@router.get("/{name}/diff", responses={200: {"content": JSON_CONTENT},
                                       **problem_responses(404)})
async def diff_pack(request: Request, name: PackName,
                    _: Annotated[Principal, Depends(require(RULE_AUTHOR))]) -> Response:
    """As `asl rules diff --format json` of the active stack and the active stack with
    the draft (in the place of an active pack of its name, or on top): rules, kinds and
    catalogue entries added, removed and changed."""
    return await _on_draft(request, name, "diff")
