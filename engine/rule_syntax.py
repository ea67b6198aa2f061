"""Parse one rule of a rule file (a YAML mapping) into a `Rule`, reporting every problem.

This is the syntax of the rule format, kept apart from the loader's cross-rule checks
(duplicate ids, replacements, kinds, strata): `when:` is a list of `match: KIND` /
`none: KIND` conditions with an optional `as:` name and `where:` tests; a test is a
constant (equality), a list (`in`) or a mapping of operators; an operand is a constant,
`{field: NAME}` (another field of the same fact) or `{ref: NAME.FIELD}` (a field of a
fact matched earlier); `then:` maps each concluded kind to its field values.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import PackProblem
from engine.model import OPERATORS, Conclusion, Condition, Operand, Rule, Test
from engine.yamlsafe import LineDict, line_of

RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
RULE_KEYS = {"id", "title", "cite", "because", "when", "then", "replaces", "rationale"}


def parse_rule(file: str, raw: LineDict, pack: str) -> tuple[Rule | None, list[PackProblem]]:
    """The rule `raw` of `file` (from pack `pack`), or None and every problem found.

    Every rule has an id, title, citation, `because`, conditions and conclusions; a rule
    that `replaces` another names it by id and says why in `rationale`."""
    line = raw.line
    problems: list[PackProblem] = []
    for key in raw:
        if key not in RULE_KEYS:
            problems.append(PackProblem(file, line_of(raw, key), "unknown-key",
                                        f"unknown rule key {key!r}; expected one of "
                                        f"{', '.join(sorted(RULE_KEYS))}"))
    for key in ("id", "title", "cite", "because"):
        if not isinstance(raw.get(key), str) or not raw.get(key, "").strip():
            problems.append(PackProblem(file, line, "missing-" + key,
                                        f"rule {raw.get('id', '?')!r} needs a non-empty {key}"))
    rule_id = raw.get("id")
    if isinstance(rule_id, str) and not RULE_ID.match(rule_id):
        problems.append(PackProblem(file, line, "rule-id",
                                    f"rule id {rule_id!r} must match {RULE_ID.pattern}"))
    problems += _replacement_problems(file, raw)
    conditions, cond_problems = parse_when(file, raw)
    conclusions, then_problems = parse_then(file, raw)
    problems += cond_problems + then_problems
    if problems:
        return None, problems
    return Rule(
        id=rule_id, title=raw["title"].strip(), cite=raw["cite"].strip(),
        because=raw["because"].strip(), conditions=tuple(conditions),
        conclusions=tuple(conclusions), file=file, line=line, pack=pack, source=plain(raw),
        replaces=raw.get("replaces"),
        rationale=raw["rationale"].strip() if raw.get("rationale") else None,
    ), []


def _replacement_problems(file: str, raw: LineDict) -> list[PackProblem]:
    """`replaces` names a rule id; `rationale`, required with it, is non-empty text."""
    replaces, rationale = raw.get("replaces"), raw.get("rationale")
    rule_id = raw.get("id")
    problems = []
    if replaces is not None and not (isinstance(replaces, str) and RULE_ID.match(replaces)):
        problems.append(PackProblem(file, line_of(raw, "replaces"), "replaces",
                                    f"rule {rule_id!r}: `replaces` takes the id of the rule "
                                    f"it replaces, got {plain(replaces)!r}"))
    if rationale is not None and not (isinstance(rationale, str) and rationale.strip()):
        problems.append(PackProblem(file, line_of(raw, "rationale"), "missing-rationale",
                                    f"rule {rule_id!r}: `rationale` must be non-empty text"))
    elif replaces is not None and rationale is None:
        problems.append(PackProblem(file, raw.line, "missing-rationale",
                                    f"rule {rule_id!r} replaces {plain(replaces)!r} and needs a "
                                    "`rationale`: why this pack departs from the rule it "
                                    "replaces"))
    return problems


def parse_when(file: str, raw: LineDict) -> tuple[list[Condition], list[PackProblem]]:
    """The rule's `when:` conditions; at least one must be a `match`."""
    when = raw.get("when")
    line = line_of(raw, "when")
    if not isinstance(when, list) or not when:
        return [], [PackProblem(file, line or raw.line, "missing-when",
                                f"rule {raw.get('id')!r} needs a non-empty list `when`")]
    conditions: list[Condition] = []
    problems: list[PackProblem] = []
    for item in when:
        item_line = line_of(item) or line
        if not isinstance(item, dict) or ("match" in item) == ("none" in item):
            problems.append(PackProblem(file, item_line, "condition",
                                        "each condition is a mapping with `match: KIND` or "
                                        "`none: KIND`"))
            continue
        extra = set(item) - {"match", "none", "as", "where"}
        if extra:
            problems.append(PackProblem(file, item_line, "condition",
                                        f"unknown condition key(s) {', '.join(sorted(extra))}; "
                                        "expected match/none, as, where"))
            continue
        negated = "none" in item
        kind = str(item["none"] if negated else item["match"])
        name = str(item.get("as", kind))
        tests, test_problems = parse_where(file, item_line, item.get("where") or {})
        problems += test_problems
        conditions.append(Condition(kind, name, tuple(tests), negated, item_line))
    if conditions and all(c.negated for c in conditions):
        problems.append(PackProblem(file, line, "condition", f"rule {raw.get('id')!r} needs at "
                                    "least one `match` condition"))
    return conditions, problems


