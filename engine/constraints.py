"""What values a rule's tests can ever see, and whether a set of tests can ever hold.

`asl rules validate` (engine.validate) asks two questions of every condition: can the
constant tests on one field all hold at once (`gt 5` with `lt 3` cannot), and does any
value that field can actually take pass them. The second needs each field's *domain*:
- evidence kinds: what the evidence format allows (engine.evidence_schema's enumerations, the
  pack's capability names and safeguard ids, and its framework's levels), where it
  fixes the values at all;
- pack kinds: the values the pack's own facts state;
- derived kinds: the union, over every rule concluding the kind, of the constants it
  writes and the domains of the fields it copies (`{ref: s.capability}`), to a fixpoint.
A domain of None means "any value": nothing is claimed about that field.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from engine.evidence_schema import CHANNELS, ELICITATIONS, PURPOSES, SAFEGUARD_STATUSES, VERDICTS

# Re-exported: the kinds `engine.assess.document_facts` builds from a model document
# (a pack's other evidence kinds never receive a fact).
from engine.model import EVIDENCE_KINDS as EVIDENCE_KINDS
from engine.model import ORIGIN_DERIVED, ORIGIN_EVIDENCE, ORIGIN_PACK, Pack, Rule, Test

# Re-exported: whether a value passes a test, from the one operator table.
from engine.operators import NUMBER, ORDERING, value_class
from engine.operators import holds as holds

Domain = frozenset[Any] | None  # None: the field may hold any value
Domains = dict[tuple[str, str], Domain]


def is_constant(test: Test) -> bool:
    """Whether the test compares with a constant (not another field or a bound fact)."""
    return test.operand.field is None and test.operand.ref is None


def satisfiable(tests: Sequence[Test], domain: Domain = None) -> bool:
    """Whether some value could pass every constant test in `tests` (all on one field).

    With a domain, the candidates are its values (`exists` tests are then ignored: an
    optional field may be unset). Without one, the tests are compared with each other:
    `exists: false` with a comparison, two different `eq`, disjoint `in` lists, an empty
    numeric range."""
    tests = [t for t in tests if is_constant(t)]
    valued = [t for t in tests if t.op != "exists"]
    if domain is not None:
        return any(all(holds(t.op, v, t.operand.constant) for t in valued) for v in domain)
    exists = {t.operand.constant for t in tests if t.op == "exists"}
    if exists == {True, False}:
        return False
    if False in exists and valued:  # an unset field passes no comparison, `ne` neither
        return False
    pinned = [t for t in valued if t.op in ("eq", "in")]
    if pinned:
        first = pinned[0]
        candidates = [first.operand.constant] if first.op == "eq" else first.operand.constant
        return any(all(holds(t.op, v, t.operand.constant) for t in valued) for v in candidates)
    return _range_satisfiable([t for t in valued if t.op in ORDERING])


def _range_satisfiable(tests: Sequence[Test]) -> bool:
    """Whether the bounds `gt`/`gte`/`lt`/`lte` leave any number (only numbers are
    ordered: a bound that is not a number leaves none)."""
    bounds = [(t.op, t.operand.constant) for t in tests]
    if any(value_class(c) != NUMBER for _, c in bounds):
        return False
    lows = [(c, op == "gt") for op, c in bounds if op in ("gt", "gte")]
    highs = [(c, op == "lt") for op, c in bounds if op in ("lt", "lte")]
    if not lows or not highs:
        return True
    low, low_strict = max(lows, key=lambda b: (b[0], b[1]))
    high, high_strict = min(highs, key=lambda b: (b[0], not b[1]))
    return low < high or (low == high and not (low_strict or high_strict))


def by_field(tests: Iterable[Test]) -> dict[str, list[Test]]:
    """The constant tests of a condition, grouped by the field they test."""
    grouped: dict[str, list[Test]] = {}
    for test in tests:
        if is_constant(test):
            grouped.setdefault(test.field, []).append(test)
    return grouped


def _frozen(values: Iterable[Any]) -> Domain:
    """The values as a domain, or None when one of them cannot be compared (a list)."""
    values = list(values)
    if any(isinstance(v, list | dict) for v in values):
        return None
    return frozenset(values)


def evidence_domains(pack: Pack) -> Domains:
    """The values the evidence format allows for the evidence kinds' fields."""
    levels = pack.spec.level.values
    known: Domains = {
        ("model", "has_reference"): frozenset({True, False}),
        ("reference", "determination"): frozenset(level.name for level in levels),
        ("reference", "determination_rank"): frozenset(level.rank for level in levels),
        ("evaluation", "capability"): pack.capability_names,
        ("evaluation", "purpose"): frozenset(PURPOSES),
        ("evaluation", "elicitation"): frozenset(ELICITATIONS),
        ("finding", "capability"): pack.capability_names,
        ("finding", "verdict"): frozenset(VERDICTS),
        ("channel", "name"): frozenset(CHANNELS),
        ("safeguard", "element"): frozenset(e for s in pack.standards
                                            for e in ((s.id,) if s.whole else s.elements)),
        ("safeguard", "standard"): frozenset(s.id for s in pack.standards
                                             if s.elements or s.whole),
        ("safeguard", "status"): frozenset(SAFEGUARD_STATUSES),
    }
    return {(kind, f): known.get((kind, f)) for kind, spec in pack.kinds.items()
            if spec.origin == ORIGIN_EVIDENCE for f in spec.fields}


