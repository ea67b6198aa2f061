"""Reading a provenance graph: what its nodes are, which conclusion a selector names,
and what supports what, whichever holds the graph.

A networkx `DiGraph` (an assessment made now, or a graph format to draw) and a stored
record's adjacency (`knowledge_graph.stored.Adjacency`, what `asl why MODEL` explains
without importing networkx) both offer what these functions read: `graph.nodes`, a
mapping of each node to its attributes, and `graph.pred`, a mapping of each node to its
predecessors and the edges' attributes, each in the order the graph was built. So the
one explanation walker (`knowledge_graph.explain.why_tree`) and the one selector
grammar serve both, and give the same answer from either. This module imports neither
networkx nor the engine's evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from engine.framework import FrameworkSpec, default_spec

EVIDENCE = "evidence"  # a fact from the analyst's model document
DEFAULT = "default"  # a fact the rule pack states (catalogue entries, baseline, defaults)
FIRING = "firing"  # one rule firing
CONCLUSION = "conclusion"  # a derived fact
NODE_KINDS = (EVIDENCE, DEFAULT, FIRING, CONCLUSION)


class Graph(Protocol):
    """What reading a provenance graph needs of it: a networkx DiGraph has it, and so
    has a stored record's adjacency."""

    @property
    def nodes(self) -> Mapping[Any, dict[str, Any]]: ...

    @property
    def pred(self) -> Mapping[Any, Mapping[Any, dict[str, Any]]]: ...


class UnknownConclusion(LookupError):
    """A conclusion was asked for that this assessment does not contain."""


class Subject(NamedTuple):
    """What a selector's subject names: conclusions of `kind`, told apart by the field
    `key` (which the selector's argument gives); `value` is the field a why-not target
    sets (None: the conclusion is present or absent), and `category` the capability
    category the argument must have, if any."""

    kind: str
    key: str | None = None
    value: str | None = None
    category: str | None = None


def subjects_for(spec: FrameworkSpec | None = None) -> dict[str, Subject]:
    """The selector subjects of a framework's results (`FrameworkSpec.subjects`: `level`,
    each output key's selector, each output kind; for rsp-2.1 `asl`, `decision`,
    `comprehensive`, `required`, `threshold`, `checkpoint`, `ongoing`, `status`,
    `action`, `missing`, ...), by default the default framework's."""
    return {name: Subject(*parts) for name, parts in (spec or default_spec()).subjects().items()}


def parse_selector(text: str) -> tuple[str, str]:
    """(subject, argument) of a conclusion selector, the one grammar `asl why
    --conclusion`, why-not targets and `asl diff` share: `SUBJECT`, `SUBJECT:ARG` or
    `SUBJECT.ARG` (spaces around either part ignored).

    >>> parse_selector("status:Some capability"), parse_selector("required.security")
    (('status', 'Some capability'), ('required', 'security'))
    >>> parse_selector("status: Some capability"), parse_selector("level")
    (('status', 'Some capability'), ('level', ''))
    """
    name, colon, arg = (part.strip() for part in text.partition(":"))
    if not colon and "." in name:
        name, _, arg = (part.strip() for part in text.partition("."))
    return name, arg


def supports(graph: Graph, conclusion: str) -> list[str]:
    """The firings that support a conclusion, sorted by rule id then firing id."""
    data = graph.nodes
    return sorted(graph.pred[conclusion], key=lambda f: (data[f]["rule"], f))


def matched(graph: Graph, firing: str) -> list[str]:
    """The facts a firing matched, in the order of the rule's conditions' names."""
    used = graph.pred[firing]
    return sorted(used, key=lambda fact: (used[fact]["as"], fact))


def find_conclusion(graph: Graph, selector: str,
                    subjects: dict[str, Subject] | None = None) -> str:
    """Resolve a selector (`level`, `decision`, `required.security`, `status:NAME`,
    `action:NAME`, a subject of the framework's own such as rsp-2.1's `asl`,
    `threshold:NAME` or `missing:SAFEGUARD`, or a conclusion id) to the conclusion's node
    id. `subjects`: the framework's (`subjects_for`), by default the default framework's.

    >>> from knowledge_graph.stored import adjacency
    >>> g = adjacency([("signal(x=1)", {"node": CONCLUSION, "kind": "signal",
    ...                                  "values": {"x": 1}})], [])
    >>> find_conclusion(g, "signal", {}), find_conclusion(g, "signal(x=1)", {})
    ('signal(x=1)', 'signal(x=1)')
    """
    nodes = graph.nodes
    if selector in nodes and nodes[selector]["node"] == CONCLUSION:
        return selector
    name, arg = parse_selector(selector)
    known = subjects if subjects is not None else subjects_for()
    subject = known.get(name, Subject(name))  # any other kind: its first conclusion
    kind = subject.kind
    wanted = {subject.key: arg} if subject.key is not None else {}
    for node in sorted(nodes):  # by id; a stored record's nodes decoded as they are read
        data = nodes[node]
        if data["node"] == CONCLUSION and data["kind"] == kind and all(
                data["values"].get(k) == v for k, v in wanted.items()):
            return node
    raise UnknownConclusion(selector)
