"""Assessing over HTTP (analyst): `POST /v1/assess` and `POST /v1/what-if`.

Both go through the engine's front door with the active pack stack (or, with
`?framework=NAME`, that built-in framework's pack), as `asl assess [--framework NAME]`
and `asl what-if` do, and answer exactly what those print as JSON. An assessment is
stored (unless `store=false`) with its decision-log entry in one transaction, all or
nothing; a model whose input (evidence and what its reference carried over), pack
version and stack match its newest stored assessment is not stored again, as in
`asl batch`. A what-if is never stored; it is logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from batch.stack import same_stack
from batch.work import Entry, input_hash, stored_form, stored_parts
from engine.api import AssessmentRun, Body, assess
from engine.assess import ReferenceInfo
from engine.errors import AssessmentError
from engine.jsontext import encode_parsed
from engine.whatif import SET, UNSET, EditRejected, parse_edit
from engine.whatif import what_if as run_what_if
from knowledge_graph.report import assessment_document
from knowledge_graph.whatif import what_if_report
from service.auth import ANALYST, Principal, require
from service.bodies import json_model, openapi_body
from service.evidence import (
    BODY,
    Framework,
    References,
    assess_body,
    body_format,
    error_json,
    framework_stack,
    rejection,
    stored_evidence,
    stored_framework,
)
from service.problems import AUTHENTICATED, Problem, problem_responses
from service.routers.models import JSON_CONTENT, cli_json_bytes
from service.state import LoadedStack, ServiceState
from store import audit, jcs
from store.canonical import run_input
from store.record import NewAssessment

router = APIRouter(prefix="/v1", tags=["assess"],
                   responses=problem_responses(*AUTHENTICATED, 400, 413, 415))
Analyst = Annotated[Principal, Depends(require(ANALYST))]
EVIDENCE_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "object" if media != "application/jsonl" else "string"}}
    for media in ("application/json", "application/yaml", "application/jsonl")}}}


class WhatIfRequest(BaseModel):
    """A what-if: the model, its evidence (default: its stored evidence) and the edits,
    written as `asl what-if --set/--unset` takes them."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(max_length=200, description="the model's id")
    evidence: dict[str, Any] | None = Field(
        default=None, description="an evidence document or portfolio; default: the "
        "model's stored evidence")
    set: list[Annotated[str, Field(max_length=10_000)]] = Field(
        default_factory=list, max_length=200, description="PATH=VALUE edits")
    unset: list[Annotated[str, Field(max_length=1_000)]] = Field(
        default_factory=list, max_length=200, description="PATH removals")


def _reference(run: AssessmentRun, entry: Entry, references: References
               ) -> ReferenceInfo | None:
    """What `entry`'s model carried over from its reference, as the engine took it:
    from the body when the reference is there, else from the record."""
    entry_ref = entry.reference
    if entry_ref is None:
        return None
    done = run.assessment(entry_ref)
    if done is not None:
        referenced = next(d for d in run.documents if d.document.model.id == entry_ref)
        return ReferenceInfo(referenced.document.model.effective_compute_flop,
                             done.output["level"])
    return references.found.get(entry_ref)


def assess_and_store(state: ServiceState, who: Principal, content: bytes, fmt: str,
                     store: bool, action: str | None = None, logged: Any = None,
                     framework: str | None = None) -> dict[str, Any]:
    """Assess a body (under `framework`, default the active stack); store what changed
    with its framework and log the request (as `action`, with `logged` as its input
    when given), in one transaction."""
    return _assessed(state, who, content, fmt, store, action, logged, framework).commit()


@dataclass
class _Assessed:
    """A body's results, ready to store: what is written, and how to answer."""

    state: ServiceState
    who: Principal
    stack: LoadedStack
    new: list[NewAssessment]  # the stored results (unchanged ones are not stored again)
    action: str
    hashes: tuple[str, str]  # the decision-log entry's input and result hashes
    results: list[Any]
    parsed: bool  # every result is its stored JSON parsed (`encode_parsed` may answer)
    floats: bool  # one of those may hold a float (the answer's text is searched for one)
    # Results not stored again, each model's newest assessment being the same: that
    # newest one's id when it was read, and how to store this one after all.
    unchanged: list[tuple[str, int, Callable[[], NewAssessment]]]

    def write(self, conn: Any) -> audit.Decision:
        """Store the new results and log the request, in `conn`'s transaction. A result
        not stored again because its model's newest assessment was the same is stored
        after all if another request stored a newer one since (read before the write
        waited its turn, that newest is checked again here)."""
        new = self.new
        if self.unchanged:
            now = self.state.store.newest_ids(conn, [model for model, _, _ in self.unchanged])
            new = [*new, *(make() for model, seen, make in self.unchanged
                           if now.get(model) != seen)]
        if new:
            self.state.store.save_many(new, self.stack.pack.name,
                                       self.stack.pack.version, self.stack.stack, conn=conn)
        return log(conn, self.who, self.action, self.stack, self.hashes)

    def commit(self) -> dict[str, Any]:
        """Write, in a transaction this process's other request threads may share
        (store.group_commit), and the answer once committed."""
        entry = self.state.commits.run(self.write)
        return {"decision_id": entry.decision_id, "results": self.results}


