"""Reading the record: stored models, their assessments and history, and why
(`/v1/models...`, viewer). What `asl batch` stored is here, and what the service stores
is in `asl list`: they share the database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.api import Body, assess
from engine.framework import (
    builtin_spec,
    builtin_specs,
    default_spec,
    known_decisions,
    known_levels,
)
from engine.jsontext import dumps
from knowledge_graph.provenance import subjects_for
from knowledge_graph.report import provenance
from knowledge_graph.whynot import TargetError, parse_target, why_not
from service.auth import VIEWER, Principal, require, run_read
from service.bodies import json_model, openapi_body
from service.evidence import (
    BODY,
    Framework,
    References,
    framework_stack,
    rejection,
    stored_evidence,
    stored_framework,
)
from service.explain import GRAPH_FORMATS, MEDIA_TYPES, explain
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.state import ServiceState
from store.browse import Filters, latest_page, summary_json
from store.record import Store, Summary

router = APIRouter(prefix="/v1/models", tags=["models"],
                   responses=problem_responses(*AUTHENTICATED, 404))
Viewer = Annotated[Principal, Depends(require(VIEWER))]
ModelId = Annotated[str, Path(max_length=200, description="a stored model's id")]
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]
ROW_ID_MAX = 2**31 - 1  # ids are SQL INTEGER columns
# The levels and decisions of every built-in framework, read from their packs (`asl`
# filters the headline level: rsp-2.1's ASL, openai-pf-2's level).
_SPECS = builtin_specs()
ASL = Literal[tuple(known_levels(_SPECS))]  # type: ignore[valid-type]
Decision = Literal[tuple(known_decisions(_SPECS))]  # type: ignore[valid-type]
Format = Literal["json", "text", "svg", "dot", "prov-json"]
JSON_CONTENT = {"application/json": {}}


def json_bytes(data: Any, status: int = 200) -> Response:
    """`data` as JSON, serialised once (results are large; no re-encoding pass)."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def cli_json_bytes(data: Any) -> Response:
    """`data` exactly as the CLI prints it with `--format json` (engine.jsontext: keys
    sorted, indented two spaces, a final newline), for answers the spec defines as a
    CLI command's JSON: the same input gives the same bytes, whichever path made them."""
    return Response(f"{dumps(data)}\n".encode(), media_type="application/json")


def _history(store: Store, model: str) -> list[Summary]:
    """Every stored assessment of `model`, oldest first (`Store.history`); 404 when
    there is none."""
    found = [] if "\x00" in model else store.history(model)
    if not found:
        raise Problem(404, f"no stored assessment of a model {model!r}")
    return found


def _chosen(store: Store, model: str, assessment: int | None) -> Summary:
    """The stored assessment `assessment` of `model` (by default its newest); 404 when
    `model` has none, or none by that id."""
    found = _history(store, model)
    if assessment is None:
        return found[-1]
    for summary in found:
        if summary.id == assessment:
            return summary
    raise Problem(404, f"{model}: no assessment {assessment}; its assessments are "
                  f"{', '.join(str(s.id) for s in found)}")


@router.get("", responses={200: {"content": JSON_CONTENT}})
def list_models(request: Request, _: Viewer,
                asl: Annotated[ASL | None, Query()] = None,
                decision: Annotated[Decision | None, Query()] = None,
                framework: Text = None,
                q: Text = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> Response:
    """The newest stored assessment of each model, by model id, a page at a time:
    `framework` is the base pack's name, `q` text the model id contains (any case)."""
    rows, total = latest_page(request.app.state.asl.engine,
                              Filters(asl, decision, framework, q), limit, offset)
    return json_bytes({"models": [_listed(s) for s in rows], "total": total,
                       "limit": limit, "offset": offset})


def _listed(s: Summary) -> dict[str, Any]:
    """A list item: the stored row as `asl list` gives it, and, for a framework whose
    results have no `asl` key (openai-pf-2), `asl` as the headline level, which is what
    `?asl=` filters: the spec's item is `{"model", "asl", "decision", "assessed_at", ...}`
    whatever the framework. An rsp-2.1 row is as it was."""
    item = summary_json(s)
    item.setdefault("asl", s.level)
    return item


@router.get("/{model}", responses={200: {"content": JSON_CONTENT}})
def newest(request: Request, model: ModelId, _: Viewer) -> Response:
    """The newest stored assessment of `model`, as `asl assess --format json` gives it."""
    state: ServiceState = request.app.state.asl
    chosen = _chosen(state.store, model, None).id
    return cli_json_bytes(state.store.results([chosen])[chosen])


@router.get("/{model}/history", responses={200: {"content": JSON_CONTENT}})
async def history(request: Request, model: ModelId, _: Viewer) -> Response:
    """Every stored assessment of `model`, newest first."""
    state: ServiceState = request.app.state.asl
    found = await run_read(state.engine, _history, state.store, model)
    return json_bytes({"model": model,
                       "assessments": [summary_json(s) for s in reversed(found)]})


@router.get("/{model}/why", responses={
    200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))}}})
