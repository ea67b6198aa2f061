"""Translate a checked pack into rules the matcher runs, in a neutral form.

The compiler decides what each rule tests and when it may fire; how a matcher spells
that is its adapter's business (`engine.durable_adapter`, the only module that knows
durable-rules' syntax). A compiled rule is a list of patterns, each a kind of fact and
the tests a fact must pass (`Compare`, `Exists`, `OneOf`, and `BoundIsSet`, the guard
before a comparison with a field an earlier fact may leave unset), in the order the
rule states them.

durable-rules fires a `none(...)` pattern as soon as the positive part matches, even if
the negated fact arrives later in the same batch. So every rule with a negation starts
with a *gate* pattern, a `__stratum` fact for its stratum, which the evaluator asserts
only when every lower stratum has reached its fixpoint: when the gate opens, the negated
kinds are complete, whatever order their facts came in. Rules without negation are
monotonic and need no gate, except those that read only pack facts: pack facts stay in
a reused session between assessments, so such a rule needs the per-assessment gate to
fire again for each one.

Each test means what the operator table says (`engine.operators`); "an unset side
passes nothing" is made explicit: a comparison with another field of the same fact that
may be unset is preceded by `Exists(field)`, one with a field of an earlier-bound fact
that may be unset by `BoundIsSet(alias, field)`. Facts of kinds that may leave a field
unset are evidence, and pack facts of which one omits it (`optional_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.model import ORIGIN_EVIDENCE, ORIGIN_PACK, Condition, Operand, Pack, Rule, Test

GATE_KIND = "__stratum"
GATE_ALIAS = "gate"


@dataclass(frozen=True)
class Const:
    """A constant operand."""

    value: Any


@dataclass(frozen=True)
class FieldOf:
    """Another field of the fact under test (`{field: threshold_score}`)."""

    field: str


@dataclass(frozen=True)
class BoundField:
    """A field of the fact an earlier pattern bound (`{ref: s.capability}`)."""

    alias: str
    field: str


@dataclass(frozen=True)
class Compare:
    """`field OP operand`, OP one of the operator table's comparisons (eq, ne, gt, gte,
    lt, lte)."""

    field: str
    op: str
    operand: Const | FieldOf | BoundField


@dataclass(frozen=True)
class Exists:
    """The field is set (`present`) or unset."""

    field: str
    present: bool = True


@dataclass(frozen=True)
class OneOf:
    """The field equals one of `values`."""

    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class BoundIsSet:
    """The fact bound to `alias` sets `field`: the guard before comparing with it."""

    alias: str
    field: str


NeutralTest = Compare | Exists | OneOf | BoundIsSet


@dataclass(frozen=True)
class Pattern:
    """One pattern of a rule: a fact of `kind` passing `tests` must exist (bound to
    `alias`), or, when `negated`, must not."""

    alias: str
    kind: str
    tests: tuple[NeutralTest, ...]
    negated: bool = False


@dataclass(frozen=True)
class CompiledRule:
    """A rule as the matcher runs it: its patterns, all of which must hold."""

    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class CompiledPack:
    """The pack as matcher rules, with what the evaluator needs to drive them: which
    rule each compiled rule name stands for, how the patterns' aliases map back to the
    rule's names, the strata whose gates must be opened in order, and the kinds some
    rule reads (only those are worth asserting)."""

    rules: dict[str, Rule]  # compiled rule name -> rule
    compiled: dict[str, CompiledRule]  # compiled rule name -> its patterns
    bindings: dict[str, dict[str, str]]  # compiled rule name -> alias -> rule name
    stratum: dict[str, int]  # rule id -> stratum
    gates: tuple[int, ...]  # strata that have gated (negating) rules, ascending
    consumed: frozenset[str]


def optional_fields(pack: Pack) -> dict[str, frozenset[str]]:
    """The fields a fact of each kind may leave unset: any of an evidence kind's, those
    a pack fact of a pack kind omits; never a derived kind's (a conclusion gives every
    field a value, or the rule fails)."""
    optional: dict[str, frozenset[str]] = {}
    for kind in pack.kinds.values():
        if kind.origin == ORIGIN_EVIDENCE:
            optional[kind.name] = frozenset(kind.fields)
        elif kind.origin == ORIGIN_PACK:
            optional[kind.name] = frozenset(
                f for fact in pack.facts if fact.kind == kind.name for f in kind.fields
                if fact.values.get(f) is None)
    return {k: v for k, v in optional.items() if v}


def compile_pack(pack: Pack) -> CompiledPack:
    """Compile every rule of `pack`; compiled rule names are positional, so stable."""
    compiled: dict[str, CompiledRule] = {}
    names: dict[str, Rule] = {}
    bindings: dict[str, dict[str, str]] = {}
    stratum: dict[str, int] = {}
    by_id = {r.id: r for r in pack.rules}
    gates: set[int] = set()
    pack_kinds = {k.name for k in pack.kinds.values() if k.origin == ORIGIN_PACK}
    optional = optional_fields(pack)
    for level, rule_ids in enumerate(pack.strata):
        for position, rule_id in enumerate(rule_ids):
            rule = by_id[rule_id]
            name = f"r{level}_{position}"
            # Negating rules wait for their stratum's gate; so do rules that read only
            # pack facts, which stay asserted between assessments (see engine.evaluator).
            gated = bool(rule.negates) or rule.consumes <= pack_kinds
            compiled[name], bindings[name] = compile_rule(rule, level if gated else None,
                                                          optional)
            names[name] = rule
            stratum[rule_id] = level
            if gated:
                gates.add(level)
    consumed = frozenset().union(*(r.consumes | r.negates for r in pack.rules))
    return CompiledPack(names, compiled, bindings, stratum, tuple(sorted(gates)), consumed)


def gate_fact(level: int) -> dict[str, Any]:
    """The fact that opens stratum `level`'s negating rules."""
    return {"id": f"{GATE_KIND}:{level}", "kind": GATE_KIND, "level": level}


