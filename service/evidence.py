"""Evidence in the service: request bodies read as the CLI reads files, assessed through
the engine's front door (engine.api.assess) with the active pack stack (or, with
`?framework=NAME`, another built-in framework's pack), and references resolved from the
body and then from the record, as in `asl batch`.

Statuses follow the spec: a body of another media type 415; one that is not JSON or YAML
at all (or not UTF-8) 400; evidence that breaks the format 422 with one
`{"file": "body", "path", "message"}` per problem, exactly as the CLI reports them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from fastapi import Query, Request

from engine.api import AssessmentRun, Body, assess_documents, stopped_by
from engine.assess import ReferenceInfo, vocabulary
from engine.errors import InputError
from engine.evidence import LoadedDocument, load_evidence
from service.bodies import JSON_TYPES, JSONL_TYPES, YAML_TYPES, media_type
from service.problems import Problem
from service.state import LoadedStack, ServiceState, UnknownFramework
from store.record import Summary
from store.references import stored_references

BODY = "body"  # what errors call the request body, in place of a file name
MAX_MODELS = 1000  # per POST /v1/assess; more goes to a batch
SYNTAX = ("invalid JSON", "invalid YAML", "not UTF-8")  # the body is not data at all
_LINE = re.compile(r"line [0-9]+")  # where a JSON Lines body's line is refused
FRAMEWORK_PATH = "query.framework"  # where a problem with ?framework= is, as validation says
Framework = Annotated[str | None, Query(
    max_length=100, description="the framework to assess under, a built-in pack's name "
    "(as `asl assess --framework`); default: the active stack (rsp-2.1 and the activated "
    "overlays)")]


def framework_stack(state: ServiceState, framework: str | None) -> LoadedStack:
    """The stack `?framework=` chooses (none: the active stack); 422 naming the
    parameter and the built-in frameworks for an unknown one."""
    try:
        return state.framework_stack(framework)
    except UnknownFramework as exc:
        raise Problem(422, f"{FRAMEWORK_PATH}: {exc}", errors=[
            {"path": FRAMEWORK_PATH, "message": str(exc)}]) from None


def body_format(request: Request) -> str:
    """`json`, `yaml` or `jsonl` for the request's media type; 415 for any other."""
    kind = media_type(request)
    for formats, name in ((JSON_TYPES, "json"), (YAML_TYPES, "yaml"), (JSONL_TYPES, "jsonl")):
        if kind in formats:
            return name
    raise Problem(415, f"evidence is taken as application/json, application/yaml or "
                  f"application/jsonl, not {kind or 'no type'}")


def error_json(error: InputError) -> dict[str, str]:
    return {"file": error.file, "path": error.path, "message": error.message}


def rejection(errors: list[InputError]) -> Problem:
    """400 when the body, or a line of a JSON Lines body, is not JSON or YAML (or not
    UTF-8); 422 with every problem."""
    syntax = [e for e in errors if (not e.path or _LINE.fullmatch(e.path))
              and e.message.startswith(SYNTAX)]
    if syntax:
        return Problem(400, f"{BODY}: {syntax[0].message}",
                       errors=[error_json(e) for e in syntax])
    return Problem(422, f"{len(errors)} problem(s) in the evidence; first: {errors[0]}",
                   errors=[error_json(e) for e in errors])


class References:
    """Reference info looked up in the record, remembered so a caller can tell what each
    model outside the input carried over. With `also` (the input's own models), their
    newest stored assessments are read in the same query, for the caller's check of
    what changed (`newest`; None when no reference was looked up)."""

    def __init__(self, state: ServiceState, also: Collection[str] = ()) -> None:
        self.state = state
        self.found: dict[str, ReferenceInfo] = {}
        self.also = frozenset(also)
        self.newest: dict[str, Summary] | None = None

    def __call__(self, models: Collection[str]) -> Mapping[str, ReferenceInfo]:
        store = self.state.store
        latest = store.latest({*models, *self.also})
        if self.also:
            self.newest = {m: s for m, s in latest.items() if m in self.also}
        self.found.update(stored_references(store, models, latest))
        return self.found


def assess_body(state: ServiceState, content: bytes, fmt: str, keep_inputs: bool = False,
                framework: str | None = None, newest: bool = False
                ) -> tuple[LoadedStack, AssessmentRun, References]:
    """Assess the evidence in a body with the active stack (or `framework`'s); raise the
    rejection (400 or 422) if any of it was refused (all or nothing). With `newest`, the
    body's models' newest stored assessments are read with any references
    (`References.newest`)."""
    stack = framework_stack(state, framework)
    loaded = load_evidence([Body(content, fmt, BODY)], vocabulary(stack.pack),
                           keep_raw=keep_inputs)
    if loaded.errors:  # all or nothing, and every model it stops is named too
        raise rejection(sorted([*loaded.errors, *stopped_by(loaded.documents, loaded.errors)]))
    if len(loaded.documents) > MAX_MODELS:  # refused before any is assessed
        raise Problem(413, f"{len(loaded.documents)} models; POST /v1/assess takes at "
                      f"most {MAX_MODELS} (POST /v1/batches takes more)")
    references = References(state, [d.document.model.id for d in loaded.documents]
                            if newest else ())
    run = assess_loaded(stack, loaded.documents, references)
    if run.rejected:
        raise rejection(run.rejected)
    return stack, run, references


def assess_loaded(stack: LoadedStack, documents: list[LoadedDocument],
                  references: References) -> AssessmentRun:
    """The run `engine.api.assess` makes of one body, from its validated documents."""
    assessments, failed = assess_documents(stack.evaluator, documents, (), references)
    return AssessmentRun(stack.evaluator, assessments, sorted(failed), [],
                         [d.document.model.id for d in documents], documents,
                         len(documents) == 1 and documents[0].where == "", references)


def stored_evidence(state: ServiceState, model: str, assessment: int | None = None,
                    framework: str | None = None) -> dict[str, Any]:
    """The evidence document of `model`'s newest stored assessment (or of `assessment`),
    under `framework` when one is named (evidence is written for one framework); 404
    when there is none."""
    store = state.store
    found = [] if "\x00" in model else store.history(model)
    if assessment is not None:
        found = [s for s in found if s.id == assessment]
    if framework is not None:
        found = [s for s in found if s.framework == framework]
    if not found:
        what = f"assessment {assessment} of " if assessment is not None else "assessment of "
        under = f" under {framework}" if framework is not None else ""
        raise Problem(404, f"no stored {what}a model {model!r}{under}")
    return store.evidence([found[-1].evidence_hash])[found[-1].evidence_hash]


def stored_framework(state: ServiceState, model: str, assessment: int | None = None
                     ) -> str | None:
    """The framework `model`'s newest stored assessment (or `assessment`) was made
    under, the default of `?framework=` wherever stored evidence is assessed again (its
    evidence is written for that framework); None when there is none (stored_evidence
    then says 404)."""
    found = [] if "\x00" in model else state.store.history(model)
    chosen = [s for s in found if assessment is None or s.id == assessment]
    return chosen[-1].framework if chosen else None
