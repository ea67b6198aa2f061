"""Each rule of a compiled pack worked out once for firing it: which matched facts it
names and in what order, each conclusion's fields and fact-id template, and its `because`
sentence split into text and placeholders. The evaluator (`engine.evaluator`) turns
every activation into a firing with these, without reading the rule again: per firing
it only looks values up by position and joins ready-made text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.facts_id import IdTemplate, render_value
from engine.loader import PLACEHOLDER
from engine.model import Conclusion, Rule

if TYPE_CHECKING:
    from engine.evaluator import Fact


def _literal(text: str) -> str:
    """`text` as literal text inside a `str.format` template."""
    return text.replace("{", "{{").replace("}", "}}")


class Because:
    """A rule's `because` sentence split once into text and `{name.field}` placeholders
    and kept as a `str.format` template, filled per firing with each placeholder's
    rendered value (`fill_because` reads the same sentence the same way)."""

    __slots__ = ("_format", "_holes")

    def __init__(self, template: str) -> None:
        text: list[str] = []
        holes: list[tuple[str, str | None]] = []
        for index, part in enumerate(PLACEHOLDER.split(template)):
            if index % 2:
                name, _, fname = part.partition(".")
                text.append(f"{{{len(holes)}}}")
                holes.append((name, None if fname == "id" else fname))
            else:
                text.append(_literal(part))
        self._format = "".join(text)
        self._holes = tuple(holes)

    def fill(self, bound: dict[str, Fact]) -> str:
        """The sentence with each placeholder replaced by the matched fact's value (its
        display id for `.id`), `(unset)` when the fact leaves the field unset."""
        values = []
        for name, fname in self._holes:
            fact = bound[name]
            raw = (fact.info.get("display_id", fact.id) if fname is None
                   else fact.values.get(fname))
            values.append(raw if raw.__class__ is str
                          else "(unset)" if raw is None else render_value(raw))
        return self._format.format(*values)


class Derive:
    """One conclusion of a rule compiled once: its kind, where each variable field's
    value comes from (`refs`: the position of the matched fact among the plan's names
    and its field, `None` for its id), the conclusion's values with the constants in
    place (`blank`, in the conclusion's field order) and its id template."""

    __slots__ = ("blank", "conclusion", "fields", "ids", "kind", "refs", "variables")

    def __init__(self, conclusion: Conclusion, positions: dict[str, int]) -> None:
        self.conclusion = conclusion
        self.kind = conclusion.kind
        self.fields = [(fname, operand.ref, operand.constant)
                       for fname, operand in conclusion.values]
        # (conclusion field, matched name, its field, position of the matched fact,
        #  its field or None for its id)
        self.refs = tuple((fname, name, source, positions[name],
                           None if source == "id" else source)
                          for fname, operand in conclusion.values if operand.ref is not None
                          for name, source in (operand.ref,))
        self.variables = tuple(fname for fname, *_ in self.refs)
        self.blank: dict[str, Any] = {fname: constant for fname, _, constant in self.fields}
        self.ids = IdTemplate(conclusion.kind, {fname: operand.constant for fname, operand
                                                in conclusion.values if operand.ref is None},
                              self.variables)


class Plan:
    """What firing one compiled rule takes, worked out once per pack: the rule, its
    stratum, its matched names in sorted order with the matcher's alias for each
    (`names`; also apart, as `keys` and `aliases`; `single` when there is one), and its
    conclusions and `because` sentence compiled."""

    __slots__ = ("aliases", "because", "derive", "keys", "names", "prefix", "rule",
                 "single", "stratum")

    def __init__(self, rule: Rule, stratum: int, aliases: dict[str, str]) -> None:
        self.rule = rule
        self.stratum = stratum
        self.names = sorted((name, alias) for alias, name in aliases.items())
        self.keys = tuple(name for name, _ in self.names)
        self.aliases = tuple(alias for _, alias in self.names)
        self.single = len(self.names) == 1
        self.prefix = f"firing:{rule.id}["
        positions = {name: index for index, name in enumerate(self.keys)}
        self.derive = [Derive(c, positions) for c in rule.conclusions]
        self.because = Because(rule.because)