def compile_rule(rule: Rule, gate: int | None = None,
                 optional: Mapping[str, frozenset[str]] | None = None
                 ) -> tuple[CompiledRule, dict[str, str]]:
    """A rule's `when` as patterns (behind its stratum's gate when it negates), and the
    map from the patterns' aliases back to the rule's own names. `optional`: the fields
    each kind's facts may leave unset (`optional_fields`)."""
    optional = optional or {}
    bound_kind = {c.name: c.kind for c in rule.conditions if not c.negated}
    aliases: dict[str, str] = {}
    patterns: list[Pattern] = []
    if gate is not None:
        patterns.append(Pattern(GATE_ALIAS, GATE_KIND,
                                (Compare("level", "eq", Const(gate)),)))
    for position, cond in enumerate(rule.conditions):
        alias = f"n{position}" if cond.negated else f"b{position}"
        patterns.append(Pattern(alias, cond.kind,
                                _tests(cond, aliases, bound_kind, optional), cond.negated))
        if not cond.negated:
            aliases[cond.name] = alias
    return CompiledRule(tuple(patterns)), {v: k for k, v in aliases.items()}


def _tests(cond: Condition, aliases: dict[str, str], bound_kind: dict[str, str],
           optional: Mapping[str, frozenset[str]]) -> tuple[NeutralTest, ...]:
    """A condition's tests, each comparison with a field that may be unset preceded by
    the test that it is set (the operator table's "an unset side passes nothing")."""
    tests: list[NeutralTest] = []
    for test in cond.tests:
        ref, same = test.operand.ref, test.operand.field
        if ref is not None and ref[1] in optional.get(bound_kind[ref[0]], ()):
            tests.append(BoundIsSet(aliases[ref[0]], ref[1]))
        elif same is not None and same in optional.get(cond.kind, ()):
            tests.append(Exists(same))
        tests.append(_test(test, aliases))
    return tuple(tests)


def _test(test: Test, aliases: dict[str, str]) -> NeutralTest:
    if test.op == "exists":
        return Exists(test.field, bool(test.operand.constant))
    if test.op == "in":
        return OneOf(test.field, tuple(test.operand.constant))
    return Compare(test.field, test.op, _operand(test.operand, aliases))


def _operand(operand: Operand, aliases: dict[str, str]) -> Const | FieldOf | BoundField:
    if operand.field is not None:
        return FieldOf(operand.field)
    if operand.ref is not None:
        return BoundField(aliases[operand.ref[0]], operand.ref[1])
    return Const(operand.constant)