def parse_where(file: str, line: int, where: Any) -> tuple[list[Test], list[PackProblem]]:
    """A condition's `where:` tests, one per field and operator."""
    if not isinstance(where, dict):
        return [], [PackProblem(file, line, "condition", "`where` must map fields to tests")]
    tests: list[Test] = []
    problems: list[PackProblem] = []
    for fname, spec in where.items():
        test_line = line_of(where, fname) or line
        ops: dict[str, Any]
        if isinstance(spec, list):
            ops = {"in": spec}
        elif isinstance(spec, dict) and not ({"ref", "field"} & set(spec)):
            ops = dict(spec)
        else:
            ops = {"eq": spec}
        for op, value in ops.items():
            if op not in OPERATORS:
                problems.append(PackProblem(file, test_line, "operator",
                                            f"unknown operator {op!r} on field {fname!r}; "
                                            f"expected one of {', '.join(OPERATORS)}"))
                continue
            if op == "in" and not (isinstance(value, list) and value and all(
                    isinstance(v, str | int | float | bool) for v in value)):
                problems.append(PackProblem(file, test_line, "operator", f"`in` on {fname!r} "
                                            "needs a non-empty list of constants"))
                continue
            if op not in ("in",) and isinstance(value, list):
                problems.append(PackProblem(file, test_line, "operator",
                                            f"`{op}` on {fname!r} takes one value, not a list "
                                            "(use `in` for a choice)"))
                continue
            if op == "exists" and not isinstance(value, bool):
                problems.append(PackProblem(file, test_line, "operator",
                                            f"`exists` on {fname!r} takes true or false"))
                continue
            operand, problem = parse_operand(file, test_line, value, allow_field=True)
            if problem:
                problems.append(problem)
                continue
            tests.append(Test(str(fname), op, operand, test_line))
    return tests, problems


def parse_operand(file: str, line: int, value: Any, allow_field: bool
                  ) -> tuple[Operand, PackProblem | None]:
    """A constant, `{ref: NAME.FIELD}` or (in a test) `{field: NAME}`."""
    if isinstance(value, dict):
        if set(value) == {"ref"} and isinstance(value["ref"], str) and value["ref"].count(".") == 1:
            name, fname = value["ref"].split(".")
            return Operand(ref=(name, fname)), None
        if allow_field and set(value) == {"field"} and isinstance(value["field"], str):
            return Operand(field=value["field"]), None
        return Operand(), PackProblem(file, line, "operand",
                                      "expected a constant, {ref: NAME.FIELD} or {field: NAME}, "
                                      f"got {plain(value)!r}")
    if value is None or not isinstance(value, str | int | float | bool | list):
        return Operand(), PackProblem(file, line, "operand", f"unsupported value {value!r}")
    if isinstance(value, list) and not allow_field:
        return Operand(), PackProblem(file, line, "operand",
                                      f"a concluded field takes one value, not a list: {value!r}")
    if isinstance(value, float) and value != value:
        return Operand(), PackProblem(file, line, "operand", "NaN is not a usable constant")
    return Operand(constant=value), None


def parse_then(file: str, raw: LineDict) -> tuple[list[Conclusion], list[PackProblem]]:
    """The rule's `then:` conclusions: each kind with its fields' values."""
    then = raw.get("then")
    line = line_of(raw, "then") or raw.line
    if not isinstance(then, dict) or not then:
        return [], [PackProblem(file, line, "missing-then",
                                f"rule {raw.get('id')!r} needs `then: {{KIND: {{FIELD: VALUE}}}}`")]
    conclusions: list[Conclusion] = []
    problems: list[PackProblem] = []
    for kind, values in then.items():
        kline = line_of(then, kind) or line
        if not isinstance(values, dict):
            problems.append(PackProblem(file, kline, "conclusion",
                                        f"conclusion {kind!r} must map fields to values"))
            continue
        pairs: list[tuple[str, Operand]] = []
        for fname, value in values.items():
            operand, problem = parse_operand(file, kline, value, allow_field=False)
            if problem:
                problems.append(problem)
            else:
                pairs.append((str(fname), operand))
        conclusions.append(Conclusion(str(kind), tuple(sorted(pairs)), kline))
    return conclusions, problems


def plain(value: Any) -> Any:
    """Strip line information so values compare, hash and print as plain data."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
