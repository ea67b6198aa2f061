"""Rules whose matches grow as a product of evidence lists.

A rule joining two or more patterns on the same listed evidence kind (evaluations,
findings, channels, safeguards: a model document may give any number of each) with no
equality between them matches every combination: with 100 evaluations a three-way join
fires about a million times. Such a rule is legal and may be meant, so `asl rules
validate` warns about it rather than failing; an assessment that runs into one is
stopped by its budget (`engine.evaluator.Budget`), naming the rule.
"""

from __future__ import annotations

from collections import Counter

from engine.errors import PackProblem
from engine.model import ORIGIN_EVIDENCE, Pack, Rule

# Evidence kinds a model document gives at most once: joins on them cannot grow.
SINGLE_EVIDENCE = frozenset({"model", "reference"})


def product_joins(pack: Pack) -> list[PackProblem]:
    """A `product-join` warning for every rule joining two or more unconstrained
    patterns of one listed evidence kind: patterns tied by equality tests (directly or
    through others) count as one, since they grow together, not as a product."""
    listed = {name for name, kind in pack.kinds.items()
              if kind.origin == ORIGIN_EVIDENCE and name not in SINGLE_EVIDENCE}
    warnings = []
    for rule in pack.rules:
        free = Counter(kind for group in _groups(rule) for kind in group if kind in listed)
        for kind, count in sorted(free.items()):
            if count >= 2:
                warnings.append(PackProblem(
                    rule.file, rule.line, "product-join",
                    f"rule {rule.id} joins {count} {kind} patterns with no equality "
                    f"between them: it matches every combination, as many as the number "
                    f"of {kind} facts to the power {count} (the assessment budget stops "
                    f"it on long lists)"))
    return warnings


def _groups(rule: Rule) -> list[set[str]]:
    """The rule's positive patterns grouped by the equality tests that tie them to one
    another: each group's kinds."""
    positive = [c for c in rule.conditions if not c.negated]
    group = {c.name: c.name for c in positive}

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for cond in positive:
        for test in cond.tests:
            ref = test.operand.ref
            if test.op == "eq" and ref is not None and ref[0] in group:
                group[root(cond.name)] = root(ref[0])
    kinds: dict[str, set[str]] = {}
    for cond in positive:
        kinds.setdefault(root(cond.name), set()).add(cond.kind)
    return list(kinds.values())
