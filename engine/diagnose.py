"""Why a rule did not fire: its conditions evaluated generically against an assessment.

This reads the pack's own `Rule`/`Condition`/`Test` data and the facts of one
`Derivation` (every given, pack and derived fact), and joins them the way the Rete
network does: condition by condition, in order, each positive condition binding one
fact, each negated one requiring that no fact pass its tests. Where the join stops, it
records a `ConditionFailure` per failed test (the fact tried, its actual value, the
value required, and the numeric gap when both are numbers), or per fact that blocks a
negation. Nothing here knows the policy: the same code explains any pack.

The join follows durable-rules 2.0.28 exactly where it matters, and `check_rule` proves
it on every assessment it is given: a fact is used at most once per match (it cannot
bind two conditions, nor block a negation of the match it is part of); each test is
judged by the operator table (`engine.operators.holds`), which the compiled rules obey: a
test on an unset field (or an operand naming one) is false, except `exists: false`, and
values of different types are never equal. Negations are read against the final facts,
which is what the engine's strata guarantee they see.

`Want` is a fact wanted but absent (a kind and constant tests on it); `producers` finds
the rules whose `then` could conclude it, turning its tests into extra tests on the
facts those rules bind (`value == proceed` on `c` for `decision: {value: {ref:
c.value}}`), and `diagnose` explains each one, going down to the producers of a derived
fact a failed condition needed, a bounded number of levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.constraints import Domains, by_field, field_domains, satisfiable
from engine.evaluator import Derivation, Fact, Firing
from engine.facts_id import render_value
from engine.model import ORIGIN_DERIVED, Kind, Operand, Pack, Rule, Test

# Re-exported: `NEGATED_OP` for explanations; every test is judged by the operator table.
from engine.operators import MIRRORED_OP, holds
from engine.operators import NEGATED_OP as NEGATED_OP
from engine.ruletext import test_text

NO_FACT = "no_fact"  # no fact of the condition's kind is left to try
FAILED_TEST = "failed_test"  # the closest fact failed this test
BLOCKED = "blocked"  # a negated condition: this fact exists and passes its tests

MAX_DEPTH = 3  # levels of rules `diagnose` shows, the target's producers being the first
MAX_PARTIALS = 4  # best partial matches kept per rule
MAX_STEPS = 100_000  # join steps per rule before the search is cut short

Binding = tuple[tuple[str, str], ...]  # (the rule's name for a fact, fact id), in order


@dataclass(frozen=True)
class ConditionFailure:
    """One reason a rule's join stopped at a condition: a test the closest fact failed
    (FAILED_TEST), no fact of the kind at all (NO_FACT), or a fact blocking a negated
    condition (BLOCKED). `binding` holds the facts the earlier conditions matched."""

    rule: str
    condition_index: int
    binding: Binding
    reason: str
    fact: str | None = None
    test: Test | None = None
    actual: Any = None
    required: Any = None
    gap: float | None = None  # actual - required, when both are numbers
    from_target: bool = False  # the test was added by the wanted conclusion, not the rule


@dataclass(frozen=True)
class Added:
    """A test a wanted conclusion adds to one of a rule's conditions. `key` marks a test
    on a field naming *which* fact is wanted (the capability of a status), rather than
    the value wanted of it: like a join test, it decides which facts are close."""

    condition: int
    test: Test
    key: bool = False


Extra = tuple[Added, ...]


@dataclass(frozen=True)
class PartialMatch:
    """A binding of the first `satisfied` conditions and why the next one failed."""

    binding: Binding
    satisfied: int
    failures: tuple[ConditionFailure, ...]
    closeness: tuple[int, ...]  # (key, wanted, join, all) tests the tried fact passed


@dataclass(frozen=True)
class Want:
    """A fact wanted: one of `kind` passing every test (all operands constants); the
    tests on `key` fields say which fact, the others what it should be."""

    kind: str
    tests: tuple[Test, ...]
    key: frozenset[str] = frozenset()

    def ident(self) -> tuple[Any, ...]:
        return (self.kind, tuple((t.field, t.op, repr(t.operand.constant)) for t in self.tests))

    def text(self) -> str:
        """`decision with value == proceed`."""
        if not self.tests:
            return f"a {self.kind}"
        return f"{self.kind} with " + ", ".join(test_text(t) for t in self.tests)


@dataclass(frozen=True)
class Inconsistency:
    """The engine and this module disagree about a rule: a binding matches every
    condition here but the rule did not fire with it, or the reverse."""

    rule: str
    binding: Binding
    message: str


@dataclass
class RuleDiagnosis:
    """How far a rule got towards concluding a wanted fact, and why it stopped."""

    rule: Rule
    extra: Extra
    full: tuple[Binding, ...]  # bindings passing every condition and every extra test
    best: tuple[PartialMatch, ...]  # partial matches reaching furthest (at most MAX_PARTIALS)
    omitted: int  # further partial matches as good as those kept
    truncated: bool
    inconsistencies: tuple[Inconsistency, ...]
    below: list[WantDiagnosis] = field(default_factory=list)


@dataclass
class WantDiagnosis:
    """The rules that could conclude a wanted fact, each diagnosed; `repeated` when the
    same want was explained higher up the tree."""

    want: Want
    depth: int
    present: tuple[str, ...]
    rules: list[RuleDiagnosis]
    repeated: bool = False
    never: list[tuple[Rule, str]] = field(default_factory=list)  # its kind, never it


def field_value(fact: Fact, name: str, kinds: Mapping[str, Kind]) -> Any:
    """A fact's field as durable-rules sees it (`Fact.wire`): undeclared fields and
    unset ones are None; `id` is the fact's id."""
    if name == "id":
        return fact.id
    kind = kinds.get(fact.kind)
    if kind is not None and name not in kind.fields:
        return None
    return fact.values.get(name)