async def why(request: Request, model: ModelId, _: Viewer,
              conclusion: Annotated[str | None, Query(max_length=300)] = None,
              format: Annotated[Format, Query()] = "json",
              assessment: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None
              ) -> Response:
    """As `asl why MODEL --conclusion C --format F [--assessment ID]`: the chain from a
    conclusion (default: the headline level of the framework the assessment was made
    under, rsp-2.1's `asl`) through each rule down to the evidence, from the stored
    graph, with that framework's selectors."""
    state: ServiceState = request.app.state.asl
    args = (state, model, conclusion, format, assessment)
    # A tree is a read and a walk of part of the graph; a graph format decodes all of
    # it and may run Graphviz: in a worker thread.
    data = await (run_in_threadpool(_why, *args) if format in GRAPH_FORMATS
                  else run_read(state.engine, _why, *args))
    return Response(data, media_type=MEDIA_TYPES[format])


def _why(state: ServiceState, model: str, conclusion: str | None, fmt: str,
         assessment: int | None) -> bytes:
    # The newest one, its framework and graph read as `asl why MODEL` reads them (one
    # statement: by index, then by primary key).
    found = state.store.newest(model) if assessment is None and "\x00" not in model \
        else None
    if found is None:  # an assessment named, or none stored: checked against history
        chosen = _chosen(state.store, model, assessment)
        graph = state.store.find_provenance(chosen.id)
        if graph is None:  # removed since its history was read
            raise Problem(404, f"no stored assessment of a model {model!r}")
        found = chosen.id, chosen.framework, graph
    _, framework, stored = found
    spec = builtin_spec(framework or "") or default_spec()
    return explain(model, stored, conclusion or spec.level.key or "level", fmt,
                   subjects_for(spec))


class WhyNotRequest(BaseModel):
    """The conclusion wanted, as `asl why-not` takes it (`asl=ASL-2`, `decision=proceed`,
    `threshold:CBRN-3=ruled_out`, ...)."""

    model_config = ConfigDict(extra="forbid")
    target: str = Field(max_length=300)


def _why_not(state: ServiceState, model: str, target: str, assessment: int | None,
             framework: str | None = None) -> bytes:
    if framework is None:  # the framework the stored assessment was made under
        framework = stored_framework(state, model, assessment)
    stack = framework_stack(state, framework)
    evidence = stored_evidence(state, model, assessment, framework)
    try:
        parsed = parse_target(target, stack.pack)
    except TargetError as exc:
        raise Problem(422, str(exc).splitlines()[0], errors=[
            {"file": BODY, "path": "target", "message": str(exc)}]) from None
    run = assess([Body(orjson.dumps(evidence), "json", BODY)], evaluator=stack.evaluator,
                 references=References(state))
    chosen = run.assessment(model)
    if chosen is None:
        raise rejection(run.rejected) if run.rejected else Problem(
            422, f"{model}: its stored evidence could not be assessed")
    return orjson.dumps(why_not(chosen, parsed, provenance(chosen)), default=str)


@router.post("/{model}/why-not", openapi_extra=openapi_body(WhyNotRequest),
             responses={200: {"content": JSON_CONTENT}, **problem_responses(400, 413, 415)})
async def why_not_endpoint(request: Request, model: ModelId, _: Viewer,
                           assessment: Annotated[int | None,
                                                 Query(ge=1, le=ROW_ID_MAX)] = None,
                           framework: Framework = None) -> Response:
    """As `asl why-not MODEL_FILE TARGET [--framework NAME] --format json` on the stored
    evidence of the model (its newest assessment, or `assessment`; under `framework`
    when named, else under the framework that assessment was made under), assessed again
    with the active pack stack or that framework's pack (why-not needs the derivation,
    not only the stored graph): what stands in the way of the target, and for each rule
    that would conclude it, what failed."""
    body = await json_model(request, WhyNotRequest)
    state: ServiceState = request.app.state.asl
    data = await run_in_threadpool(_why_not, state, model, body.target, assessment,
                                   framework)
    return Response(data, media_type="application/json")
