"""The record in the browser (viewer): `/ui/models` (the newest assessment of every
model, filtered, sorted and paged in the database), `/ui/models/{model}` (one
assessment laid out, its why-graph, its history), an evidence item's page, and the
difference between two assessments (knowledge_graph.compare, as `asl history --diff`)."""

from __future__ import annotations

from typing import Annotated, Any

import networkx as nx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from engine.framework import builtin_specs, known_levels
from knowledge_graph.compare import compare
from knowledge_graph.explain import describe_values
from knowledge_graph.provenance import UnknownConclusion, find_conclusion, roots
from knowledge_graph.provenance import load as load_graph
from service.auth import VIEWER
from service.ui.graph import node_href, why_chain, why_svg
from service.ui.render import DECISIONS, html_page
from service.ui.session import PageError, Session, page
from store.browse import Filters, latest_page
from store.record import Store, Summary

router = APIRouter(prefix="/ui/models", include_in_schema=False)
Viewer = Annotated[Session, Depends(page(VIEWER))]
PAGE_SIZE = 50
# Every built-in framework's levels, read from their packs, for the level filter.
ASLS = tuple(known_levels(builtin_specs()))
SORTS: dict[str, tuple[str, str]] = {  # name -> (heading, column of store.browse.SORTABLE)
    "model": ("Model", "model_id"),
    "asl": ("Level", "level"),
    "decision": ("Decision", "decision"),
    "assessed": ("Assessed (UTC)", "assessed_at"),
}
Text = Annotated[str, Query(max_length=200)]


def _store(request: Request) -> Store:
    return request.app.state.asl.store  # type: ignore[no-any-return]


@router.get("")
def models(request: Request, session: Viewer, asl: Text = "", decision: Text = "",
           q: Text = "", sort: Text = "model",
           page_no: Annotated[int, Query(alias="page", ge=1, le=10**7)] = 1,
           per: Annotated[int, Query(ge=10, le=500)] = PAGE_SIZE) -> Response:
    """One page (`per` rows) of the newest assessment of every model that passes the
    filters; the database filters, counts, sorts and pages."""
    key = sort.removeprefix("-")
    if key not in SORTS:
        key, sort = "model", "model"
    column = SORTS[key][1]
    order = [] if sort == "model" else [(column, sort.startswith("-"))]
    filters = Filters(asl if asl in ASLS else None,
                      decision if decision in DECISIONS else None, None,
                      q.replace("\x00", "") or None)
    rows, total = latest_page(request.app.state.asl.engine, filters, per,
                              (page_no - 1) * per, order)
    pages = max(1, -(-total // per))
    query: dict[str, Any] = {"asl": filters.level or "", "decision": filters.decision or "",
                             "q": filters.q or "", "sort": sort}
    if per != PAGE_SIZE:
        query["per"] = per
    return html_page(request, "models.html", session, rows=rows, total=total,
                     page_no=page_no, pages=pages, query=query, sorts=SORTS, asls=ASLS,
                     first=(page_no - 1) * per + 1 if rows else 0,
                     last=(page_no - 1) * per + len(rows))


def _history(store: Store, model: str) -> list[Summary]:
    found = [] if "\x00" in model else store.history(model)
    if not found:
        raise PageError(404, f"No stored assessment of a model {model!r}.")
    return found


def _chosen(history: list[Summary], model: str, assessment: int | None) -> Summary:
    if assessment is None:
        return history[-1]
    for summary in history:
        if summary.id == assessment:
            return summary
    raise PageError(404, f"{model} has no assessment {assessment}.")


def _graph(store: Store, assessment: int) -> nx.DiGraph:
    return load_graph(store.provenance(assessment))


@router.get("/{model}")
def model_page(request: Request, model: str, session: Viewer,
               assessment: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
               conclusion: Annotated[str, Query(max_length=300)] = "decision") -> Response:
    """The assessment laid out, the why-graph of one conclusion (the decision unless
    another is chosen), and the model's history."""
    store = _store(request)
    history = _history(store, model)
    chosen = _chosen(history, model, assessment)
    result = store.results([chosen.id])[chosen.id]
    graph = _graph(store, chosen.id)
    try:
        node = find_conclusion(graph, conclusion)
    except UnknownConclusion:
        raise PageError(404, f"{model} has no conclusion {conclusion!r}.") from None
    data = graph.nodes[node]
    return html_page(request, "model.html", session, model=model, result=result,
                     chosen=chosen, history=list(reversed(history)), conclusion=conclusion,
                     node=node, node_label=f"{data['kind']} {describe_values(data['values'])}",
                     svg=why_svg(model, graph, node),
                     chain=why_chain(model, graph, node),
                     newest=chosen.id == history[-1].id)


@router.get("/{model}/evidence/{evidence:path}")
def evidence_page(request: Request, model: str, evidence: str, session: Viewer,
                  assessment: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
                  ) -> Response:
    """One evidence item of an assessment: its values, where it was stated, and the
    conclusions that rest on it."""
    store = _store(request)
    history = _history(store, model)
    chosen = _chosen(history, model, assessment)
    graph = _graph(store, chosen.id)
    if evidence not in graph or graph.nodes[evidence]["node"] not in ("evidence", "default"):
        raise PageError(404, f"{model}'s assessment {chosen.id} has no evidence item "
                        f"{evidence!r}.")
    data = graph.nodes[evidence]
    resting = sorted(n for n, d in graph.nodes(data=True)
                     if d["node"] == "conclusion" and evidence in roots(graph, n))
    return html_page(request, "evidence.html", session, model=model, chosen=chosen,
                     item=evidence, data=data,
                     resting=[(n, graph.nodes[n], node_href(model, n, graph.nodes[n]))
                              for n in resting])


@router.get("/{model}/diff")
def diff_page(request: Request, model: str, session: Viewer,
              old: Annotated[int, Query(ge=1, le=2**31 - 1)],
              new: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> Response:
    """What changed between two assessments of the model, and the evidence behind it
    (knowledge_graph.compare, as `asl history --diff`)."""
    store = _store(request)
    history = _history(store, model)
    first, second = _chosen(history, model, old), _chosen(history, model, new)
    if first.id > second.id:
        first, second = second, first
    results = store.results([first.id, second.id])
    changes = compare(results[first.id], _graph(store, first.id), results[second.id],
                      _graph(store, second.id))
    return html_page(request, "diff.html", session, model=model, old=first, new=second,
                     changes=changes, history=list(reversed(history)))