def pack_domains(pack: Pack) -> Domains:
    """The values the pack's own facts give each field of its pack kinds."""
    domains: Domains = {}
    for kind, spec in pack.kinds.items():
        if spec.origin != ORIGIN_PACK:
            continue
        facts = [f for f in pack.facts if f.kind == kind]
        for fname in spec.fields:
            domains[(kind, fname)] = _frozen(f.values[fname] for f in facts
                                             if f.values.get(fname) is not None)
    return domains


def bound_kinds(rule: Rule) -> dict[str, str]:
    """The rule's names for the facts it matches, and their kinds."""
    return {c.name: c.kind for c in rule.conditions if not c.negated}


def field_domains(pack: Pack, rules: Sequence[Rule] | None = None) -> Domains:
    """Every declared field's domain: evidence and pack kinds as stated, derived kinds
    from what the rules concluding them write (all the pack's rules, or only `rules`),
    to a fixpoint (domains only grow)."""
    domains: Domains = {**evidence_domains(pack), **pack_domains(pack)}
    derived = {k for k, spec in pack.kinds.items() if spec.origin == ORIGIN_DERIVED}
    for kind in derived:
        for fname in pack.kinds[kind].fields:
            domains[(kind, fname)] = frozenset()
    changed = True
    while changed:
        changed = False
        for rule in pack.rules if rules is None else rules:
            bound = bound_kinds(rule)
            for concl in rule.conclusions:
                if concl.kind not in derived:
                    continue
                for fname, operand in concl.values:
                    key = (concl.kind, fname)
                    current = domains.get(key, frozenset())
                    if current is None:
                        continue
                    source: Domain
                    if operand.ref is not None:
                        name, ref_field = operand.ref
                        source = domains.get((bound.get(name, ""), ref_field))
                    else:
                        source = _frozen([operand.constant])
                    grown = None if source is None else current | source
                    if grown != current:
                        domains[key] = grown
                        changed = True
    return domains


def suggest(word: object, known: Iterable[object]) -> str:
    """`; did you mean 'X'?` for the closest known name (the first in sorted order
    among equally close ones: CBRN-9 suggests CBRN-3), or nothing."""
    names = {str(k): k for k in known}
    best, best_ratio = None, 0.6
    for name in sorted(names):
        ratio = difflib.SequenceMatcher(None, str(word), name).ratio()
        if ratio > best_ratio or (best is None and ratio >= best_ratio):
            best, best_ratio = name, ratio
    return f"; did you mean {names[best]!r}?" if best is not None else ""


def values_text(domain: frozenset[Any]) -> str:
    shown = sorted(domain, key=repr)
    text = ", ".join(repr(v) for v in shown[:8])
    return text + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")
