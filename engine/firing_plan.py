"""Each rule of a compiled pack worked out once for firing it: which matched facts it
names and in what order, each conclusion's fields and fact-id template, and its `because`
sentence split into text and placeholders. The evaluator (`engine.evaluator`) turns
every activation into a firing with these, without reading the rule again: per firing
it only looks values up by position and joins ready-made text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.errors import AssessmentError
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

    __slots__ = ("blank", "conclusion", "ids", "kind", "refs", "variables")

    def __init__(self, conclusion: Conclusion, positions: dict[str, int]) -> None:
        self.conclusion = conclusion
        self.kind = conclusion.kind
        # (conclusion field, matched name, its field, position of the matched fact,
        #  its field or None for its id)
        self.refs = tuple((fname, name, source, positions[name],
                           None if source == "id" else source)
                          for fname, operand in conclusion.values if operand.ref is not None
                          for name, source in (operand.ref,))
        self.variables = tuple(fname for fname, *_ in self.refs)
        self.blank: dict[str, Any] = {fname: operand.constant
                                      for fname, operand in conclusion.values}
        self.ids = IdTemplate(conclusion.kind, {fname: operand.constant for fname, operand
                                                in conclusion.values if operand.ref is None},
                              self.variables)


class Plan:
    """What firing one compiled rule takes, worked out once per pack: the rule, its
    stratum, its matched names in sorted order (`keys`) with the matcher's alias for
    each (`aliases`), its
    conclusions and `because` sentence compiled, and (`fire`) all of it as one function
    (`firing_function`), set by the evaluator, which owns the fact and firing types."""

    __slots__ = ("aliases", "because", "derive", "fire", "keys", "prefix", "rule", "stratum")

    def __init__(self, rule: Rule, stratum: int, aliases: dict[str, str]) -> None:
        self.rule = rule
        self.stratum = stratum
        names = sorted((name, alias) for alias, name in aliases.items())
        self.keys = tuple(name for name, _ in names)
        self.aliases = tuple(alias for _, alias in names)
        self.prefix = f"firing:{rule.id}["
        positions = {name: index for index, name in enumerate(self.keys)}
        self.derive = [Derive(c, positions) for c in rule.conclusions]
        self.because = Because(rule.because)


def lacking(derive: Derive, values: list[Any], bound: list[Fact]) -> AssessmentError:
    """The error for a conclusion field whose source the matched fact leaves unset (the
    first such field), `values` being the sources' values in `derive.refs`' order and
    `bound` the matched facts in the plan's order."""
    for (fname, name, source, position, _), value in zip(derive.refs, values, strict=True):
        if value is None:
            return AssessmentError(f"conclusion {derive.kind}.{fname} refers to "
                                   f"{name}.{source}, which {bound[position].id} lacks")
    raise AssertionError("no value is unset")


def firing_function(plan: Plan, firing_type: type, fact_type: type, origin: str
                    ) -> Callable[[dict[str, dict[str, Any]], dict[str, Fact], list[Fact]],
                                  Any]:
    """The plan as one function, `fire(bindings, facts, new)`: the firing of one
    activation (`bindings`: the matcher's facts by alias), each conclusion's id added
    to the firing and each conclusion not yet in `facts` made (of `origin`) and added
    to `facts` and `new`. Everything that does not depend on the matched facts is taken
    out of the plan once, here, since the same rule fires in every assessment. A plain
    closure over the plan's data: no code is generated, from the pack or otherwise."""
    aliases, keys, prefix, rule = plan.aliases, plan.keys, plan.prefix, plan.rule
    stratum, because = plan.stratum, plan.because
    derives = [(derive, tuple((position, field) for *_, position, field in derive.refs),
                derive.ids.pieces[0], tuple(zip(derive.ids.holes, derive.ids.pieces[1:],
                                                strict=True)),
                derive.blank, derive.variables, derive.kind)
               for derive in plan.derive]

    def fire(bindings: dict[str, dict[str, Any]], facts: dict[str, Fact], new: list[Fact]
             ) -> Any:
        ids = [bindings[alias]["id"] for alias in aliases]
        bound = [facts[fid] for fid in ids]
        firing = firing_type(prefix + "|".join(ids) + "]", rule, tuple(zip(keys, ids, strict=True)),
                             dict(zip(keys, bound, strict=True)), [], None, stratum, because)
        conclusions = firing.conclusions
        for derive, refs, first, rest, blank, variables, kind in derives:
            values = [ids[position] if field is None else bound[position].values.get(field)
                      for position, field in refs]
            for value in values:
                if value is None:
                    raise lacking(derive, values, bound)
            text = [first]
            for hole, piece in rest:
                value = values[hole]
                text.append(value if value.__class__ is str else render_value(value))
                text.append(piece)
            fid = "".join(text)
            conclusions.append(fid)
            if fid not in facts:
                made = blank.copy()
                made.update(zip(variables, values, strict=True))
                fact = facts[fid] = fact_type(fid, kind, made, origin)
                new.append(fact)
        return firing

    return fire
