"""A rule in words: the one printer of rules and of their parts.

Whatever shows a rule, or part of one, to a person goes through here: `asl rules list`
and `show` and the service's rules endpoints (`rule_row`, `rule_links`, `rule_source`),
the rule reference (`engine.reference`), `asl rules diff` (`rule_parts`), validation
messages (`Test.text`), why-not (`condition_text`, `conclusion_text`, `test_text`) and
the rule headings of explanations (`cite_text`).

One notation throughout: a test `score < warning_score`, `verdict in [crossed,
cannot_rule_out]`, `value is set`; a condition `match evaluation as e where purpose ==
rule_in` or `none: required where rank > r.rank`; a conclusion `signal
capability=e.capability, value=crossed`. Constants are spelled as explanations show
values (`proceed`, `true`, `is set`) or, in messages to pack authors where a constant's
type matters, `quoted` as the pack states it (`'upper'`, `exists True`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.facts_id import render_value
from engine.model import Conclusion, Condition, Operand, Pack, Rule, Test
from engine.operators import OPERATOR_TEXT
from engine.packstack import is_builtin_framework

if TYPE_CHECKING:  # an annotation only: citing a rule does not need the evaluator
    from engine.evaluator import Fact


def literal(value: Any, quoted: bool = False) -> str:
    """A constant: `crossed`, `3`, `true`; quoted, `'crossed'`, `3`, `True`."""
    return repr(value) if quoted else render_value(value)


def operand_text(operand: Operand, quoted: bool = False) -> str:
    """The right side of a test or a conclusion's value: a field of the same fact
    (`warning_score`), a field of a fact bound earlier (`s.capability`) or a constant."""
    if operand.field is not None:
        return operand.field
    if operand.ref is not None:
        return f"{operand.ref[0]}.{operand.ref[1]}"
    return literal(operand.constant, quoted)


def test_text(test: Test, quoted: bool = False) -> str:
    """A test: `score < warning_score`, `value == proceed`, `tier in [lower, upper]`,
    `determination is set`; quoted, as the pack states it: `tier in ['lower']`,
    `determination exists True`.

    >>> test_text(Test("tier", "in", Operand(constant=["lower"])), quoted=True)
    "tier in ['lower']"
    >>> test = Test("determination", "exists", Operand(constant=False))
    >>> test_text(test), test_text(test, quoted=True)
    ('determination is unset', 'determination exists False')
    """
    if test.op == "exists" and not quoted:
        return f"{test.field} {'is set' if test.operand.constant else 'is unset'}"
    if test.op == "in":
        return f"{test.field} in [{', '.join(literal(v, quoted) for v in test.operand.constant)}]"
    return f"{test.field} {OPERATOR_TEXT[test.op]} {operand_text(test.operand, quoted)}"


def condition_text(cond: Condition, quoted: bool = False,
                   bound: Mapping[str, Fact] | None = None) -> str:
    """A condition: `match evaluation as e where purpose == rule_in`, `none: required
    where rank > r.rank`. With `bound` (the facts a partial match bound to names), each
    reference to one shows its value: `capability == s.capability (CBRN-3)`."""
    tests = []
    for test in cond.tests:
        text = test_text(test, quoted)
        ref = test.operand.ref
        if bound is not None and ref is not None and ref[0] in bound:
            fact = bound[ref[0]]
            value = fact.id if ref[1] == "id" else fact.values.get(ref[1])
            text += f" ({render_value(value)})" if value is not None else " (unset)"
        tests.append(text)
    head = f"none: {cond.kind}" if cond.negated else f"match {cond.kind} as {cond.name}"
    return head + (" where " + ", ".join(tests) if tests else "")


def conclusion_text(concl: Conclusion, quoted: bool = False) -> str:
    """A conclusion: `signal capability=e.capability, value=crossed`."""
    return f"{concl.kind} " + ", ".join(f"{name}={operand_text(op, quoted)}"
                                        for name, op in concl.values)


def cite_text(cite: str, pack: str | None) -> str:
    """A rule's citation, naming its pack when that is not a built-in framework:
    `RSP v2.1 §2`, `RSP v2.1 §2; pack acme-lab`."""
    return f"{cite}; pack {pack}" if pack and not is_builtin_framework(pack) else cite


def rule_parts(rule: Rule) -> dict[str, list[str]]:
    """A rule as lines per part, constants quoted (absent optional parts are empty): what
    `asl rules diff` compares."""
    return {
        "title": [rule.title], "cite": [rule.cite], "because": [rule.because],
        "when": [condition_text(c, quoted=True) for c in rule.conditions],
        "then": [conclusion_text(c, quoted=True) for c in rule.conclusions],
        "replaces": [rule.replaces] if rule.replaces else [],
        "rationale": [rule.rationale] if rule.rationale else [],
        "pack": [rule.pack],
    }


def rule_row(pack: Pack, rule: Rule) -> dict[str, Any]:
    """What a listing of rules shows of one: id, title, citation, stratum, pack, and
    where it is written."""
    return {"id": rule.id, "title": rule.title, "cite": rule.cite,
            "stratum": pack.stratum_of(rule.id), "pack": rule.pack,
            "file": rule.file, "line": rule.line}


def rule_source(rule: Rule) -> str:
    """The rule's text as written in its file: from its `- id:` line to the next rule
    (its parsed source as JSON when the file cannot be read)."""
    try:
        lines = Path(rule.file).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    if not 0 < rule.line <= len(lines):
        return json.dumps(rule.source, indent=2, ensure_ascii=False)
    first = lines[rule.line - 1]
    indent = len(first) - len(first.lstrip(" -"))
    out = [first]
    for line in lines[rule.line:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        out.append(line)
    while out and (not out[-1].strip() or out[-1].lstrip().startswith("#")):
        out.pop()
    return "\n".join(out)


def rule_links(pack: Pack, rule: Rule) -> dict[str, list[str]]:
    """Which rules produce what `rule` reads (`fed_by`) and read what it produces
    (`feeds`), each as `RULE (KIND)`, `RULE (none KIND)` for a negation; and where each
    kind it reads comes from when no rule produces it (`given`: `KIND (evidence)`,
    `KIND (pack)`)."""
    from engine.strata import dependency_graph  # networkx: not for every reader of rules

    graph = dependency_graph(pack.rules)
    fed_by, feeds, given = set(), set(), set()
    for kind in sorted(rule.consumes | rule.negates):
        makers = {d["rule"] for _, _, d in graph.in_edges(kind, data=True)} if kind in graph \
            else set()
        fed_by |= {f"{m} ({kind})" for m in makers}
        if not makers:
            given.add(f"{kind} ({pack.kinds[kind].origin})")
    for kind in sorted(rule.produces):
        for _, _, data in graph.out_edges(kind, data=True):
            feeds.add(f"{data['rule']} ({'none ' if data['negated'] else ''}{kind})")
    return {"fed_by": sorted(fed_by), "feeds": sorted(feeds), "given": sorted(given)}


def catalogue(pack: Pack) -> dict[str, Any]:
    """The names evidence may use under `pack`, as its catalogue states them: each
    capability (the `threshold` of evaluations and findings) with its category, and each
    safeguard standard with its elements (the `id`s of `safeguards`), in catalogue order,
    with the title, the pack that declared it and where."""
    stated = {(fact.kind, fact.values.get("name")): fact for fact in pack.facts
              if fact.kind in ("capability", "standard")}

    def where(kind: str, name: str) -> dict[str, Any]:
        fact = stated.get((kind, name))
        if fact is None:
            return {"title": name, "file": "", "line": 0}
        return {"title": fact.title, "file": fact.file, "line": fact.line}

    return {
        "pack": pack.name,
        "capabilities": [{"name": c.name, "category": c.category, "pack": c.pack,
                          **where("capability", c.name)} for c in pack.capabilities],
        "safeguards": [{"id": s.id, "level": s.attributes.get("level"), "pack": s.pack,
                        **where("standard", s.id),
                        "elements": [{"id": e, "pack": s.element_packs.get(e, s.pack)}
                                     for e in s.elements]}
                       for s in pack.standards],
    }


def catalogue_entry(listed: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The entry for `name` in `listed` (a pack's `catalogue`): a capability, a standard
    or an element, as `catalogue` gives it, with `entry` saying which; None when it has
    none."""
    for capability in listed["capabilities"]:
        if capability["name"] == name:
            return {"entry": "capability", **capability}
    for standard in listed["safeguards"]:
        if standard["id"] == name:
            return {"entry": "standard", **standard}
        for element in standard["elements"]:
            if element["id"] == name:
                return {"entry": "element", **element, "standard": standard["id"]}
    return None
