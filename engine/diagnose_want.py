"""Why a wanted fact is absent: the rules that could conclude it, each diagnosed.

`engine.diagnose` explains one rule against one assessment; this goes from a `Want` (a
kind and constant tests on it) to the rules whose `then` could conclude it.
`producers` turns the want's tests into extra tests on the facts those rules bind
(`value == proceed` on `c` for `decision: {value: {ref: c.value}}`), and `diagnose`
explains each one with `engine.diagnose.match_rule`, going down to the producers of a
derived fact a failed condition needed, `MAX_DEPTH` levels at most. Nothing here knows
the policy: the same code explains any pack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.constraints import Domains, by_field, field_domains, satisfiable
from engine.diagnose import (
    FAILED_TEST,
    MAX_DEPTH,
    Added,
    Binding,
    ConditionFailure,
    Extra,
    PartialMatch,
    Want,
    WantDiagnosis,
    field_value,
    match_rule,
    satisfies,
)
from engine.evaluator import Derivation
from engine.facts_id import render_value
from engine.model import ORIGIN_DERIVED, Kind, Operand, Pack, Rule, Test
from engine.operators import MIRRORED_OP, holds
from engine.ruletext import test_text


def producers(pack: Pack, want: Want
              ) -> tuple[list[tuple[Rule, Extra]], list[tuple[Rule, str]]]:
    """The rules that could conclude `want`, and those that conclude its kind but never
    it (with the reason). A producer is a rule with a `then` of the kind whose
    constants pass the want's tests, the want's tests on `ref` fields turned into tests
    on the condition binding that name. A `then` that leaves a tested field unset cannot
    conclude it, nor can a rule whose own constant tests on a field, with those added,
    no value of the field's domain passes (`value == proceed` on a decision_candidate,
    which is only ever pause, restrict_deployment or assessment_required):
    `engine.constraints` decides, as it does for `asl rules validate`."""
    found: list[tuple[Rule, Extra]] = []
    never: list[tuple[Rule, str]] = []
    domains = _domains(pack)
    for rule in pack.rules:
        position = {c.name: i for i, c in enumerate(rule.conditions) if not c.negated}
        reasons = []
        for conclusion in rule.conclusions:
            if conclusion.kind != want.kind:
                continue
            values = dict(conclusion.values)
            extra: list[Added] = []
            reason = None
            for test in want.tests:
                operand = values.get(test.field)
                if operand is not None and operand.ref is not None:
                    name, fname = operand.ref
                    extra.append(Added(position[name], Test(fname, test.op, test.operand,
                                                            test.line), test.field in want.key))
                    continue
                constant = None if operand is None else operand.constant
                if not holds(test.op, constant, test.operand.constant):
                    reason = (f"it concludes {test.field}="
                              f"{'(unset)' if constant is None else render_value(constant)}")
                    break
            if reason is None:
                reason = _impossible(rule, extra, domains)
            if reason is None:
                if (rule, tuple(extra)) not in found:
                    found.append((rule, tuple(extra)))
            else:
                reasons.append(reason)
        if reasons and not any(r is rule for r, _ in found):
            never.append((rule, reasons[0]))
    return found, never


_DOMAINS: dict[int, tuple[Pack, Domains]] = {}


def _domains(pack: Pack) -> Domains:
    """`field_domains` of a pack, computed once per pack object."""
    cached = _DOMAINS.get(id(pack))
    if cached is None or cached[0] is not pack:
        cached = (pack, field_domains(pack))
        _DOMAINS[id(pack)] = cached
    return cached[1]


def _impossible(rule: Rule, extra: list[Added], domains: Domains) -> str | None:
    """Why a condition's constant tests, with those `extra` adds, can never all hold
    (`no decision_candidate.value passes value == proceed`), or None when they can."""
    for index in sorted({a.condition for a in extra}):
        cond = rule.conditions[index]
        tests = [*cond.tests, *(a.test for a in extra if a.condition == index)]
        for fname, group in by_field(tests).items():
            if not satisfiable(group, domains.get((cond.kind, fname))):
                return (f"no {cond.kind}.{fname} passes "
                        + ", ".join(test_text(t) for t in group))
    return None


def resolve(rule: Rule, index: int, extra: Extra, binding: Binding,
            derivation: Derivation, kinds: Mapping[str, Kind]) -> Want:
    """What a failed positive condition wanted, with every `ref` replaced by the value
    of the fact bound to it (tests between two fields of the wanted fact are left out).
    The fields so resolved, and those of the key tests added to it, are the want's key."""
    cond = rule.conditions[index]
    bound = {name: derivation.facts[fid] for name, fid in binding}
    tests: list[Test] = []
    key = {a.test.field for a in extra if a.condition == index and a.key}
    for test in [*cond.tests, *(a.test for a in extra if a.condition == index)]:
        if test.operand.field is not None:
            continue
        if test.operand.ref is not None:
            key.add(test.field)
            other = bound.get(test.operand.ref[0])
            value = None if other is None else field_value(other, test.operand.ref[1], kinds)
            if value is None:
                continue
            test = Test(test.field, test.op, Operand(constant=value), test.line)
        if test not in tests:
            tests.append(test)
    pinned = {t.field: t.operand.constant for t in tests if t.op == "eq"}
    tests = [t for t in tests if t.op == "eq" or t.field not in pinned
             or not holds(t.op, pinned[t.field], t.operand.constant)]
    return Want(cond.kind, tuple(tests), frozenset(key))