def operand_value(operand: Operand, fact: Fact, bound: Mapping[str, Fact],
                  kinds: Mapping[str, Kind]) -> Any:
    """The value a test compares with: a constant, a field of `fact`, or a field of a
    fact bound earlier (None when unbound or unset)."""
    if operand.field is not None:
        return field_value(fact, operand.field, kinds)
    if operand.ref is not None:
        other = bound.get(operand.ref[0])
        return None if other is None else field_value(other, operand.ref[1], kinds)
    return operand.constant


def gap(actual: Any, required: Any) -> float | None:
    """`actual - required` when both are numbers (rounded off float noise), else None."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, required)):
        return round(float(actual) - float(required), 12)
    return None


@dataclass(frozen=True)
class TestOutcome:
    """A test tried on one fact: whether it held, with both sides' values."""

    test: Test
    held: bool
    actual: Any
    required: Any
    from_target: bool = False


def try_test(test: Test, fact: Fact, bound: Mapping[str, Fact], kinds: Mapping[str, Kind],
             from_target: bool = False) -> TestOutcome:
    """Evaluate one test on `fact`, with `bound` naming the facts matched before it."""
    actual = field_value(fact, test.field, kinds)
    required = operand_value(test.operand, fact, bound, kinds)
    return TestOutcome(test, holds(test.op, actual, required), actual, required, from_target)


