"""Translate a checked pack into one durable-rules ruleset definition.

durable-rules fires a `none(...)` pattern as soon as the positive part matches, even if
the negated fact arrives later in the same batch. So every rule with a negation starts
with a *gate* pattern, a `__stratum` fact for its stratum, which the evaluator asserts
only when every lower stratum has reached its fixpoint: when the gate opens, the negated
kinds are complete, whatever order their facts came in. Rules without negation are
monotonic and need no gate, except those that read only pack facts: pack facts stay in
a reused session between assessments, so such a rule needs the per-assessment gate to
fire again for each one.

The ruleset also has a sink rule that accepts any fact and never fires: durable-rules
refuses a fact no rule matches, and a refused fact in a batch stalls the rest.

Each test means what the operator table says (`engine.operators`). durable-rules agrees
within one type of values, which the loader guarantees, but not when a comparison's
operand is a field left unset (see `_pattern`): such a comparison is preceded by a test
that the field is set, the table's "an unset side passes nothing". Facts of kinds that
may leave a field unset (evidence, and pack facts of which one omits it) carry
`__unset_FIELD` (0 or 1) for every such field a `ref` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model import ORIGIN_EVIDENCE, ORIGIN_PACK, Condition, Operand, Pack, Rule, Test
from engine.operators import ORDERING

GATE_KIND = "__stratum"
SINK_RULE = "__sink"
# Every fact carries `ANCHOR_FIELD = 0`, so comparing it with an earlier-bound fact's
# always holds, with no string comparison: see `_pattern`.
ANCHOR_FIELD = "__n"
UNSET_PREFIX = "__unset_"  # `__unset_FIELD`: 1 when the fact leaves FIELD unset, else 0


# durable-rules' spelling of the operator table's comparisons (`eq`, `in` and `exists`
# are written as patterns of their own in `_test`). Within one class of values durable
# compares as the table says; the loader keeps every test within one class.
DURABLE_OPERATORS = {"ne": "$neq", **{name: f"${name}" for name in sorted(ORDERING)}}


def _always_true(first_alias: str) -> dict[str, Any]:
    return {"$gte": {ANCHOR_FIELD: {first_alias: ANCHOR_FIELD}}}
SINK_DEFINITION = {"all": [{"any_fact": {"$ex": {"kind": 1}}},
                           {"never": {"kind": "__never__"}}]}


@dataclass(frozen=True)
class CompiledPack:
    """The pack as one durable ruleset definition, with what the evaluator needs to
    drive it: which rule each durable rule name stands for, how durable's binding names
    map back to the rule's, the strata whose gates must be opened in order, and the
    kinds some rule reads (only those are worth asserting)."""

    definition: dict[str, Any]
    rules: dict[str, Rule]  # durable rule name -> rule
    bindings: dict[str, dict[str, str]]  # durable rule name -> durable binding -> rule name
    stratum: dict[str, int]  # rule id -> stratum
    gates: tuple[int, ...]  # strata that have gated (negating) rules, ascending
    consumed: frozenset[str]
    flagged: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> fields
    # whose `__unset_` flag its facts carry (see the module docstring)


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
    """Compile every rule of `pack`; durable rule names are positional, so stable."""
    definition: dict[str, Any] = {SINK_RULE: SINK_DEFINITION}
    names: dict[str, Rule] = {}
    bindings: dict[str, dict[str, str]] = {}
    stratum: dict[str, int] = {}
    by_id = {r.id: r for r in pack.rules}
    gates: set[int] = set()
    pack_kinds = {k.name for k in pack.kinds.values() if k.origin == ORIGIN_PACK}
    optional = optional_fields(pack)
    flagged: dict[str, set[str]] = {}
    for level, rule_ids in enumerate(pack.strata):
        for position, rule_id in enumerate(rule_ids):
            rule = by_id[rule_id]
            name = f"r{level}_{position}"
            # Negating rules wait for their stratum's gate; so do rules that read only
            # pack facts, which stay asserted between assessments (see engine.evaluator).
            gated = bool(rule.negates) or rule.consumes <= pack_kinds
            definition[name], bindings[name] = compile_rule(rule, level if gated else None,
                                                            optional)
            for kind, fname in guarded_refs(rule, optional):
                flagged.setdefault(kind, set()).add(fname)
            names[name] = rule
            stratum[rule_id] = level
            if gated:
                gates.add(level)
    consumed = frozenset().union(*(r.consumes | r.negates for r in pack.rules))
    return CompiledPack(definition, names, bindings, stratum, tuple(sorted(gates)), consumed,
                        {kind: tuple(sorted(fields)) for kind, fields in sorted(flagged.items())})


def guarded_refs(rule: Rule, optional: Mapping[str, frozenset[str]]) -> set[tuple[str, str]]:
    """The (kind, field) pairs the rule's `ref` tests read that a fact may leave unset."""
    bound = {c.name: c.kind for c in rule.conditions if not c.negated}
    return {(bound[t.operand.ref[0]], t.operand.ref[1]) for c in rule.conditions
            for t in c.tests if t.operand.ref is not None
            and t.operand.ref[1] in optional.get(bound.get(t.operand.ref[0], ""), ())}