def _assessed(state: ServiceState, who: Principal, content: bytes, fmt: str,
              store: bool, action: str | None = None, logged: Any = None,
              framework: str | None = None) -> _Assessed:
    """The assessment half of `assess_and_store`: everything but the write.

    Each document and each stored result is serialised once, as the record keeps it
    (compact, keys sorted); the decision log's hashes are taken from those bytes
    (store.jcs.from_sorted) and the answer is parsed from them, as `decompress` of the
    stored result would give it."""
    stack, run, references = assess_body(state, content, fmt, keep_inputs=True,
                                         framework=framework, newest=store)
    ordered = run.in_input_order()
    # Each model's compact entry and its evidence as validated JSON, made once (a JSON
    # and a YAML body of the same document agree).
    entries = {d.document.model.id: Entry.of(d) for d in run.documents}
    bodies = {model: orjson.loads(entry.body) for model, entry in entries.items()}
    new: list[NewAssessment] = []
    unchanged: list[tuple[str, int, Callable[[], NewAssessment]]] = []
    results = []
    canonical = []  # each result's canonical JSON, for the result hash
    floats = False  # whether a stored result may hold a float (none does, as a rule)
    previous = ({} if not store else references.newest if references.newest is not None
                else state.store.latest(entries))
    for assessment in ordered:
        entry = entries[assessment.model]
        hashed = input_hash(bodies[assessment.model], _reference(run, entry, references))
        last = previous.get(assessment.model)
        if not store or (last is not None and last.input_hash == hashed
                         and last.pack_version == stack.pack.version
                         and same_stack(last.pack_stack, stack.stack, stack.pack)):
            document = assessment_document(assessment)
            results.append(document)
            canonical.append(jcs.dumps(document))
            if last is not None:
                unchanged.append((assessment.model, last.id, functools.partial(
                    stored_form, entry, hashed, assessment, bodies[assessment.model])))
            continue
        stored, result_json = stored_parts(entry, hashed, assessment,
                                           bodies[assessment.model])
        new.append(stored)
        results.append(orjson.loads(result_json))
        canonical.append(jcs.from_sorted(result_json))
        floats = floats or canonical[-1] is not result_json  # it had numbers to fix
    hashes = (audit.sha256_of(logged) if logged is not None
              else audit.sha256_of_canonical(_input_json(entries, run)),
              audit.sha256_of_canonical(b"[" + b",".join(canonical) + b"]"))
    return _Assessed(state, who, stack, new,
                     action or ("assess" if store else "assess.unstored"), hashes, results,
                     len(new) == len(results), floats, unchanged if store else [])


def _input_json(entries: dict[str, Entry], run: AssessmentRun) -> bytes:
    """The canonical JSON of the body's evidence (`store.canonical.evidence_input` of
    its documents: one document itself, a portfolio `{"models": [...]}` in input
    order), from each document's compact JSON (`Entry.body`)."""
    documents = [jcs.from_sorted(entries[model].body) for model in run.models]
    if run.single and len(documents) == 1:
        return documents[0]
    return b'{"models":[' + b",".join(documents) + b"]}"


def digests(given: Any, result: Any) -> tuple[str, str]:
    """A decision-log entry's input and result hashes, computed before its transaction
    opens, so that the write lock is held only to write."""
    return audit.sha256_of(given), audit.sha256_of(result)


def log(conn: Any, who: Principal, action: str, stack: LoadedStack,
        hashes: tuple[str, str]) -> audit.Decision:
    """Append the entry of `who`'s `action` (with `hashes` from `digests`) in `conn`'s
    transaction."""
    return audit.append(conn, actor=who.person, role=who.role, action=action,
                        pack=stack.pack.name, pack_version=stack.pack.version,
                        input_sha256=hashes[0], result_sha256=hashes[1])


