"""The types of the values a pack compares and states, checked when it loads.

durable-rules compares values of different types in its own way (`true` equals `1`,
`"1"` equals `1`, text orders unlike Python), so the loader keeps every comparison the
compiler hands it within one type, and every fact's values of its fields' types; the
operator table (`engine.operators`) then says exactly what durable fires. A pack is
refused (`file:line: code: message`) when
- a constant is not of its field's type (`constant-type`), a pack fact's value neither;
- a `field`/`ref` operand, or a value a conclusion copies, has another type than the
  field it is compared with or copied into (`operand-type`);
- `gt`, `gte`, `lt` or `lte` tests a field that is not a number (`operator-type`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import PackProblem
from engine.model import Conclusion, Kind, Operand, PackFact, Rule, Test
from engine.operators import CLASS_TYPES, NUMBER, ORDERING, STR, has_type

ID_TYPE = STR  # every fact's `id`


def field_type(kind: Kind, fname: str) -> str | None:
    """The declared type of a field of `kind` (`id` is text); None if it has none."""
    return ID_TYPE if fname == "id" else kind.fields.get(fname)


def _operand_type(operand: Operand, kind: Kind, bound: Mapping[str, Kind]) -> str | None:
    """The type of a `field` or `ref` operand, when both name known fields."""
    if operand.field is not None:
        return field_type(kind, operand.field)
    if operand.ref is not None and operand.ref[0] in bound:
        return field_type(bound[operand.ref[0]], operand.ref[1])
    return None


def test_problems(rule: Rule, kind: Kind, test: Test, bound: Mapping[str, Kind]
                  ) -> list[PackProblem]:
    """Whether `test` on a fact of `kind` compares values of one type (`bound`: the kinds
    of the facts matched before it). Unknown fields are reported elsewhere."""
    ftype = field_type(kind, test.field)
    if ftype is None or test.op == "exists":
        return []
    where = f"{kind.name}.{test.field}"
    if test.op in ORDERING and ftype != NUMBER:
        return [PackProblem(rule.file, test.line, "operator-type", f"rule {rule.id!r}: "
                            f"`{test.op}` orders numbers only, and {where} is a {ftype}")]
    otype = _operand_type(test.operand, kind, bound)
    if otype is not None and otype != ftype:
        return [_mismatch(rule, test.line, where, ftype, test.operand, otype)]
    if test.operand.field is None and test.operand.ref is None:
        return constant_problems(rule, test.line, where, ftype, test.operand.constant)
    return []


def conclusion_problems(rule: Rule, kind: Kind, conclusion: Conclusion,
                        bound: Mapping[str, Kind]) -> list[PackProblem]:
    """Whether each value `conclusion` states is of its field's type: a constant, or the
    field of a matched fact it copies."""
    problems = []
    for fname, operand in conclusion.values:
        ftype = field_type(kind, fname)
        if ftype is None:
            continue
        where = f"{kind.name}.{fname}"
        otype = _operand_type(operand, kind, bound)
        if operand.ref is not None:
            if otype is not None and otype != ftype:
                problems.append(_mismatch(rule, conclusion.line, where, ftype, operand, otype))
        else:
            problems += constant_problems(rule, conclusion.line, where, ftype,
                                          operand.constant)
    return problems


def constant_problems(rule: Rule, line: int, where: str, ftype: str, value: Any
                      ) -> list[PackProblem]:
    """A constant (each item of an `in` list) must have its field's type."""
    for item in value if isinstance(value, list) else [value]:
        if item is not None and ftype in CLASS_TYPES and not has_type(item, ftype):
            return [PackProblem(rule.file, line, "constant-type", f"rule {rule.id!r}: "
                                f"{where} is a {ftype}, not {item!r}")]
    return []


def pack_fact_problems(fact: PackFact, kind: Kind) -> list[PackProblem]:
    """A pack fact's values must have their fields' types."""
    return [PackProblem(fact.file, fact.line, "constant-type", f"pack fact of kind "
                        f"{kind.name!r}: {kind.name}.{fname} is a {kind.fields[fname]}, "
                        f"not {value!r}")
            for fname, value in fact.values.items()
            if fname in kind.fields and value is not None
            and not has_type(value, kind.fields[fname])]


def _mismatch(rule: Rule, line: int, where: str, ftype: str, operand: Operand, otype: str
              ) -> PackProblem:
    return PackProblem(rule.file, line, "operand-type", f"rule {rule.id!r}: {where} is a "
                       f"{ftype} but {operand.text()} is a {otype}, and values of different "
                       "types are never equal")
