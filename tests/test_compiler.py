"""The compiler and the adapter: what durable-rules is given for each rule.

The compiler emits neutral patterns (engine/compiler.py); the adapter spells them for
durable-rules (engine/durable_adapter.py `pattern_definition`), and the order of tests
inside each spelled pattern is load-bearing:
constants and same-fact comparisons first, then comparisons with earlier-bound facts,
then one always-true anchor comparison, then the `$or`s of `in` tests. A `$or` ends
durable's `$and` early, and a false trailing cross-fact comparison makes the C matcher
read past its expression list, so a different order silently changes what matches or
crashes. Negating rules start with their stratum's gate pattern.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import PackWriter
from engine.assess import evaluator_for
from engine.compiler import (
    GATE_KIND,
    BoundField,
    BoundIsSet,
    Compare,
    CompiledRule,
    Const,
    Exists,
    FieldOf,
    OneOf,
    Pattern,
    compile_pack,
    compile_rule,
    gate_fact,
)
from engine.durable_adapter import (
    ANCHOR_FIELD,
    SINK_DEFINITION,
    SINK_RULE,
    rule_definition,
    ruleset_definition,
)
from engine.evaluator import Evaluator, Fact
from engine.loader import load_pack
from engine.model import ORIGIN_EVIDENCE, ORIGIN_PACK, Rule
from engine.rule_syntax import parse_rule
from engine.yamlsafe import load_yaml

# A rule with every kind of test: `in`, a same-fact comparison (`field`), constants,
# `exists` both ways, joins (`ref`) and a negation. Tests are written in the opposite of
# the compiled order, so the ordering below is the compiler's doing.
RICH = """\
- id: t.rich
  title: Every kind of test
  cite: RSP v2.1 §2
  because: "{e.name} and {o.name}"
  when:
    - match: x
      as: e
      where:
        name: [a, b]
        score: {gte: {field: limit}, lt: 5}
        limit: {exists: true}
        tier: {exists: false}
    - match: y
      as: o
      where:
        tier: [lower, upper]
        rank: {lte: {ref: e.score}}
        name: {ref: e.name}
        score: {gte: 1}
    - none: concern
      where:
        name: {ref: o.name}
        value: {ne: cleared}
  then:
    cleared: {name: {ref: e.name}}
"""


def anchor(alias: str) -> dict[str, Any]:
    """The always-true comparison with the first bound pattern `alias`."""
    return {"$gte": {ANCHOR_FIELD: {alias: ANCHOR_FIELD}}}


def parse(text: str) -> Rule:
    """The single rule in `text`, parsed without any pack (kinds are not checked here)."""
    raw = load_yaml(text)[0]
    rule, problems = parse_rule("t.yaml", raw, "t")
    assert problems == [] and rule is not None
    return rule


def spelled(rule: Rule, gate: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule compiled, as the adapter spells it for durable-rules, and its bindings."""
    compiled, bindings = compile_rule(rule, gate)
    return rule_definition(compiled), bindings


def test_compile_rule_is_neutral() -> None:
    """The compiler's own output names no durable-rules syntax: patterns of neutral
    tests, in the rule's order, negation as a flag."""
    compiled, bindings = compile_rule(parse(RICH), optional={"x": frozenset({"limit"}),
                                                             "y": frozenset()})
    assert compiled == CompiledRule((
        Pattern("b0", "x", (OneOf("name", ("a", "b")), Exists("limit"),
                            Compare("score", "gte", FieldOf("limit")),
                            Compare("score", "lt", Const(5)), Exists("limit", True),
                            Exists("tier", False))),
        Pattern("b1", "y", (OneOf("tier", ("lower", "upper")),
                            Compare("rank", "lte", BoundField("b0", "score")),
                            Compare("name", "eq", BoundField("b0", "name")),
                            Compare("score", "gte", Const(1)))),
        Pattern("n2", "concern", (Compare("name", "eq", BoundField("b1", "name")),
                                  Compare("value", "ne", Const("cleared"))), negated=True),
    ))
    assert bindings == {"b0": "e", "b1": "o"}
    text = repr(compiled)
    assert "$" not in text and "__n" not in text


