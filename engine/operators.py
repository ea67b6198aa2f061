"""The one table of a rule's test operators: what `eq`, `ne`, `gt`, `gte`, `lt`, `lte`,
`in` and `exists` mean, for every module that evaluates or reasons about a test.

`asl rules validate` (engine.constraints), why-not (engine.diagnose), the loader's type
checks and the compiler all read this table, so they cannot disagree: `holds(op, value,
operand)` is the meaning, and what durable-rules fires for a compiled test is that
meaning (tests/test_operators.py checks it on random values). The rules:

- Values are of three classes, the field types of the rule format: `bool`, `number`
  (int or float) and `str`. Values of different classes are never equal: `true` is not
  `1`, and `"1"` is not `1` (durable-rules on its own says both are).
- Only numbers are ordered (`gt`, `gte`, `lt`, `lte`). Booleans and text never are:
  durable-rules orders text unlike Python (a space, a tab or a quote sorts wrongly).
- Numbers compare as 64-bit floats, as JSON and durable-rules hold them: integers
  beyond 2**53 compare by their nearest float.
- An unset value (None) passes no test but `exists: false`; `ne` needs both sides set.

durable-rules applies its own comparisons, which mix classes; the loader therefore
keeps every compiled comparison within one class (a constant has its field's type, a
`field`/`ref` operand the tested field's type, ordering only numbers), and every fact
holds values of its fields' types (pack facts and copied conclusions are checked when a
pack loads, evidence facts when they are asserted). On one class, durable's comparison
is this table's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BOOL, NUMBER, STR = "bool", "number", "str"  # the value classes: the rule format's field types


@dataclass(frozen=True)
class Operator:
    """One test operator: its name in rule YAML, how explanations write it (`>=`), the
    operator that holds exactly when it does not between two values of one class
    (`negation`, for "it would need <"), and the one that holds with its sides swapped
    (`mirror`: `a < b` is `b > a`). `orders` marks the operators that need numbers."""

    name: str
    text: str
    negation: str | None = None
    mirror: str | None = None
    orders: bool = False


OPERATORS: dict[str, Operator] = {op.name: op for op in (
    Operator("eq", "==", "ne", "eq"),
    Operator("ne", "!=", "eq", "ne"),
    Operator("gt", ">", "lte", "lt", orders=True),
    Operator("gte", ">=", "lt", "lte", orders=True),
    Operator("lt", "<", "gte", "gt", orders=True),
    Operator("lte", "<=", "gt", "gte", orders=True),
    Operator("in", "in"),
    Operator("exists", "exists"),
)}
OPERATOR_TEXT = {name: op.text for name, op in OPERATORS.items()}
NEGATED_OP = {name: op.negation for name, op in OPERATORS.items() if op.negation}
MIRRORED_OP = {name: op.mirror for name, op in OPERATORS.items() if op.mirror}
ORDERING = frozenset(name for name, op in OPERATORS.items() if op.orders)

# The Python types of each class's values (a bool is an int to Python, never here).
CLASS_TYPES: dict[str, tuple[type, ...]] = {BOOL: (bool,), NUMBER: (int, float), STR: (str,)}


def value_class(value: Any) -> str | None:
    """`bool`, `number` or `str`; None for an unset value, a non-finite number or
    anything else (a list), none of which equals or orders against anything."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return NUMBER
    if isinstance(value, float):
        return NUMBER if math.isfinite(value) else None
    if isinstance(value, str):
        return STR
    return None


def _double(value: int | float) -> float:
    """A number as durable-rules holds it: a 64-bit float."""
    try:
        return float(value)
    except OverflowError:  # an integer beyond the largest float
        return math.copysign(math.inf, value)


def _equal(left: Any, right: Any) -> bool:
    kind = value_class(left)
    if kind is None or kind != value_class(right):
        return False
    return _double(left) == _double(right) if kind == NUMBER else bool(left == right)


def holds(op: str, left: Any, right: Any) -> bool:
    """Whether `left OP right` holds: `left` is the tested field's value (None when
    unset), `right` the operand's (a list for `in`, true/false for `exists`)."""
    if op == "exists":
        return (left is not None) == bool(right)
    if op == "in":
        return isinstance(right, list | tuple) and any(_equal(left, item) for item in right)
    if op == "eq":
        return _equal(left, right)
    if op == "ne":
        return value_class(left) is not None and value_class(right) is not None \
            and not _equal(left, right)
    if op in ORDERING:
        if value_class(left) != NUMBER or value_class(right) != NUMBER:
            return False
        a, b = _double(left), _double(right)
        return a > b if op == "gt" else a >= b if op == "gte" else a < b if op == "lt" \
            else a <= b
    raise ValueError(f"unknown operator {op!r}")


def has_type(value: Any, ftype: str) -> bool:
    """Whether a set value may be held by a field of type `ftype` (a finite number for a
    `number`, never a bool)."""
    return value_class(value) == ftype


def mistyped(values: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[str, Any] | None:
    """The first set field of `values` whose value is not of its declared type (an
    undeclared field, or a type the format does not know, is not checked)."""
    for name, value in values.items():
        ftype = fields.get(name)
        if value is not None and ftype in CLASS_TYPES and not has_type(value, ftype):
            return name, value
    return None
