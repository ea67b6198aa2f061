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

`Want` is a fact wanted but absent (a kind and constant tests on it);
`engine.diagnose_want` finds the rules that could conclude one and explains each with
`match_rule`, a bounded number of levels down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.evaluator import Derivation, Fact, Firing
from engine.model import Kind, Operand, Pack, Rule, Test

# Re-exported: `NEGATED_OP` for explanations; every test is judged by the operator table.
from engine.operators import NEGATED_OP as NEGATED_OP
from engine.operators import holds
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