def test_a_ref_to_an_optional_field_is_guarded() -> None:
    """A comparison with a field the earlier fact may leave unset is preceded by the
    guard that it is set, which the adapter spells as a flag comparison."""
    compiled, _ = compile_rule(parse(RICH), optional={"x": frozenset({"name"})})
    tests = compiled.patterns[1].tests
    guard = tests.index(BoundIsSet("b0", "name"))
    assert tests[guard + 1] == Compare("name", "eq", BoundField("b0", "name"))
    b1 = rule_definition(compiled)["all"][1]["b1"]["$and"]
    assert {ANCHOR_FIELD: {"b0": "__unset_name"}} in b1


def test_compile_rule_orders_every_kind_of_test() -> None:
    """Guards the exact spelled form: constants and same-fact comparisons (`$m`), then
    cross-fact refs, then the anchor, then `$or`; negation as a `$not` pattern; durable's
    binding names mapped back to the rule's `as` names."""
    definition, bindings = spelled(parse(RICH))
    assert definition == {"all": [
        {"b0": {"$and": [
            {"kind": "x"},
            {"$gte": {"score": {"$m": "limit"}}},
            {"$lt": {"score": 5}},
            {"$ex": {"limit": 1}},
            {"$nex": {"tier": 1}},
            {"$or": [{"name": "a"}, {"name": "b"}]},
        ]}},
        {"b1": {"$and": [
            {"kind": "y"},
            {"$gte": {"score": 1}},
            {"$lte": {"rank": {"b0": "score"}}},
            {"name": {"b0": "name"}},
            anchor("b0"),
            {"$or": [{"tier": "lower"}, {"tier": "upper"}]},
        ]}},
        {"n2$not": {"$and": [
            {"kind": "concern"},
            {"$neq": {"value": "cleared"}},
            {"name": {"b1": "name"}},
            anchor("b0"),
        ]}},
    ]}
    assert bindings == {"b0": "e", "b1": "o"}


def test_negating_rule_starts_with_its_gate() -> None:
    """With a gate, the `__stratum` pattern for that level comes first and anchors
    compare with it: the rule cannot fire before the evaluator opens its stratum."""
    definition, bindings = spelled(parse(RICH), gate=3)
    patterns = definition["all"]
    assert patterns[0] == {"gate": {"$and": [{"kind": GATE_KIND}, {"level": 3}]}}
    assert [next(iter(p)) for p in patterns] == ["gate", "b0", "b1", "n2$not"]
    assert patterns[2]["b1"]["$and"][-2] == anchor("gate")
    assert patterns[3]["n2$not"]["$and"][-1] == anchor("gate")
    assert bindings == {"b0": "e", "b1": "o"}
    assert gate_fact(3) == {"id": f"{GATE_KIND}:3", "kind": GATE_KIND, "level": 3}


def test_pattern_without_refs_has_no_anchor() -> None:
    """The anchor is added only after cross-fact comparisons (it exists to keep the
    matcher inside its expression list); a pattern of constants gets none."""
    definition, _ = spelled(parse(RICH.replace("        rank: {lte: {ref: e.score}}\n", "")
                                  .replace("        name: {ref: e.name}\n", "")))
    b1 = definition["all"][1]["b1"]["$and"]
    assert b1 == [{"kind": "y"}, {"$gte": {"score": 1}},
                  {"$or": [{"tier": "lower"}, {"tier": "upper"}]}]


GROUP = {"kind": 0, "constant": 1, "ref": 2, "anchor": 3, "choice": 4}


def _group(test: dict[str, Any], aliases: set[str]) -> str:
    """Which of the documented groups one compiled test belongs to."""
    ((key, value),) = test.items()
    if key == "kind":
        return "kind"
    if key == "$or":
        return "choice"
    if key.startswith("$") and isinstance(value, dict):
        ((_, value),) = value.items()
    if test in (anchor(a) for a in aliases):
        return "anchor"
    if isinstance(value, dict) and set(value) <= aliases:
        return "ref"
    return "constant"


