"""Assess one model: a validated evidence document in, its contract result (and the
derivation behind it) out.

It turns a model document into facts, runs the pack, and reads the contract keys of
assessment-output.md off the conclusions; `evaluator_for` prepares each pack stack once
per process. Portfolios, and everything from paths or request bodies to results, go
through the front door, `engine.api`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import AssessmentError
from engine.evaluator import Budget, Derivation, Evaluator, Fact, Listener
from engine.evidence_schema import ModelDocument, Vocabulary
from engine.framework import OutputKey, builtin_names
from engine.loader import load_pack, pack_stack
from engine.model import ORIGIN_EVIDENCE, ORIGIN_PACK, Pack
from engine.tuning import GC_FIRST_THRESHOLD as GC_FIRST_THRESHOLD
from engine.tuning import tune_for_throughput as tune_for_throughput

_EVALUATORS: dict[tuple[str, ...], Evaluator] = {}


def evaluator_for(overlays: Sequence[str | Path] = ()) -> Evaluator:
    """The evaluator for the built-in pack with these overlay pack directories loaded
    over it in order (`--pack`; a first overlay saying `standalone: true` replaces the
    built-in), loaded, checked and compiled once per process: prepare once, assess many."""
    dirs = pack_stack(overlays)
    key = tuple(str(p.resolve()) for p in dirs)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = Evaluator(load_pack(dirs))
    return _EVALUATORS[key]


BUDGET_VARIABLE = "ASL_BUDGET"
_BUDGETS: dict[str, Budget] = {}


def default_budget() -> Budget:
    """The budget of each assessment (`Budget`'s defaults), changed for the process by
    the `ASL_BUDGET` variable: `firings=N,facts=N,seconds=S`, any of them. A value
    that is not of that form fails the assessment, naming the variable.

    >>> os.environ["ASL_BUDGET"] = "firings=500, seconds=2.5"
    >>> default_budget()
    Budget(firings=500, facts=20000, seconds=2.5)
    >>> del os.environ["ASL_BUDGET"]
    """
    text = os.environ.get(BUDGET_VARIABLE, "")
    budget = _BUDGETS.get(text)
    if budget is None:
        budget = _BUDGETS[text] = parse_budget(text, BUDGET_VARIABLE)
    return budget


def parse_budget(text: str, where: str = "budget") -> Budget:
    """A budget written `firings=N,facts=N,seconds=S` (any of them; the others keep
    their defaults); `AssessmentError` naming `where` when it is not so written."""
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = (s.strip() for s in part.partition("="))
        try:
            number = float(value) if name == "seconds" else int(value)
        except ValueError:
            number = -1
        if name not in ("firings", "facts", "seconds") or not number > 0:
            raise AssessmentError(f"{where}: {part!r} is not firings=N, facts=N or "
                                  f"seconds=S with a positive number")
        limits[name] = number
    return Budget(**limits)  # type: ignore[arg-type]


def vocabulary(pack: Pack) -> Vocabulary:
    """The capability names and safeguard ids evidence may use with this pack: an
    overlay's capabilities, standards and elements included; and the names other
    built-in frameworks use, for telling evidence written for one of them which to
    use."""
    known = pack.capability_names | pack.safeguard_ids
    elsewhere = tuple((name, framework) for name, framework in builtin_names()
                      if framework != pack.framework and name not in known)
    levels = pack.spec.level.names if "reference" in pack.kinds else None
    return Vocabulary(pack.capability_names, pack.safeguard_ids, pack.framework, elsewhere,
                      levels)


@dataclass(frozen=True)
class ReferenceInfo:
    """What a portfolio knows about a referenced model: its compute and the headline
    level its own assessment concluded (its `level`)."""

    effective_compute_flop: float | None
    level: str | None


@dataclass
class Assessment:
    """One model's assessment: the contract keys, and the derivation they were read from."""

    model: str
    pack: Pack
    derivation: Derivation
    output: dict[str, Any]
    file: str = ""
    input_facts: list[Fact] = field(default_factory=list)


def document_facts(doc: ModelDocument, pack: Pack, ref: ReferenceInfo | None = None,
                   where: str = "") -> list[Fact]:
    """The facts a model document states, in the pack's vocabulary.

    A safeguard entry naming a whole standard gives each of its elements that status, an
    element entry overrides it, and an element not listed at all counts as `absent` (a
    pack default: the policy asks for an affirmative showing)."""
    prefix = f"{where}." if where else ""
    model = doc.model
    facts: list[Fact] = []
    lca = model.last_comprehensive_assessment
    facts.append(Fact(f"model:{model.id}", "model",
                      {"model": model.id, "has_reference": lca is not None}, ORIGIN_EVIDENCE,
                      {"entry": f"{prefix}model", "display_id": model.id,
                       "effective_compute_flop": model.effective_compute_flop}))
    if lca is not None:
        ref_compute = lca.effective_compute_flop
        determination = lca.determination
        info: dict[str, Any] = {"entry": f"{prefix}model.last_comprehensive_assessment",
                                "display_id": f"{model.id}.last_comprehensive_assessment"}
        if ref is not None:
            if ref_compute is None and ref.effective_compute_flop is not None:
                ref_compute = ref.effective_compute_flop
                info["effective_compute_from"] = f"model:{lca.model}"
            if determination is None and ref.level is not None:
                determination = ref.level
                info["determination_from"] = f"assessment of {lca.model}"
        ratio = None
        if ref_compute and model.effective_compute_flop:
            # Both are finite and positive (the evidence format), but their quotient can
            # overflow: past the largest float it is still a ratio of 4 or more, and a
            # fact's number must be finite.
            ratio = min(model.effective_compute_flop / ref_compute, sys.float_info.max)
        info.update(model_compute=model.effective_compute_flop, reference_compute=ref_compute)
        facts.append(Fact(f"model:{model.id}.last_comprehensive_assessment", "reference", {
            "model": lca.model, "months_since": lca.months_since, "compute_ratio": ratio,
            "determination": determination,
            "determination_rank": pack.spec.level.rank(determination),
        }, ORIGIN_EVIDENCE, info))
    for index, ev in enumerate(doc.evaluations):
        warning = ev.warning_score if ev.warning_score is not None else ev.threshold_score
        facts.append(Fact(f"evidence:{ev.id}", "evaluation", {
            "capability": ev.threshold, "purpose": ev.purpose, "score": ev.score,
            "threshold_score": ev.threshold_score, "warning_score": warning,
            "elicitation": ev.elicitation,
        }, ORIGIN_EVIDENCE, _clean({"entry": f"{prefix}evaluations[{index}]", "display_id": ev.id,
                                    "name": ev.name, "source": ev.source, "date": ev.date})))
    for index, finding in enumerate(doc.findings):
        facts.append(Fact(f"evidence:{finding.id}", "finding",
                          {"capability": finding.threshold, "verdict": finding.verdict},
                          ORIGIN_EVIDENCE,
                          _clean({"entry": f"{prefix}findings[{index}]", "display_id": finding.id,
                                  "source": finding.source, "date": finding.date})))
    channels = doc.deployment.channels if doc.deployment else []
    for channel in sorted(set(channels)):
        facts.append(Fact(f"deployment.channels:{channel}", "channel", {"name": channel},
                          ORIGIN_EVIDENCE, {"entry": f"{prefix}deployment.channels",
                                            "display_id": channel}))
    facts.extend(_safeguard_facts(doc, pack, prefix))
    return facts


def _safeguard_facts(doc: ModelDocument, pack: Pack, prefix: str) -> list[Fact]:
    entries = {entry.id: (index, entry) for index, entry in enumerate(doc.safeguards)}
    facts = []
    for standard in pack.standards:
        for element in (standard.id,) if standard.whole else standard.elements:
            found = entries.get(element) or entries.get(standard.id)
            if found is None:
                facts.append(Fact(f"safeguard:{element}", "safeguard", {
                    "element": element, "standard": standard.id, "status": "absent"},
                    ORIGIN_PACK, {"display_id": element,
                                  "title": "not listed: counts as not implemented",
                                  "pack": standard.element_packs.get(element, standard.pack)}))
                continue
            index, entry = found
            facts.append(Fact(f"safeguard:{element}", "safeguard", {
                "element": element, "standard": standard.id, "status": entry.status},
                ORIGIN_EVIDENCE, _clean({"entry": f"{prefix}safeguards[{index}]",
                                         "display_id": element, "listed_as": entry.id,
                                         "evidence": entry.evidence})))
    return facts


def _clean(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if v is not None}


def contract(pack: Pack, derivation: Derivation, model: str) -> dict[str, Any]:
    """The output of assessment-output.md, read off the conclusions as the framework
    says (`pack.spec`): `model`, `pack`, `framework`, `level` and the framework's keys.
    A pack that concludes no value, or two, for a single-valued key fails the
    assessment."""

    def one(kind: str, where: dict[str, Any] | None = None) -> Fact:
        found = [f for f in derivation.of_kind(kind)
                 if all(f.values.get(k) == v for k, v in (where or {}).items())]
        if len(found) != 1:
            raise AssessmentError(f"the pack concluded {len(found)} {kind} facts "
                                  f"{where or ''} for {model}, expected exactly one")
        return found[0]

    def read(key: OutputKey) -> Any:
        if key.many:
            return sorted({f.values[key.field] for f in derivation.of_kind(key.kind)})
        if key.by is None:
            return one(key.kind).values[key.field]
        names = (key.names if key.category is None
                 else sorted(c.name for c in pack.capabilities_of(key.category)))
        # The facts of the kind by their `by` value, in one pass (`one` per name, without
        # reading every fact again for each name).
        by: dict[Any, list[Fact]] = {}
        try:
            for fact in derivation.of_kind(key.kind):
                by.setdefault(fact.values.get(key.by), []).append(fact)
        except TypeError:  # a value that is not a key (a list): compare one by one
            return {name: one(key.kind, {key.by: name}).values[key.field] for name in names}
        out = {}
        for name in names:
            found = by.get(name, [])
            if len(found) != 1:
                raise AssessmentError(f"the pack concluded {len(found)} {key.kind} facts "
                                      f"{ {key.by: name} } for {model}, expected exactly one")
            out[name] = found[0].values[key.field]
        return out

    spec = pack.spec
    headline = spec.level
    keys = {key.key: read(key) for key in spec.keys}
    level = (keys[headline.key] if headline.key is not None
             else one(headline.kind).values[headline.field])
    output: dict[str, Any] = {"model": model, "pack": {"name": pack.name,
                                                       "version": pack.version},
                              "framework": pack.framework, "level": level, **keys}
    return output


def assess_document(evaluator: Evaluator, doc: ModelDocument, ref: ReferenceInfo | None = None,
                    listeners: Iterable[Listener] = (), where: str = "", file: str = "",
                    budget: Budget | None = None) -> Assessment:
    """Assess one model document, within `budget` (by default `default_budget()`)."""
    facts = document_facts(doc, evaluator.pack, ref, where)
    derivation = evaluator.evaluate(facts, listeners, budget=budget or default_budget())
    output = contract(evaluator.pack, derivation, doc.model.id)
    return Assessment(doc.model.id, evaluator.pack, derivation, output, file, facts)