@router.post("/assess", openapi_extra=EVIDENCE_BODY,
             responses={200: {"content": JSON_CONTENT}})
async def assess_evidence(request: Request, who: Analyst,
                          store: Annotated[bool, Query()] = True,
                          framework: Framework = None) -> Response:
    """Assess one evidence document or a portfolio (JSON, YAML or JSON Lines; at most
    1,000 models) with the active pack stack, or under `framework` (a built-in pack), as
    `asl assess [--framework NAME] --format json`: results in input order. Stored with
    their framework unless `store=false`; all or nothing (422 lists every problem, one
    `{"file": "body", "path", "message"}` each, and nothing is stored). Serialised as
    the CLI prints JSON, so the same input gives the same bytes, stored or not."""
    fmt = body_format(request)
    content = await request.body()
    state: ServiceState = request.app.state.asl
    # Assessed in a work slot; written and answered outside it, so that while one
    # request's write waits its turn the slot assesses the next, whose write may then
    # share that turn's transaction (store.group_commit).
    assessed = await anyio.to_thread.run_sync(
        lambda: _assessed(state, who, content, fmt, store, framework=framework),
        limiter=state.work_slots())

    def answer() -> Response:  # serialised in the thread too, not on the event loop
        data = assessed.commit()
        if assessed.parsed:  # as cli_json_bytes writes it, without json's check of parsed JSON
            return Response(encode_parsed(data, assessed.floats) + b"\n",
                            media_type="application/json")
        return cli_json_bytes(data)

    return await anyio.to_thread.run_sync(answer)


def _what_if(state: ServiceState, who: Principal, body: WhatIfRequest,
             framework: str | None = None) -> dict[str, Any]:
    edits, bad = [], []
    for option, text in [*((SET, t) for t in body.set), *((UNSET, t) for t in body.unset)]:
        try:
            edits.append(parse_edit(option, text))
        except ValueError as exc:
            path = text.partition("=")[0] if option == SET else text
            bad.append({"file": BODY, "path": f"{option} {path}", "message": str(exc)})
    if not edits and not bad:
        raise Problem(422, "give at least one edit in set or unset")
    if bad:
        raise Problem(422, f"{bad[0]['path']}: {bad[0]['message']}", errors=bad)
    if framework is None and body.evidence is None:  # as the stored model was assessed
        framework = stored_framework(state, body.model)
    stack = framework_stack(state, framework)
    evidence = (body.evidence if body.evidence is not None
                else stored_evidence(state, body.model, framework=framework))
    run = assess([Body(orjson.dumps(evidence), "json", BODY)], evaluator=stack.evaluator,
                 references=References(state))
    if run.load_errors:
        raise rejection(run.load_errors)
    try:
        result = run_what_if(run, edits, body.model, BODY)
    except EditRejected as exc:
        raise Problem(422, f"{exc.errors[0]}", errors=[error_json(e) for e in exc.errors]
                      ) from None
    except AssessmentError as exc:
        raise Problem(422, f"assessment failed: {exc}") from None
    lost = [*result.errors, *result.after_errors]
    if result.model not in result.before or result.model not in result.after:
        raise Problem(422, f"{body.model} could not be assessed"
                      + (f": {lost[0]}" if lost else ""), errors=[error_json(e) for e in lost])
    report = what_if_report(result)
    hashes = digests(run_input(run), report)
    with state.engine.begin() as conn:
        entry = log(conn, who, "what-if", stack, hashes)
    return {**report, "decision_id": entry.decision_id}


@router.post("/what-if", openapi_extra=openapi_body(WhatIfRequest),
             responses={200: {"content": JSON_CONTENT}, **problem_responses(404)})
async def what_if(request: Request, who: Analyst, framework: Framework = None) -> Response:
    """As `asl what-if [--framework NAME] --format json`: the model re-assessed with its
    evidence edited (`set`: `evaluations[ID].score=0.3`, ...; `unset`: a field or
    entry), and every contract key and conclusion that changes, in it and in the models
    of its portfolio that carry its determination over. Without `evidence`, the model's
    newest stored evidence (under `framework` when named, else under the framework that
    assessment was made under). Never stored."""
    body = await json_model(request, WhatIfRequest)
    state: ServiceState = request.app.state.asl
    return cli_json_bytes(await run_in_threadpool(_what_if, state, who, body, framework))
