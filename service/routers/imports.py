"""Importing other tools' records over HTTP (analyst): `POST /v1/imports/inspect`.

The body carries Inspect eval logs (each a name and its bytes in base64), the mapping
file's text and, optionally, the model document the evaluations go into, as `asl
import inspect LOG... --mapping MAP [--into DOC]` takes them. The import is done by the
same `importers` functions, all or nothing (422 with every problem: file, line, field,
message). With `store=false` (the default) the evidence document is returned; with
`store=true` it is also assessed with the active stack (or `?framework=`'s) and stored,
as `POST /v1/assess` would; the mapping and `into` are read with that framework's names.
Either way the request is one decision-log entry. A log's name is only a label
(it becomes the evaluation's `source`); nothing is read from or written to disk.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.api import Body
from engine.assess import vocabulary
from engine.evidence import load_evidence
from importers.inspect_import import dump_document, import_inspect
from importers.inspect_log import read_logs
from importers.mapping import MAX_MAPPING_BYTES, parse_mapping
from importers.problems import ImportRefused
from importers.problems import Problem as ImportProblem
from service.auth import ANALYST, Principal, require
from service.bodies import json_model, openapi_body
from service.evidence import Framework, framework_stack
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.routers.assess import assess_and_store, digests, log
from service.routers.models import JSON_CONTENT, json_bytes
from service.state import LoadedStack, ServiceState

router = APIRouter(prefix="/v1/imports", tags=["imports"],
                   responses=problem_responses(*AUTHENTICATED, 400, 413, 415))
LOG_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,299}\.(eval|json)$"
MAPPING_FILE = "mapping"
INTO_FILE = "into"


class InspectLog(BaseModel):
    """One Inspect log: its name (`.eval` or `.json`, kept as the evaluation's source)
    and its bytes, base64-encoded."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=LOG_NAME, max_length=300)
    content_base64: str = Field(description="the log's bytes, base64")


class InspectImport(BaseModel):
    """What `asl import inspect` takes: logs, the mapping's YAML text, and optionally
    the model document to add the evaluations to; `latest` as `--latest`."""

    model_config = ConfigDict(extra="forbid")
    logs: list[InspectLog] = Field(min_length=1, max_length=100)
    mapping: str = Field(max_length=MAX_MAPPING_BYTES)
    into: dict[str, Any] | None = None
    latest: bool = False


def _problem_json(problem: ImportProblem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "field": problem.field,
            "message": problem.message}


def _refused(problems: list[ImportProblem]) -> Problem:
    return Problem(422, f"nothing was imported: {problems[0]}",
                   problems=[_problem_json(p) for p in problems])


def _logs(body: InspectImport) -> list[tuple[str, bytes]]:
    found, bad = [], []
    for log_ in body.logs:
        try:
            found.append((log_.name, base64.b64decode(log_.content_base64, validate=True)))
        except (binascii.Error, ValueError):
            bad.append(ImportProblem(log_.name, 0, "content_base64", "not base64"))
    if bad:
        raise _refused(bad)
    return found


def _into(body: InspectImport, stack: LoadedStack) -> dict[str, Any] | None:
    """The `into` document, checked as one valid model document (as `--into` is)."""
    if body.into is None:
        return None
    loaded = load_evidence([Body(orjson.dumps(body.into), "json", INTO_FILE)],
                           vocabulary(stack.pack))
    problems = [ImportProblem(INTO_FILE, 0, e.path, e.message) for e in loaded.errors]
    if not problems and (len(loaded.documents) != 1 or loaded.documents[0].where):
        problems.append(ImportProblem(INTO_FILE, 0, "", "into needs one model document, "
                                      "not a portfolio"))
    if problems:
        raise _refused(problems)
    return body.into


def _import(state: ServiceState, who: Principal, body: InspectImport, store: bool,
            framework: str | None = None) -> dict[str, Any]:
    stack = framework_stack(state, framework)
    words = vocabulary(stack.pack)
    into = _into(body, stack)
    try:
        mapping = parse_mapping(body.mapping, MAPPING_FILE, words)
        headers = read_logs(_logs(body), "builtin")
        data = import_inspect(headers, mapping, words, latest=body.latest, into=into,
                              into_file=INTO_FILE, output_file="evidence")
    except ImportRefused as exc:
        raise _refused(exc.problems) from None
    evidence = json.loads(dump_document(data, "json"))  # dates as the text they are
    logged = {"logs": [[log_.name, log_.content_base64] for log_ in body.logs],
              "mapping": body.mapping, "into": body.into, "latest": body.latest}
    if store:
        done = assess_and_store(state, who, orjson.dumps(evidence), "json", True,
                                "import.inspect", logged, framework)
        return {"evidence": evidence, **done}
    hashes = digests(logged, evidence)
    with state.engine.begin() as conn:
        entry = log(conn, who, "import.inspect", stack, hashes)
    return {"evidence": evidence, "decision_id": entry.decision_id}


@router.post("/inspect", openapi_extra=openapi_body(InspectImport),
             responses={200: {"content": JSON_CONTENT}})
async def inspect_import(request: Request,
                         who: Annotated[Principal, Depends(require(ANALYST))],
                         store: Annotated[bool, Query()] = False,
                         framework: Framework = None) -> Response:
    """As `asl import inspect LOG... --mapping MAP [--into DOC] [--latest]`: the evidence
    document (`evidence`); with `store=true` also assessed and stored (`results`, as
    `POST /v1/assess` answers), under `framework` when named."""
    body = await json_model(request, InspectImport)
    state: ServiceState = request.app.state.asl
    return json_bytes(await run_in_threadpool(_import, state, who, body, store, framework))
