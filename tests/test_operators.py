"""One operator table (issue 10, item 4): validation, why-not and the compiled rules agree.

`constraints.holds` and `diagnose.compare` used to give opposite answers for `eq(True,
1)`, `in(True, [1, 2])`, `gt(True, 0)` and `ne(1, True)`, and durable-rules itself
compares `true` equal to `1` and `"1"` equal to `1`. Now `engine.operators.holds` is the
meaning of every test, validation and diagnosis call it, and the loader keeps every
compiled test within one type, so durable-rules fires exactly what the table says. The
property tests compile real packs of many tests and check, on random values, that the
table, the diagnosis (`check_derivation`: every binding it matches fired, and the
reverse) and durable-rules' firings agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import PackWriter, write_mini_pack
from engine import constraints, diagnose
from engine.errors import AssessmentError, PackError
from engine.evaluator import Evaluator, Fact
from engine.loader import load_pack
from engine.model import ORIGIN_EVIDENCE, Kind, Operand
from engine.model import Test as WhereTest
from engine.operators import NEGATED_OP, OPERATORS, holds, value_class

# --- the four disagreements of the issue, and the table's laws ---------------------------

KIND = Kind("t", ORIGIN_EVIDENCE, {"f": "number", "g": "bool"})


def diagnosis_says(op: str, value: Any, operand: Any) -> bool:
    """What why-not's join decides for a fact whose field `f` holds `value`."""
    fact = Fact("t:1", "t", {"f": value}, ORIGIN_EVIDENCE)
    test = WhereTest("f", op, Operand(constant=operand))
    return diagnose.try_test(test, fact, {}, {"t": KIND}).held


def validation_says(op: str, value: Any, operand: Any) -> bool:
    """What `asl rules validate` decides: can a field whose only value is `value` pass?"""
    return constraints.satisfiable([WhereTest("f", op, Operand(constant=operand))],
                                   frozenset([value]))


@pytest.mark.parametrize(("op", "value", "operand", "expected"), [
    ("eq", True, 1, False),
    ("in", True, [1, 2], False),
    ("gt", True, 0, False),
    ("ne", 1, True, True),
    ("eq", 1, True, False),
    ("eq", "1", 1, False),
    ("eq", 1, 1.0, True),
    ("gte", "b", "a", False),  # only numbers are ordered
    ("ne", None, 1, False),  # an unset value passes nothing but `exists: false`
    ("exists", None, False, True),
    ("eq", 2**53 + 1, 2**53, True),  # numbers compare as durable-rules holds them
])
def test_validation_and_diagnosis_answer_as_the_table(op: str, value: Any, operand: Any,
                                                      expected: bool) -> None:
    assert holds(op, value, operand) is expected
    assert diagnosis_says(op, value, operand) is expected
    if value is not None and op != "exists":
        assert validation_says(op, value, operand) is expected


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0, 1, 0.0, 1.0, -0.0, True, False, "", "1", "true"]))


@settings(max_examples=500, deadline=None)
@given(op=st.sampled_from(sorted(set(OPERATORS) - {"in", "exists"})), left=SCALARS,
       right=SCALARS)
def test_the_table_is_one_meaning(op: str, left: Any, right: Any) -> None:
    """Diagnosis and validation give the table's answer on any pair of values; values of
    different types are never equal and never ordered; negation and `ne` are exact."""
    answer = holds(op, left, right)
    assert diagnosis_says(op, left, right) is answer
    if left is not None:
        assert validation_says(op, left, right) is answer
    same_type = type(left) is type(right) or (
        isinstance(left, int | float) and isinstance(right, int | float)
        and not isinstance(left, bool) and not isinstance(right, bool))
    if not same_type:
        assert holds("eq", left, right) is False
        assert holds(op, left, right) is (op == "ne" and None not in (left, right))
    if None not in (left, right):
        assert holds("ne", left, right) is not holds("eq", left, right)
        assert holds("in", left, [right]) is holds("eq", left, right)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool)
                      for v in (left, right))
        if numbers:
            assert holds(NEGATED_OP[op], left, right) is not answer


# --- what durable-rules fires ------------------------------------------------------------

