"""Readable, deterministic identities for facts.

A derived fact is named by its kind and values (`status(capability=CBRN-3,value=ruled_out)`),
so the same conclusion reached twice, in any order, has one id, and an id read in an
explanation says what the fact is.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any


def render_value(value: Any) -> str:
    """A value as it appears in ids and explanations: strings bare, numbers as Python
    writes them, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value)) if abs(value) < 1e6 else repr(value)
    return str(value)


def fact_id(kind: str, values: Mapping[str, Any], prefix: str = "") -> str:
    """`kind(field=value,...)` with fields sorted, optionally prefixed (`pack:`)."""
    return _fact_id(kind, tuple((k, type(v), v) for k, v in sorted(values.items())), prefix)


@lru_cache(maxsize=65536)
def _fact_id(kind: str, items: tuple[tuple[str, type, Any], ...], prefix: str) -> str:
    # The type is part of the key so that 1, 1.0 and True are never confused.
    inner = ",".join(f"{k}={render_value(v)}" for k, _, v in items)
    return f"{prefix}{kind}({inner})"


class IdTemplate:
    """`fact_id` of one conclusion compiled once: its kind and constant fields written
    out in advance (`pieces`), so the id of each fact it derives is those pieces with
    the rendered values of its variable fields between them (`holes`: which variable
    goes after each piece but the last). The evaluator writes this out as code per rule
    (`engine.firing_plan.firing_function`); `build` is the same in one call.

    >>> t = IdTemplate("status", {"value": "ruled_out"}, ("capability",))
    >>> t.pieces, t.holes
    (('status(capability=', ',value=ruled_out)'), (0,))
    >>> t.build(["CBRN-3"]) == fact_id("status", {"value": "ruled_out", "capability": "CBRN-3"})
    True
    >>> IdTemplate("pair", {}, ("b", "a")).build(["2", "1"])
    'pair(a=1,b=2)'
    """

    __slots__ = ("holes", "pieces")

    def __init__(self, kind: str, constants: Mapping[str, Any], variables: tuple[str, ...],
                 prefix: str = "") -> None:
        pieces: list[str] = [f"{prefix}{kind}("]
        holes: list[int] = []
        for position, name in enumerate(sorted([*constants, *variables])):
            pieces[-1] += f"{',' if position else ''}{name}="
            if name in constants:
                pieces[-1] += render_value(constants[name])
            else:
                holes.append(variables.index(name))
                pieces.append("")
        pieces[-1] += ")"
        self.pieces, self.holes = tuple(pieces), tuple(holes)

    def build(self, values: list[str]) -> str:
        """The id, given the rendered values of the variable fields in their order."""
        if len(values) != len(self.holes):
            raise ValueError(f"{len(values)} values for {len(self.holes)} fields")
        out = [self.pieces[0]]
        for hole, piece in zip(self.holes, self.pieces[1:], strict=True):
            out += (values[hole], piece)
        return "".join(out)