def match_rule(rule: Rule, derivation: Derivation, kinds: Mapping[str, Kind],
               extra: Extra = (), check: bool = True) -> RuleDiagnosis:
    """Join `rule`'s conditions (plus `extra` tests) over the derivation's facts.

    Where no fact passes a positive condition, the closest are those passing the most
    `key` tests of the wanted conclusion, then the most tests it added, then the most
    join tests (`ref` tests on earlier matches), then the most tests of all: the fact
    about the right capability with the wanted value, failing the rule's own test,
    rather than a fact with the right value about another capability."""
    added: dict[int, list[Added]] = {}
    for item in extra:
        added.setdefault(item.condition, []).append(item)
    full: list[Binding] = []
    partials: list[PartialMatch] = []
    steps = 0
    truncated = False

    def walk(index: int, bound: dict[str, Fact], order: Binding) -> None:
        nonlocal steps, truncated
        if index == len(rule.conditions):
            full.append(order)
            return
        steps += 1
        if steps > MAX_STEPS:
            truncated = True
            return
        cond = rule.conditions[index]
        # An extra `id ==` test pins the condition to one fact: it filters, so the
        # closest candidates are never other facts failing only on their id.
        pins = {a.test.operand.constant for a in added.get(index, []) if _pin(a.test)}
        own = [Added(index, t) for t in cond.tests]
        tried_tests = own + [a for a in added.get(index, []) if not _pin(a.test)]
        tests = [(a.test, i >= len(own)) for i, a in enumerate(tried_tests)]
        used = {f.id for f in bound.values()}
        candidates = [f for f in derivation.of_kind(cond.kind) if f.id not in used
                      and all(f.id == pin for pin in pins)]
        if cond.negated:
            blockers = [f for f in candidates
                        if all(try_test(t, f, bound, kinds, x).held for t, x in tests)]
            if not blockers:
                walk(index + 1, bound, order)
                return
            partials.append(PartialMatch(order, index, tuple(
                ConditionFailure(rule.id, index, order, BLOCKED, f.id) for f in blockers),
                (0, 0, 0, -len(blockers))))
            return
        tried: list[tuple[Fact, list[TestOutcome]]] = []
        matched = False
        for candidate in candidates:
            outcomes = [try_test(t, candidate, bound, kinds, x) for t, x in tests]
            if all(o.held for o in outcomes):
                matched = True
                walk(index + 1, {**bound, cond.name: candidate},
                     (*order, (cond.name, candidate.id)))
            else:
                tried.append((candidate, outcomes))
        if matched:
            return
        if not tried:
            partials.append(PartialMatch(order, index, (
                ConditionFailure(rule.id, index, order, NO_FACT),), (-1, -1, -1, -1)))
            return

        def closeness(outcomes: list[TestOutcome]) -> tuple[int, ...]:
            return (sum(o.held for o, a in zip(outcomes, tried_tests, strict=True) if a.key),
                    sum(o.held for o in outcomes if o.from_target),
                    sum(o.held for o in outcomes if o.test.operand.ref is not None
                        and not o.from_target),
                    sum(o.held for o in outcomes))

        best = max(closeness(outcomes) for _, outcomes in tried)
        for candidate, outcomes in tried:
            if closeness(outcomes) == best:
                partials.append(PartialMatch(order, index, tuple(
                    ConditionFailure(rule.id, index, order, FAILED_TEST, candidate.id, o.test,
                                     o.actual, o.required, gap(o.actual, o.required),
                                     o.from_target)
                    for o in outcomes if not o.held), best))

    walk(0, {}, ())
    best: list[PartialMatch] = []
    if partials and not full:
        top = max((p.satisfied, p.closeness) for p in partials)
        best = [p for p in partials if (p.satisfied, p.closeness) == top]
    return RuleDiagnosis(rule, extra, tuple(full), tuple(best[:MAX_PARTIALS]),
                         max(0, len(best) - MAX_PARTIALS), truncated,
                         check_rule(rule, derivation, kinds) if check else ())


def _pin(test: Test) -> bool:
    return test.field == "id" and test.op == "eq" and test.operand.ref is None \
        and test.operand.field is None


def fired_bindings(rule: Rule, derivation: Derivation) -> set[tuple[tuple[str, str], ...]]:
    """The bindings the engine fired `rule` with, each sorted by name."""
    return {tuple(sorted(f.matched)) for f in derivation.firings.values()
            if f.rule.id == rule.id}


def check_rule(rule: Rule, derivation: Derivation, kinds: Mapping[str, Kind]
               ) -> tuple[Inconsistency, ...]:
    """Every binding that matches `rule` here must be one durable-rules fired it with,
    and every firing must match here; anything else is an engine inconsistency."""
    fired = fired_bindings(rule, derivation)
    mine = {tuple(sorted(b)) for b in match_rule(rule, derivation, kinds, check=False).full}
    found = [Inconsistency(rule.id, b, "matches every condition but did not fire")
             for b in sorted(mine - fired)]
    found += [Inconsistency(rule.id, b, "fired, but does not match its conditions")
              for b in sorted(fired - mine)]
    return tuple(found)


def check_derivation(pack: Pack, derivation: Derivation) -> list[Inconsistency]:
    """`check_rule` for every rule of the pack."""
    return [i for rule in pack.rules for i in check_rule(rule, derivation, pack.kinds)]


def firing_outcomes(firing: Firing, kinds: Mapping[str, Kind]
                    ) -> list[tuple[int, str, TestOutcome]]:
    """Each test of a firing's positive conditions on the fact it matched: (condition
    index, fact id, outcome). Every one held, or the rule would not have fired."""
    out = []
    bound: dict[str, Fact] = {}
    for index, cond in enumerate(firing.rule.conditions):
        if cond.negated or cond.name not in firing.bound:
            continue
        fact = firing.bound[cond.name]
        out += [(index, fact.id, try_test(t, fact, bound, kinds)) for t in cond.tests]
        bound[cond.name] = fact
    return out


def satisfies(want: Want, fact: Fact, kinds: Mapping[str, Kind]) -> bool:
    """Whether `fact` is a fact `want` asks for."""
    return fact.kind == want.kind and all(try_test(t, fact, {}, kinds).held
                                          for t in want.tests)


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