# Two kinds with a field of each type twice, so that tests compare a field with a
# constant, with another field of the same fact, and with a field of an earlier fact.
KINDS = """\
  t: {origin: evidence, fields: {b: bool, n: number, s: str, b2: bool, n2: number, s2: str}}
  u: {origin: evidence, fields: {b: bool, n: number, s: str, b2: bool, n2: number, s2: str}}
  hit: {fields: {rule: str}}
"""
TYPES = {"b": "bool", "n": "number", "s": "str"}
OPS = {"bool": ["eq", "ne"], "number": ["eq", "ne", "gt", "gte", "lt", "lte"],
       "str": ["eq", "ne"]}
# Constants durable-rules can be given (a float it would print with an exponent, such as
# 1e-05, fails to compile: durable-rules' own JSON writer and reader disagree on it).
CONSTANTS: dict[str, list[Any]] = {
    "bool": [True, False],
    "number": [-2, -1.5, 0, 0.1, 0.30000000000000004, 1, 2.5, 3, 1000, 123456.789,
               2**53, 2**53 + 1],
    "str": ["", "a", "a b", "b", "A", "é", "1", "true", "ASL-3", 'a"b'],
}


def _rule(index: int, when: list[dict[str, Any]]) -> dict[str, Any]:
    rule_id = f"r.{index}"
    return {"id": rule_id, "title": "a test", "cite": "RSP v2.1 §1", "because": "held",
            "when": when, "then": {"hit": {"rule": rule_id}}}


def _plans() -> list[list[tuple[str, str, str, Any]]]:
    """The tests to compile, as (shape, field, op, operand), in packs small enough that
    no fact activates 64 rules at once (durable-rules refuses a fact that does)."""
    constant = [("const", f, op, c) for f, t in TYPES.items() for op in OPS[t]
                for c in CONSTANTS[t]]
    constant += [("const", f, "in", CONSTANTS[t][:2]) for f, t in TYPES.items()]
    constant += [("const", f, "in", CONSTANTS[t][-3:]) for f, t in TYPES.items()]
    constant += [("const", f, "exists", flag) for f in TYPES for flag in (True, False)]
    joined = [(shape, f, op, f"{f}2") for shape in ("field", "ref", "none-ref")
              for f, t in TYPES.items() for op in OPS[t]]
    joined += [("none-const", f, op, c) for f, t in TYPES.items() for op in OPS[t]
               for c in CONSTANTS[t][:2]]
    plans = [[], [], [], []]
    for index, test in enumerate(constant + joined):
        plans[index % 4].append(test)
    return plans


def _when(shape: str, field: str, op: str, operand: Any) -> list[dict[str, Any]]:
    if shape == "const":
        return [{"match": "t", "where": {field: {op: operand}}}]
    if shape == "field":
        return [{"match": "t", "where": {field: {op: {"field": operand}}}}]
    if shape == "ref":
        return [{"match": "t"}, {"match": "u", "where": {field: {op: {"ref": f"t.{operand}"}}}}]
    if shape == "none-ref":
        return [{"match": "t"}, {"none": "u", "where": {field: {op: {"ref": f"t.{operand}"}}}}]
    return [{"match": "t"}, {"none": "u", "where": {field: {op: operand}}}]


def expected(shape: str, field: str, op: str, operand: Any, t: dict[str, Any],
             u: dict[str, Any]) -> bool:
    """Whether the table says the rule fires for facts t and u (both always present)."""
    if shape == "const":
        return holds(op, t.get(field), operand)
    if shape == "field":
        return holds(op, t.get(field), t.get(operand))
    if shape == "ref":
        return holds(op, u.get(field), t.get(operand))
    if shape == "none-ref":
        return not holds(op, u.get(field), t.get(operand))
    return not holds(op, u.get(field), operand)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory
             ) -> list[tuple[Evaluator, dict[str, tuple[str, str, str, Any]]]]:
    """The test packs, loaded (type checks included) and compiled into durable-rules."""
    packs = []
    start = 0
    for number, plan in enumerate(_plans()):
        rules = [_rule(start + i, _when(*test)) for i, test in enumerate(plan)]
        root = write_mini_pack(tmp_path_factory.mktemp(f"ops{number}"),
                               yaml.safe_dump(rules, allow_unicode=True), KINDS)
        by_id = {f"r.{start + i}": test for i, test in enumerate(plan)}
        packs.append((Evaluator(load_pack([root])), by_id))
        start += len(plan)
    return packs


