"""Run a pack's YAML test cases: a model document in, expected conclusions out.

A case file (`tests/*.yaml` beside a pack's rules) holds `cases:`, each with
- `name`: what the case shows;
- `rules`: the ids of the rules the case exercises (each must fire in it);
- `model`: a model document in the evidence format;
- `expect`: conclusions that must be derived, as `{KIND: {FIELD: VALUE, ...}}` (the
  listed fields must match; others may be anything);
- `absent` (optional): conclusions that must not be derived, in the same form;
- `output` (optional): contract keys of the assessment output that must be equal.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from engine.assess import assess_document, vocabulary
from engine.errors import AssessmentError
from engine.evaluator import Evaluator, Fact, RuleFired
from engine.evidence import parse_document

CASE_KEYS = {"name", "rules", "model", "expect", "absent", "output"}


@dataclass
class CaseResult:
    """The outcome of one case: its failures (empty when it passed) and the rules that
    fired in it (for coverage)."""

    file: str
    name: str
    failures: list[str] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return not self.failures


def _matches(fact: Fact, kind: str, wanted: dict[str, Any]) -> bool:
    return fact.kind == kind and all(fact.values.get(k) == v for k, v in wanted.items())


def _patterns(entries: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(entries, list):
        raise ValueError(f"{where} must be a list of {{KIND: {{FIELD: VALUE}}}}")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"{where}: each entry is one {{KIND: {{FIELD: VALUE}}}}")
        (kind, values), = entry.items()
        out.append((str(kind), dict(values or {})))
    return out


def run_case(evaluator: Evaluator, case: dict[str, Any], file: str) -> CaseResult:
    """Assess the case's model and compare what was derived with what it expects."""
    name = str(case.get("name", "(unnamed)"))
    result = CaseResult(file, name)
    unknown = set(case) - CASE_KEYS
    if unknown:
        result.failures.append(f"unknown case key(s): {', '.join(sorted(unknown))}")
        return result
    doc, errors = parse_document(case.get("model"), file, f"case {name!r}.model",
                                 vocabulary(evaluator.pack))
    if doc is None:
        result.failures.extend(str(e) for e in errors)
        return result
    fired: set[str] = set()

    def listen(event: object) -> None:
        if isinstance(event, RuleFired):
            fired.add(event.firing.rule.id)

    try:
        expect = _patterns(case.get("expect", []), "expect")
        absent = _patterns(case.get("absent", []), "absent")
        assessment = assess_document(evaluator, doc, listeners=[listen])
    except (ValueError, AssessmentError) as exc:
        result.failures.append(str(exc))
        return result
    result.fired = fired
    facts = list(assessment.derivation.facts.values())
    for kind, wanted in expect:
        if not any(_matches(f, kind, wanted) for f in facts):
            found = sorted(f.id for f in facts if f.kind == kind)
            result.failures.append(f"expected {kind} {wanted}; derived {kind}: "
                                   f"{', '.join(found) or 'none'}")
    for kind, wanted in absent:
        for fact in facts:
            if _matches(fact, kind, wanted):
                result.failures.append(f"did not expect {fact.id}")
    for key, value in (case.get("output") or {}).items():
        actual = assessment.output.get(key)
        if actual != value:
            result.failures.append(f"output {key}: expected {value!r}, got {actual!r}")
    for rule_id in case.get("rules") or []:
        if rule_id not in fired:
            result.failures.append(f"rule {rule_id} did not fire")
    return result


def run_cases(evaluator: Evaluator, packs: Collection[str] | None = None) -> list[CaseResult]:
    """Every case of every case file of the evaluator's pack, or only of the case files
    of the packs named in `packs` (an overlay's own cases, run on the overlaid pack)."""
    return [run_case(evaluator, case, cf.path) for cf in evaluator.pack.case_files
            if packs is None or cf.pack in packs for case in cf.cases]
