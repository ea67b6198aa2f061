"""`/ui/models/{model}/what-if` (analyst): the model's stored evidence as a form (each
evaluation's score, each finding's verdict, each safeguard's status); sent back, the
changed fields become `asl what-if --set` edits, the model is assessed again with the
active stack (engine.whatif, as `asl what-if` and `POST /v1/what-if`), and the page shows
what changed (knowledge_graph.whatif's report) and the new why-graph of the decision.
Nothing is stored; the what-if is entered in the decision log, as the API's is.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from engine.api import Body, assess
from engine.errors import AssessmentError
from engine.whatif import SET, EditRejected, parse_edit
from engine.whatif import what_if as run_what_if
from knowledge_graph.provenance import find_conclusion
from knowledge_graph.report import provenance
from knowledge_graph.whatif import what_if_report
from service.auth import ANALYST
from service.evidence import References
from service.ui.graph import why_chain, why_svg
from service.ui.render import html_page
from service.ui.session import PageError, Session, field, form_fields, page
from store import audit
from store.canonical import run_input

router = APIRouter(prefix="/ui/models", include_in_schema=False)
Analyst = Annotated[Session, Depends(page(ANALYST))]
VERDICTS = ("crossed", "cannot_rule_out", "ruled_out")
SAFEGUARD_STATES = ("implemented", "partial", "planned", "absent")
# Form sections: (evidence list, the field a reader edits, the choices or None for a number)
SECTIONS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("evaluations", "score", None),
    ("findings", "verdict", VERDICTS),
    ("safeguards", "status", SAFEGUARD_STATES),
)


def _stored(request: Request, model: str) -> dict[str, Any]:
    store = request.app.state.asl.store
    found = [] if "\x00" in model else store.history(model)
    if not found:
        raise PageError(404, f"No stored assessment of a model {model!r}.")
    newest = found[-1]
    return dict(store.evidence([newest.evidence_hash])[newest.evidence_hash])


def _rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The editable fields of `evidence`: section, item id, field, value, choices."""
    rows = []
    for section, name, choices in SECTIONS:
        for item in evidence.get(section) or []:
            if isinstance(item, dict) and "id" in item:
                value = item.get(name)
                rows.append({"section": section, "id": str(item["id"]), "field": name,
                             "value": "" if value is None else str(value),
                             "choices": choices, "key": f"{section}[{item['id']}].{name}"})
    return rows


def _edits(rows: list[dict[str, Any]], fields: dict[str, list[str]]) -> list[str]:
    """`PATH=VALUE` for each field the reader changed."""
    changed = []
    for row in rows:
        sent = field(fields, row["key"], row["value"]).strip()
        if sent != row["value"]:
            if row["choices"] is not None and sent not in row["choices"]:
                raise PageError(422, f"{row['key']}: {sent!r} is not one of "
                                f"{', '.join(row['choices'])}.")
            changed.append(f"{row['key']}={sent}")
    return changed


def _run(request: Request, session: Session, model: str, evidence: dict[str, Any],
         sets: list[str]) -> dict[str, Any]:
    """The what-if of `sets` on `evidence`: the report, the new why-graph and chain."""
    try:
        edits = [parse_edit(SET, text) for text in sets]
    except ValueError as exc:
        raise PageError(422, str(exc)) from None
    state = request.app.state.asl
    stack = state.loaded_stack()
    run = assess([Body(orjson.dumps(evidence), "json", "stored evidence")],
                 evaluator=stack.evaluator, references=References(state))
    if run.load_errors:
        raise PageError(422, f"The stored evidence no longer loads: {run.load_errors[0]}")
    try:
        result = run_what_if(run, edits, model, "stored evidence")
    except EditRejected as exc:
        raise PageError(422, "; ".join(str(e) for e in exc.errors)) from None
    except AssessmentError as exc:
        raise PageError(422, f"The assessment failed: {exc}") from None
    if model not in result.before or model not in result.after:
        raise PageError(422, f"{model} could not be assessed with these changes.")
    report = what_if_report(result)
    with state.engine.begin() as conn:
        audit.append(conn, actor=session.person, role=session.role, action="what-if",
                     pack=stack.pack.name, pack_version=stack.pack.version,
                     input_sha256=audit.sha256_of(run_input(run)),
                     result_sha256=audit.sha256_of(report))
    graph = provenance(result.after[model])
    node = find_conclusion(graph, "decision")
    return {"report": report, "svg": why_svg(model, graph, node),
            "chain": why_chain(model, graph, node)}


@router.get("/{model}/what-if")
def what_if_form(request: Request, model: str, session: Analyst) -> Response:
    """The form: the stored evidence's scores, verdicts and safeguard statuses."""
    rows = _rows(_stored(request, model))
    return html_page(request, "whatif.html", session, model=model, rows=rows, sets=[],
                     outcome=None)


@router.post("/{model}/what-if")
async def what_if_page(request: Request, model: str, session: Analyst) -> Response:
    """The what-if of the changed fields, beside the form to change them again."""
    fields = await form_fields(request, session.csrf)
    evidence = await run_in_threadpool(_stored, request, model)
    rows = _rows(evidence)
    sets = _edits(rows, fields)
    if not sets:
        raise PageError(422, "Nothing was changed: change a score, a verdict or a status.")
    outcome = await run_in_threadpool(_run, request, session, model, evidence, sets)
    for row in rows:
        row["value"] = field(fields, row["key"], row["value"]).strip()
    return html_page(request, "whatif.html", session, model=model, rows=rows, sets=sets,
                     outcome=outcome)