def test_every_builtin_pattern_follows_the_documented_order() -> None:
    """Over the whole shipped pack: in every pattern the kind comes first, then constants,
    then refs, then at most one anchor (only after refs), then `$or`s; every negating
    rule (and every rule reading only pack facts) opens with its stratum's gate."""
    pack = load_pack()
    compiled = compile_pack(pack)
    definition = ruleset_definition(compiled.compiled)
    assert definition[SINK_RULE] == SINK_DEFINITION
    pack_kinds = {k.name for k in pack.kinds.values() if k.origin == ORIGIN_PACK}
    seen_groups: set[str] = set()
    for name, rule in compiled.rules.items():
        patterns = definition[name]["all"]
        aliases = {next(iter(p)) for p in patterns if "$not" not in next(iter(p))}
        gated = bool(rule.negates) or rule.consumes <= pack_kinds
        first = patterns[0]
        if gated:
            assert first == {"gate": {"$and": [{"kind": GATE_KIND},
                                               {"level": compiled.stratum[rule.id]}]}}, rule.id
            assert compiled.stratum[rule.id] in compiled.gates
        else:
            assert "gate" not in aliases, rule.id
        for pattern in patterns:
            ((_, body),) = pattern.items()
            groups = [_group(t, aliases) for t in body["$and"]]
            seen_groups.update(groups)
            assert groups[0] == "kind" and groups.count("kind") == 1, (rule.id, body)
            assert groups == sorted(groups, key=GROUP.__getitem__), (rule.id, body)
            assert groups.count("anchor") == ("ref" in groups), (rule.id, body)
    assert seen_groups == set(GROUP), "the pack no longer exercises every group"
    assert compiled.gates == tuple(sorted(compiled.gates))


ORDER_PACK_RULES = """\
- id: t.join
  title: An in-test before a join
  cite: RSP v2.1 §2
  because: "{x.name} meets {z.name}"
  when:
    - match: x
    - match: z
      where:
        name: [p, q, r]
        ref_name: {ref: x.name}
  then:
    concern: {name: {ref: z.name}}
- id: t.constants
  title: An in-test after a constant
  cite: RSP v2.1 §2
  because: "{x.name}"
  when:
    - match: x
      where:
        name: [p, q]
        score: {gt: 5}
  then:
    cleared: {name: {ref: x.name}}
"""


@pytest.mark.parametrize(("x", "z", "concern"), [
    ({"name": "p", "score": 9}, {"name": "q", "ref_name": "p"}, ["concern(name=q)"]),
    ({"name": "p", "score": 9}, {"name": "q", "ref_name": "zz"}, []),  # join false
    ({"name": "p", "score": 9}, {"name": "s", "ref_name": "p"}, []),  # `in` false
])
def test_in_tests_do_not_short_circuit_other_tests(make_pack: PackWriter, x: dict[str, Any],
                                                   z: dict[str, Any],
                                                   concern: list[str]) -> None:
    """Through durable itself: a pattern whose `in` holds but whose join or constant
    fails must not match (the `$or` would end the `$and` early if it came first), and a
    false trailing join neither matches nor crashes."""
    root = make_pack(ORDER_PACK_RULES,
                     extra_kinds="  z: {origin: evidence, fields: {name: str, ref_name: str}}\n")
    evaluator = Evaluator(load_pack([root]))
    derivation = evaluator.evaluate([Fact("x1", "x", x, ORIGIN_EVIDENCE),
                                     Fact("z1", "z", z, ORIGIN_EVIDENCE)])
    assert [f.id for f in derivation.of_kind("concern")] == concern
    assert [f.id for f in derivation.of_kind("cleared")] == ["cleared(name=p)"]
    low = evaluator.evaluate([Fact("x1", "x", {**x, "score": 1}, ORIGIN_EVIDENCE)])
    assert low.of_kind("cleared") == [], "`in` held, `score > 5` did not: must not fire"


def test_builtin_compiled_definition_is_accepted_by_durable() -> None:
    """The compiled built-in pack registers with durable-rules (the evaluator for it
    exists) and names every rule it compiled."""
    evaluator = evaluator_for()
    assert set(ruleset_definition(evaluator.compiled.compiled)) == {
        SINK_RULE, *evaluator.compiled.rules}
    assert {r.id for r in evaluator.compiled.rules.values()} == {
        r.id for r in evaluator.pack.rules}