def gate_fact(level: int) -> dict[str, Any]:
    """The fact that opens stratum `level`'s negating rules."""
    return {"id": f"{GATE_KIND}:{level}", "kind": GATE_KIND, "level": level, ANCHOR_FIELD: 0}


def compile_rule(rule: Rule, gate: int | None = None,
                 optional: Mapping[str, frozenset[str]] | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """A rule's `when` as a durable-rules `all` list (behind its stratum's gate when it
    negates), and the map from durable binding names back to the rule's own names.
    `optional`: the fields each kind's facts may leave unset (`optional_fields`)."""
    optional = optional or {}
    bound_kind = {c.name: c.kind for c in rule.conditions if not c.negated}

    def unset(name: str | None, fname: str, kind: str) -> bool:
        """Whether the field of the fact bound to `name` (or of the fact tested, of
        `kind`) may be unset."""
        return fname in optional.get(bound_kind[name] if name else kind, ())

    aliases: dict[str, str] = {}
    patterns: list[dict[str, Any]] = []
    first = None
    if gate is not None:
        patterns.append({"gate": {"$and": [{"kind": GATE_KIND}, {"level": gate}]}})
        first = "gate"
    for position, cond in enumerate(rule.conditions):
        if cond.negated:
            patterns.append({f"n{position}$not": _pattern(cond, aliases, first, unset)})
        else:
            alias = f"b{position}"
            patterns.append({alias: _pattern(cond, aliases, first, unset)})
            aliases[cond.name] = alias
            first = first or alias
    return {"all": patterns}, {v: k for k, v in aliases.items()}


def _pattern(cond: Condition, aliases: dict[str, str], first: str | None,
             unset: Callable[[str | None, str, str], bool]) -> dict[str, Any]:
    """One pattern as durable-rules' `$and`, its tests ordered around two defects of the
    C matcher (durable-rules 2.0.28, `reduceExpressionSequence`):
    - when the last comparison against an earlier-bound fact is false, the matcher scans
      past the end of the expression list for its terminator (reads beyond the buffer and
      can crash); a trailing cross-fact comparison that is always true keeps it in bounds
      (same-fact comparisons are alpha tests, outside that list);
    - a `$or` ends the `$and` early, skipping every comparison after it; so `in` tests
      (compiled to `$or`) come last.
    A comparison with a field that may be unset (`unset`) is preceded by the test that it
    is set, which the table requires anyway:
    - for a `ref`, the earlier fact's `__unset_FIELD` flag: durable rejects the batch
      when it reads a field the earlier fact lacks;
    - for a `field` of the same fact, `$ex`: without it, when the field is unset durable
      answers the comparison as another rule's constant test on the same field and
      operator (`score >= threshold_score` fires like `score >= 0.9`).
    """
    constants: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for test in cond.tests:
        compiled = _test(test, aliases)
        if test.op == "in":
            choices.append(compiled)
        elif test.operand.ref is not None:
            name, fname = test.operand.ref
            if unset(name, fname, cond.kind):
                references.append({ANCHOR_FIELD: {aliases[name]: UNSET_PREFIX + fname}})
            references.append(compiled)
        else:
            if test.operand.field is not None and unset(None, test.operand.field, cond.kind):
                constants.append({"$ex": {test.operand.field: 1}})
            constants.append(compiled)
    if references and first is not None:
        references.append(_always_true(first))
    return {"$and": [{"kind": cond.kind}, *constants, *references, *choices]}


def _test(test: Test, aliases: dict[str, str]) -> dict[str, Any]:
    if test.op == "exists":
        return {"$ex" if test.operand.constant else "$nex": {test.field: 1}}
    if test.op == "in":
        return {"$or": [{test.field: value} for value in test.operand.constant]}
    operand = _operand(test.operand, aliases)
    if test.op == "eq":
        return {test.field: operand}
    return {DURABLE_OPERATORS[test.op]: {test.field: operand}}


def _operand(operand: Operand, aliases: dict[str, str]) -> Any:
    if operand.field is not None:
        return {"$m": operand.field}
    if operand.ref is not None:
        return {aliases[operand.ref[0]]: operand.ref[1]}
    return operand.constant