def typed(ftype: str) -> st.SearchStrategy[Any]:
    """Values a field of `ftype` may hold (or None: unset), biased towards the constants
    so that equality is often met."""
    values = {"bool": st.booleans(),
              "number": st.one_of(st.integers(min_value=-2**64, max_value=2**64),
                                  st.floats(allow_nan=False, allow_infinity=False)),
              "str": st.text(max_size=4)}[ftype]
    return st.one_of(st.none(), values, st.sampled_from(CONSTANTS[ftype]))


FACT_VALUES = st.fixed_dictionaries({
    name: typed(TYPES[name.rstrip("2")]) for name in ("b", "n", "s", "b2", "n2", "s2")})


def facts(t: dict[str, Any], u: dict[str, Any]) -> list[Fact]:
    return [Fact("t:1", "t", t, ORIGIN_EVIDENCE), Fact("u:1", "u", u, ORIGIN_EVIDENCE)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=FACT_VALUES, u=FACT_VALUES)
def test_durable_fires_what_the_table_says(
        compiled: list[tuple[Evaluator, dict[str, tuple[str, str, str, Any]]]],
        t: dict[str, Any], u: dict[str, Any]) -> None:
    for evaluator, tests in compiled:
        derivation = evaluator.evaluate(facts(t, u))
        fired = {f.rule.id for f in derivation.firings.values()}
        wrong = {rule_id: tests[rule_id] for rule_id in tests
                 if (rule_id in fired) is not expected(*tests[rule_id], t, u)}
        assert wrong == {}, (t, u)
        assert diagnose.check_derivation(evaluator.pack, derivation) == []


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["b", "n", "s"]),
       value=st.one_of(st.booleans(), st.integers(), st.text(max_size=2),
                       st.floats(allow_nan=False, allow_infinity=False)))
def test_a_value_of_another_type_never_reaches_durable(
        compiled: list[tuple[Evaluator, dict[str, tuple[str, str, str, Any]]]],
        field: str, value: Any) -> None:
    """`true` in a number field would be `1` to durable-rules: such a fact is refused
    with its field named, never half-assessed."""
    assume(value_class(value) != TYPES[field])  # a value of its own type: see above
    evaluator = compiled[0][0]
    with pytest.raises(AssessmentError) as caught:
        evaluator.evaluate(facts({field: value}, {}))
    assert str(caught.value) == f"fact t:1: t.{field} is a {TYPES[field]}, not {value!r}"


# --- the loader keeps every compiled test within one type ---------------------------------


def _rule_text(where: str, then: str = "{name: {ref: t.s}}") -> str:
    return (f"- id: t.rule\n  title: A rule\n  cite: RSP v2.1 §2\n  because: \"held\"\n"
            f"  when:\n    - match: t\n      where: {where}\n"
            f"  then:\n    concern: {then}\n")


@pytest.mark.parametrize(("where", "then", "message"), [
    ("{n: {eq: true}}", None, "constant-type: rule 't.rule': t.n is a number, not True"),
    ("{b: {in: [true, 1]}}", None, "constant-type: rule 't.rule': t.b is a bool, not 1"),
    ("{s: {gt: a}}", None, "operator-type: rule 't.rule': `gt` orders numbers only, and t.s "
                           "is a str"),
    ("{b: {lte: {field: b2}}}", None, "operator-type: rule 't.rule': `lte` orders numbers "
                                      "only, and t.b is a bool"),
    ("{n: {eq: {field: b}}}", None, "operand-type: rule 't.rule': t.n is a number but b is "
                                    "a bool, and values of different types are never equal"),
    ("{s: {ne: {field: n}}}", None, "operand-type: rule 't.rule': t.s is a str but n is a "
                                    "number, and values of different types are never equal"),
    ("{n: {gte: 1e400}}", None, "constant-type: rule 't.rule': t.n is a number, not inf"),
    ("{s: a}", "{name: {ref: t.n}}", "operand-type: rule 't.rule': concern.name is a str "
                                      "but t.n is a number, and values of different types "
                                      "are never equal"),
    ("{s: a}", "{name: 3}", "constant-type: rule 't.rule': concern.name is a str, not 3"),
])
def test_a_test_across_types_is_refused_when_the_pack_loads(
        make_pack: PackWriter, where: str, then: str | None, message: str) -> None:
    root = make_pack(_rule_text(where, then or "{name: {ref: t.s}}"), KINDS)
    with pytest.raises(PackError) as caught:
        load_pack([root])
    assert [str(p) for p in caught.value.problems] == [
        f"{root / 'rules' / '50-test.yaml'}:{9 if then else 7}: {message}"]


