"""Each rule of a compiled pack worked out once for firing it: which matched facts it
names and in what order, each conclusion's fields and fact-id template, and its `because`
sentence split into text and placeholders. The evaluator (`engine.evaluator`) turns
every activation into a firing with these, without reading the rule again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.facts_id import IdTemplate, render_value
from engine.loader import PLACEHOLDER
from engine.model import Conclusion, Rule

if TYPE_CHECKING:
    from engine.evaluator import Fact


class Because:
    """A rule's `because` sentence split once into text and `{name.field}` placeholders,
    filled per firing by a join (`fill_because` reads the same sentence the same way)."""

    __slots__ = ("_parts",)

    def __init__(self, template: str) -> None:
        parts: list[str | tuple[str, str]] = []
        for index, part in enumerate(PLACEHOLDER.split(template)):
            if index % 2:
                name, _, fname = part.partition(".")
                parts.append((name, fname))
            elif part:
                parts.append(part)
        self._parts = parts

    def fill(self, bound: dict[str, Fact]) -> str:
        out = []
        for part in self._parts:
            if part.__class__ is str:
                out.append(part)
                continue
            name, fname = part
            fact = bound[name]
            raw = fact.info.get("display_id", fact.id) if fname == "id" else fact.values.get(
                fname)
            out.append("(unset)" if raw is None else render_value(raw))
        return "".join(out)


class Derive:
    """One conclusion of a rule compiled once: its kind, each field's constant or source
    (a matched name and field, in the conclusion's order) and its id template."""

    __slots__ = ("conclusion", "fields", "ids", "kind", "refs")

    def __init__(self, conclusion: Conclusion) -> None:
        self.conclusion = conclusion
        self.kind = conclusion.kind
        self.fields = [(fname, operand.ref, operand.constant)
                       for fname, operand in conclusion.values]
        self.refs = [(fname, *operand.ref) for fname, operand in conclusion.values
                     if operand.ref is not None]
        self.ids = IdTemplate(conclusion.kind, {fname: operand.constant for fname, operand
                                                in conclusion.values if operand.ref is None},
                              tuple(fname for fname, _, _ in self.refs))


class Plan:
    """What firing one compiled rule takes, worked out once per pack: the rule, its
    stratum, its matched names in sorted order with the matcher's alias for each, and
    its conclusions and `because` sentence compiled."""

    __slots__ = ("because", "derive", "names", "prefix", "rule", "stratum")

    def __init__(self, rule: Rule, stratum: int, aliases: dict[str, str]) -> None:
        self.rule = rule
        self.stratum = stratum
        self.names = sorted((name, alias) for alias, name in aliases.items())
        self.prefix = f"firing:{rule.id}["
        self.derive = [Derive(c) for c in rule.conclusions]
        self.because = Because(rule.because)