def reverse(rule: Rule, partial: PartialMatch, derivation: Derivation,
            kinds: Mapping[str, Kind]) -> list[Want]:
    """The earlier match a failed join test needed instead. When the closest fact
    passed every test the wanted conclusion added but failed `standard == n.name`
    (being asl3-deployment), the fact wanted is an `n` with `name == asl3-deployment`
    (and the constant tests of `n`'s condition): the join bound the wrong one because
    the right one is absent."""
    if any(f.from_target for f in partial.failures):
        return []
    position = {c.name: i for i, c in enumerate(rule.conditions) if not c.negated}
    wants = []
    for failure in partial.failures:
        test = failure.test
        if (failure.reason != FAILED_TEST or test is None or test.operand.ref is None
                or failure.actual is None or test.op not in MIRRORED_OP):
            continue
        name, fname = test.operand.ref
        earlier = rule.conditions[position[name]]
        tests = [t for t in earlier.tests if t.operand.ref is None and t.operand.field is None
                 and t.field != fname]
        tests.append(Test(fname, MIRRORED_OP[test.op], Operand(constant=failure.actual), test.line))
        wants.append(Want(earlier.kind, tuple(tests), frozenset({fname})))
    return wants


def diagnose(pack: Pack, derivation: Derivation, want: Want, depth: int = 1,
             max_depth: int = MAX_DEPTH, seen: set[tuple[Any, ...]] | None = None
             ) -> WantDiagnosis:
    """Why no fact satisfies `want`: each producing rule's best partial matches and,
    where a failed condition needed a derived fact, why that fact is absent in turn
    (down to `max_depth` levels of rules; a want already explained is not repeated)."""
    seen = set() if seen is None else seen
    kinds = pack.kinds
    present = tuple(f.id for f in derivation.of_kind(want.kind) if satisfies(want, f, kinds))
    if want.ident() in seen:
        return WantDiagnosis(want, depth, present, [], repeated=True)
    seen.add(want.ident())
    out = WantDiagnosis(want, depth, present, [])
    if present:
        return out
    candidates, out.never = producers(pack, want)
    for rule, extra in candidates:
        diagnosis = match_rule(rule, derivation, kinds, extra)
        out.rules.append(diagnosis)
        if depth >= max_depth:
            continue
        below: dict[tuple[Any, ...], Want] = {}
        for partial in diagnosis.best:
            cond = rule.conditions[partial.satisfied]
            subs = [] if cond.negated else [
                resolve(rule, partial.satisfied, extra, partial.binding, derivation, kinds)]
            subs += reverse(rule, partial, derivation, kinds)
            for sub in subs:
                kind = kinds.get(sub.kind)
                if kind is not None and kind.origin == ORIGIN_DERIVED:
                    below.setdefault(sub.ident(), sub)
        for sub in below.values():
            diagnosis.below.append(diagnose(pack, derivation, sub, depth + 1, max_depth, seen))
    return out


def all_failures(diagnosis: WantDiagnosis) -> Iterable[ConditionFailure]:
    """Every failure recorded in a diagnosis tree, depth first (for tests and listeners)."""
    for rule in diagnosis.rules:
        for partial in rule.best:
            yield from partial.failures
        for below in rule.below:
            yield from all_failures(below)
