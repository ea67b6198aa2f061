"""The engine's front door: evidence in, assessments and rejections out, in one call.

Every caller that assesses evidence (the `asl` commands, the HTTP service, `asl rules
diff --portfolio`, what-if, the tests) goes through `assess`, which runs the one chain
"load the pack stack -> load the evidence -> assess in lineage order -> read the
contract" and returns an `AssessmentRun`:

    run = assess(["portfolio.yaml"], packs=["my-lab-pack"])
    run = assess([Body(request_bytes, "yaml")], references=lookup_stored)
    for assessment in run.assessments: ...        # sorted by model id
    for problem in run.rejected: ...              # InputError: file, path, message

Evidence comes from paths (files, directories, `-` for standard input) and from bytes
held in memory (`engine.evidence_reading.Body`, reported under its name, `body` by default).
The pack stack is the built-in pack with overlay directories over it, compiled once per
process (`engine.assess.evaluator_for`). A model whose `last_comprehensive_assessment`
names a model outside the input may take that model's compute and determination from
`references` (the batch and the service look them up among stored models). A model of
the input that references a rejected one is not assessed (`engine.lineage.Gate`).

Nothing here knows about the command line, storage or HTTP; errors are data, never
printed. A pack that fails to load raises `PackError`.

The HTTP service calls it as the CLI does, with the request body and the stored record:

    run = assess([Body(body_bytes, "json" | "yaml" | "jsonl")], packs=active_overlays,
                 references=lambda ids: stored_reference_info(ids))
    if run.rejected:  # all or nothing: 422, one {"file": "body", "path", "message"} each
        ...
    results = [assessment_document(a) for a in run.in_input_order()]

and for a what-if, `engine.whatif.what_if(run, edits, model)` on the run of the model's
document (given, or its stored evidence as a JSON body).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engine.assess import Assessment, ReferenceInfo, assess_document, evaluator_for, vocabulary
from engine.errors import AssessmentError, InputError
from engine.evaluator import Budget, Evaluator
from engine.evidence import LoadedDocument, load_evidence
from engine.evidence_reading import Body, Source
from engine.lineage import Gate, Links

__all__ = ["AssessmentRun", "Body", "Budget", "ReferenceInfo", "References", "assess",
           "assess_documents"]

# Reference info for models named but not in the input: a mapping, or a function given
# the ids it is asked for that returns what it knows of them.
References = Mapping[str, ReferenceInfo] | Callable[[Collection[str]], Mapping[str,
                                                                                ReferenceInfo]]


@dataclass
class AssessmentRun:
    """What one `assess` call produced.

    `assessments`: every model assessed, sorted by model id, each with its derivation;
    `rejected`: every problem, sorted: the input's own (`load_errors`) and the models that
    could not be assessed (a failed assessment, or a reference to a model that could not
    be assessed); `models`: the ids of the accepted documents in load order;
    `documents`: those documents, each with its raw data (`raw`), unless the run was
    made without `keep_inputs`. `single` says whether the input was one model document
    (not a portfolio, a directory or several sources): a JSON caller prints an object
    then, not an array.
    """

    evaluator: Evaluator
    assessments: list[Assessment]
    rejected: list[InputError]
    load_errors: list[InputError] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    documents: list[LoadedDocument] = field(default_factory=list)
    single: bool = False
    references: References | None = None

    def in_input_order(self) -> list[Assessment]:
        """The assessments in the order their documents came in (a service answers a
        request's portfolio in its own order)."""
        done = {a.model: a for a in self.assessments}
        return [done[m] for m in self.models if m in done]

    def assessment(self, model: str) -> Assessment | None:
        """The assessment of `model`, if it was assessed."""
        return next((a for a in self.assessments if a.model == model), None)

    def raw(self, model: str) -> object:
        """The raw data (as parsed, before validation) of `model`'s document."""
        for loaded in self.documents:
            if loaded.document.model.id == model:
                return loaded.raw
        raise KeyError(model if self.documents or not self.models
                       else f"{model}: the run was made without keep_inputs")


def assess(sources: Sequence[Source], packs: Sequence[str | Path] = (), *,
           evaluator: Evaluator | None = None, stdin: TextIO | None = None,
           references: References | None = None, keep_inputs: bool = True,
           budget: Budget | None = None) -> AssessmentRun:
    """Load the pack stack (the built-in pack with `packs` over it, or `evaluator` when
    given: a pack compiled by the caller), load and validate the evidence in `sources`
    (paths, `-` read from `stdin`, or `Body`s), and assess every accepted model in
    lineage order. Without `keep_inputs` the run does not hold on to the documents and
    their raw data: a caller that only reads the results (`asl assess` of a large
    portfolio) saves that memory; a what-if needs them. `budget`: the most work each
    assessment may do (by default `engine.assess.default_budget()`, which `ASL_BUDGET`
    sets); a model past it is rejected, naming the rule that exploded."""
    if evaluator is not None and packs:
        raise ValueError("give the pack stack as packs or as a compiled evaluator, not both")
    evaluator = evaluator if evaluator is not None else evaluator_for(packs)
    loaded = load_evidence(sources, vocabulary(evaluator.pack), stdin=stdin,
                           keep_raw=keep_inputs)
    assessments, failed = assess_documents(evaluator, loaded.documents, loaded.errors,
                                           references, budget)
    single = (len(sources) == 1 and len(loaded.documents) == 1
              and loaded.documents[0].where == ""
              and (isinstance(sources[0], Body) or not Path(sources[0]).is_dir()))
    return AssessmentRun(evaluator, assessments, sorted([*loaded.errors, *failed]),
                         loaded.errors, [d.document.model.id for d in loaded.documents],
                         loaded.documents if keep_inputs else [], single, references)


def assess_documents(evaluator: Evaluator, documents: Sequence[LoadedDocument],
                     rejected: Sequence[InputError] = (),
                     references: References | None = None, budget: Budget | None = None
                     ) -> tuple[list[Assessment], list[InputError]]:
    """Assess validated documents as one portfolio, each after the models it references,
    so a model takes its reference's compute and determination from the portfolio (or
    from `references` for a model outside it). `rejected` are the input's problems: a
    model referencing one they rejected is not assessed. Returns the assessments sorted
    by model id, and the models that could not be assessed (one error each)."""
    by_id = {d.document.model.id: d for d in documents}
    gate = Gate((Links.of(d.document.model, d.file, d.where) for d in documents), rejected)
    outside = _lookup(references, gate.outside())
    results: dict[str, Assessment] = {}
    errors: list[InputError] = []
    for model in gate.order():
        loaded = by_id[model]
        problem = gate.stop(model)
        if problem is not None:
            errors.append(problem)
            continue
        lca = loaded.document.model.last_comprehensive_assessment
        ref = None
        if lca is not None and lca.model in results:
            ref = ReferenceInfo(by_id[lca.model].document.model.effective_compute_flop,
                                results[lca.model].output["level"])
        elif lca is not None:
            ref = outside.get(lca.model)
        try:
            results[model] = assess_document(evaluator, loaded.document, ref,
                                             where=loaded.where, file=loaded.file,
                                             budget=budget)
        except AssessmentError as exc:
            failure = InputError(loaded.file, loaded.where, f"assessment failed: {exc}", model)
            errors.append(failure)
            gate.failed(failure)
    return [results[m] for m in sorted(results)], errors


def stopped_by(documents: Sequence[LoadedDocument], rejected: Sequence[InputError]
               ) -> list[InputError]:
    """The models of a portfolio that `rejected` stops (each references, transitively, a
    model that could not be assessed), found without assessing any: for a caller that
    refuses the whole input yet names every model it could not assess."""
    gate = Gate((Links.of(d.document.model, d.file, d.where) for d in documents), rejected)
    return [problem for model in gate.order() if (problem := gate.stop(model)) is not None]


def _lookup(references: References | None, models: Collection[str]
            ) -> Mapping[str, ReferenceInfo]:
    """What `references` knows of `models` (nothing is asked when none is needed)."""
    if references is None or not models:
        return {}
    if callable(references):
        return references(models)
    return {m: references[m] for m in models if m in references}