def test_a_pack_fact_of_another_type_is_refused(tmp_path: Path) -> None:
    root = write_mini_pack(tmp_path / "p", "[]\n", "  level: {origin: pack, fields: "
                           "{name: str, rank: number}}\n")
    pack_yaml = root / "pack.yaml"
    pack_yaml.write_text(pack_yaml.read_text() + "  - {kind: level, name: top, rank: '3'}\n")
    line = len(pack_yaml.read_text().splitlines())
    with pytest.raises(PackError) as caught:
        load_pack([root])
    assert [str(p) for p in caught.value.problems] == [
        f"{pack_yaml}:{line}: constant-type: pack fact of kind 'level': level.rank is a "
        "number, not '3'"]


def test_the_builtin_pack_compares_within_types() -> None:
    """Every test of the built-in pack compares one type (it loads), and none orders
    anything but numbers."""
    pack = load_pack()
    for rule in pack.rules:
        for cond in rule.conditions:
            for test in cond.tests:
                if test.op in {"gt", "gte", "lt", "lte"}:
                    assert pack.kinds[cond.kind].fields[test.field] == "number"


# --- three ways durable-rules itself departed from the table, each closed --------------

# Rules on the minimal pack's `x` (name: str, score: number, limit: number) and a kind
# `z` (level: number); each concludes `concern` with its own name when it fires.
DEPARTURES = """\
- id: t.constant
  title: A constant test on score
  cite: RSP v2.1 §2
  because: "{x.name}"
  when:
    - match: x
      where: {score: {gte: 0.9}}
  then:
    concern: {name: constant}
- id: t.field
  title: The same field and operator against another field
  cite: RSP v2.1 §2
  because: "{x.name}"
  when:
    - match: x
      where: {score: {gte: {field: limit}}}
  then:
    concern: {name: field}
- id: t.join
  title: An equality join on numbers
  cite: RSP v2.1 §2
  because: "{x.name}"
  when:
    - match: x
    - match: z
      where: {level: {ref: x.limit}}
  then:
    concern: {name: join}
- id: t.order
  title: An ordering join on numbers
  cite: RSP v2.1 §2
  because: "{x.name}"
  when:
    - match: x
    - match: z
      where: {level: {gt: {ref: x.limit}}}
  then:
    concern: {name: order}
"""


@pytest.mark.parametrize(("x", "z", "concerns"), [
    # durable answered `score >= limit` as `score >= 0.9` when limit was unset
    ({"name": "a", "score": 0.95}, None, {"constant"}),
    ({"name": "a", "score": 0.95, "limit": 0.99}, None, {"constant"}),
    ({"name": "a", "score": 0.95, "limit": 0.5}, None, {"constant", "field"}),
    # durable rejected the whole batch (error 311) when a `ref` read an unset field
    ({"name": "a", "score": 0.5}, {"level": 1}, set()),
    # durable's equality join found 1 and 1.0 unequal
    ({"name": "a", "score": 0.5, "limit": 1}, {"level": 1.0}, {"join"}),
    ({"name": "a", "score": 0.5, "limit": -0.0}, {"level": 0}, {"field", "join"}),
    ({"name": "a", "score": 0.5, "limit": 2}, {"level": 1.0}, set()),
    ({"name": "a", "score": 0.4, "limit": 0.5}, {"level": 1}, {"order"}),
])
def test_durable_rules_answers_as_the_table(
        make_pack: PackWriter, x: dict[str, Any], z: dict[str, Any] | None,
        concerns: set[str]) -> None:
    evaluator = Evaluator(load_pack([make_pack(
        DEPARTURES, "  z: {origin: evidence, fields: {level: number}}\n")]))
    given = [Fact("x:1", "x", x, ORIGIN_EVIDENCE)]
    if z is not None:
        given.append(Fact("z:1", "z", z, ORIGIN_EVIDENCE))
    derivation = evaluator.evaluate(given)
    assert {f.values["name"] for f in derivation.of_kind("concern")} == concerns
    assert diagnose.check_derivation(evaluator.pack, derivation) == []
