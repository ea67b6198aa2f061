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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import OPERATORS, ORIGIN_PACK, Condition, Operand, Pack, Rule, Test

GATE_KIND = "__stratum"
SINK_RULE = "__sink"
# Every fact carries `ANCHOR_FIELD = 0`, so comparing it with an earlier-bound fact's
# always holds, with no string comparison: see `_pattern`.
ANCHOR_FIELD = "__n"


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


def compile_pack(pack: Pack) -> CompiledPack:
    """Compile every rule of `pack`; durable rule names are positional, so stable."""
    definition: dict[str, Any] = {SINK_RULE: SINK_DEFINITION}
    names: dict[str, Rule] = {}
    bindings: dict[str, dict[str, str]] = {}
    stratum: dict[str, int] = {}
    by_id = {r.id: r for r in pack.rules}
    gates: set[int] = set()
    pack_kinds = {k.name for k in pack.kinds.values() if k.origin == ORIGIN_PACK}
    for level, rule_ids in enumerate(pack.strata):
        for position, rule_id in enumerate(rule_ids):
            rule = by_id[rule_id]
            name = f"r{level}_{position}"
            # Negating rules wait for their stratum's gate; so do rules that read only
            # pack facts, which stay asserted between assessments (see engine.evaluator).
            gated = bool(rule.negates) or rule.consumes <= pack_kinds
            definition[name], bindings[name] = compile_rule(rule, level if gated else None)
            names[name] = rule
            stratum[rule_id] = level
            if gated:
                gates.add(level)
    consumed = frozenset().union(*(r.consumes | r.negates for r in pack.rules))
    return CompiledPack(definition, names, bindings, stratum, tuple(sorted(gates)), consumed)


def gate_fact(level: int) -> dict[str, Any]:
    """The fact that opens stratum `level`'s negating rules."""
    return {"id": f"{GATE_KIND}:{level}", "kind": GATE_KIND, "level": level, ANCHOR_FIELD: 0}


def compile_rule(rule: Rule, gate: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """A rule's `when` as a durable-rules `all` list (behind its stratum's gate when it
    negates), and the map from durable binding names back to the rule's own names."""
    aliases: dict[str, str] = {}
    patterns: list[dict[str, Any]] = []
    first = None
    if gate is not None:
        patterns.append({"gate": {"$and": [{"kind": GATE_KIND}, {"level": gate}]}})
        first = "gate"
    for position, cond in enumerate(rule.conditions):
        if cond.negated:
            patterns.append({f"n{position}$not": _pattern(cond, aliases, first)})
        else:
            alias = f"b{position}"
            patterns.append({alias: _pattern(cond, aliases, first)})
            aliases[cond.name] = alias
            first = first or alias
    return {"all": patterns}, {v: k for k, v in aliases.items()}


def _pattern(cond: Condition, aliases: dict[str, str], first: str | None) -> dict[str, Any]:
    """One pattern as durable-rules' `$and`, its tests ordered around two defects of the
    C matcher (durable-rules 2.0.28, `reduceExpressionSequence`):
    - when the last comparison against an earlier-bound fact is false, the matcher scans
      past the end of the expression list for its terminator (reads beyond the buffer and
      can crash); a trailing cross-fact comparison that is always true keeps it in bounds
      (same-fact comparisons are alpha tests, outside that list);
    - a `$or` ends the `$and` early, skipping every comparison after it; so `in` tests
      (compiled to `$or`) come last.
    """
    constants: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for test in cond.tests:
        compiled = _test(test, aliases)
        if test.op == "in":
            choices.append(compiled)
        elif test.operand.ref is not None:
            references.append(compiled)
        else:
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
    return {OPERATORS[test.op]: {test.field: operand}}


def _operand(operand: Operand, aliases: dict[str, str]) -> Any:
    if operand.field is not None:
        return {"$m": operand.field}
    if operand.ref is not None:
        return {aliases[operand.ref[0]]: operand.ref[1]}
    return operand.constant
