"""Reading the record: stored models, their assessments and history, and why
(`/v1/models...`, viewer). What `asl batch` stored is here, and what the service stores
is in `asl list`: they share the database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from knowledge_graph.provenance import load as load_graph
from service.auth import VIEWER, Principal, require
from service.explain import MEDIA_TYPES, explain
from service.problems import AUTHENTICATED, Problem, problem_responses
from store.browse import Filters, latest_page, summary_json
from store.record import Store, Summary

router = APIRouter(prefix="/v1/models", tags=["models"],
                   responses=problem_responses(*AUTHENTICATED, 404))
Viewer = Annotated[Principal, Depends(require(VIEWER))]
ModelId = Annotated[str, Path(max_length=200, description="a stored model's id")]
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]
ROW_ID_MAX = 2**31 - 1  # ids are SQL INTEGER columns
ASL = Literal["ASL-2", "ASL-3", "ASL-4"]
Decision = Literal["proceed", "assessment_required", "restrict_deployment", "pause"]
Format = Literal["json", "text", "svg", "dot", "prov-json"]
JSON_CONTENT = {"application/json": {}}


def json_bytes(data: Any, status: int = 200) -> Response:
    """`data` as JSON, serialised once (results are large; no re-encoding pass)."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _history(store: Store, model: str) -> list[Summary]:
    found = [] if "\x00" in model else store.history(model)
    if not found:
        raise Problem(404, f"no stored assessment of a model {model!r}")
    return found


def _chosen(store: Store, model: str, assessment: int | None) -> int:
    found = _history(store, model)
    if assessment is None:
        return found[-1].id
    if assessment not in {s.id for s in found}:
        raise Problem(404, f"{model}: no assessment {assessment}; its assessments are "
                      f"{', '.join(str(s.id) for s in found)}")
    return assessment


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
    return json_bytes({"models": [summary_json(s) for s in rows], "total": total,
                       "limit": limit, "offset": offset})


@router.get("/{model}", responses={200: {"content": JSON_CONTENT}})
def newest(request: Request, model: ModelId, _: Viewer) -> Response:
    """The newest stored assessment of `model`, as `asl assess --format json` gives it."""
    store = request.app.state.asl.store
    chosen = _chosen(store, model, None)
    return json_bytes(store.results([chosen])[chosen])


@router.get("/{model}/history", responses={200: {"content": JSON_CONTENT}})
def history(request: Request, model: ModelId, _: Viewer) -> Response:
    """Every stored assessment of `model`, newest first."""
    found = _history(request.app.state.asl.store, model)
    return json_bytes({"model": model,
                       "assessments": [summary_json(s) for s in reversed(found)]})


@router.get("/{model}/why", responses={
    200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))}}})
def why(request: Request, model: ModelId, _: Viewer,
        conclusion: Annotated[str, Query(max_length=300)] = "asl",
        format: Annotated[Format, Query()] = "json",
        assessment: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None) -> Response:
    """As `asl why MODEL --conclusion C --format F [--assessment ID]`: the chain from a
    conclusion through each rule down to the evidence, from the stored graph."""
    store = request.app.state.asl.store
    chosen = _chosen(store, model, assessment)
    graph = load_graph(store.provenance(chosen))
    return Response(explain(model, graph, conclusion, format), media_type=MEDIA_TYPES[format])
