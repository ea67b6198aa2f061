"""The provenance graph of an assessment: evidence -> rule firing -> conclusion.

Built from the engine's trace events, never from a second reading of the policy. Nodes
carry a `node` attribute naming their kind (the constants below); edges run from the
facts a firing matched to the firing (`as`: the rule's name for that fact), and from
the firing to each conclusion it supports. A conclusion reached by two firings has two
incoming edges: that is the whole record of "derived twice, asserted once".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import networkx as nx

from engine.model import ORIGIN_PACK
from knowledge_graph import stored

# Reading a graph (its node kinds, selectors, what supports what) works on a networkx
# graph and on a stored record's adjacency alike; imported from here as ever.
from knowledge_graph.reading import CONCLUSION as CONCLUSION
from knowledge_graph.reading import DEFAULT as DEFAULT
from knowledge_graph.reading import EVIDENCE as EVIDENCE
from knowledge_graph.reading import FIRING as FIRING
from knowledge_graph.reading import NODE_KINDS as NODE_KINDS
from knowledge_graph.reading import Subject as Subject
from knowledge_graph.reading import UnknownConclusion as UnknownConclusion
from knowledge_graph.reading import find_conclusion as find_conclusion
from knowledge_graph.reading import matched as matched
from knowledge_graph.reading import parse_selector as parse_selector
from knowledge_graph.reading import subjects_for as subjects_for
from knowledge_graph.reading import supports as supports

if TYPE_CHECKING:  # the engine's evaluator is imported where a graph is built from it,
    # so that explaining a stored graph (`asl why MODEL`) does not load durable-rules
    from engine.evaluator import Derivation, Event, Fact, Firing


def __getattr__(name: str) -> dict[str, Subject]:
    """`SUBJECTS`: the default framework's selector subjects (`subjects_for()`)."""
    if name == "SUBJECTS":
        return subjects_for()
    raise AttributeError(name)


def _fact_attrs(fact: Fact, node: str) -> dict[str, Any]:
    return {"node": node, "kind": fact.kind, "values": dict(fact.values), "info": dict(fact.info),
            "label": fact.info.get("display_id", fact.id)}


def build(events: Iterable[Event]) -> nx.DiGraph:
    """The provenance graph of one assessment, from its trace events (`graph_of` builds
    the same graph from the derivation itself, without events).

    >>> from engine.evaluator import Fact, Firing, FactAsserted, RuleFired, ConclusionDerived
    >>> from engine.model import Rule
    >>> rule = Rule("r", "A rule", "RSP v2.1 §1", "because", (), (), "f.yaml", 1, "p")
    >>> e = Fact("evidence:e1", "evaluation", {"score": 0.9}, "evidence")
    >>> c = Fact("signal(x=1)", "signal", {"x": 1}, "derived")
    >>> f = Firing("firing:r:1", rule, (("e", e.id),), "because", [c.id])
    >>> g = build([FactAsserted(e), RuleFired(f, 0), ConclusionDerived(c, f, True)])
    >>> sorted(g.nodes(data="node"))
    [('evidence:e1', 'evidence'), ('firing:r:1', 'firing'), ('signal(x=1)', 'conclusion')]
    """
    from engine.evaluator import ConclusionDerived, FactAsserted, RuleFired

    nodes: list[tuple[str, dict[str, Any]]] = []
    edges: list[tuple[str, str, dict[str, Any]]] = []
    for event in events:  # nodes and edges keep the order of the trace
        if isinstance(event, FactAsserted):
            node = DEFAULT if event.fact.origin == ORIGIN_PACK else EVIDENCE
            nodes.append((event.fact.id, _fact_attrs(event.fact, node)))
        elif isinstance(event, RuleFired):
            nodes.append((event.firing.id, _firing_attrs(event.firing, event.stratum)))
            edges.extend((fact_id, event.firing.id, {"role": "used", "as": name})
                         for name, fact_id in event.firing.matched)
        elif isinstance(event, ConclusionDerived):
            if event.new:
                nodes.append((event.fact.id, _fact_attrs(event.fact, CONCLUSION)))
            edges.append((event.firing.id, event.fact.id, {"role": "generated"}))
    return _graph(nodes, edges)


Node = tuple[str, dict[str, Any]]  # a node id and its attributes
Edge = tuple[str, str, dict[str, Any]]  # source, target and the edge's attributes


def elements(derivation: Derivation) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges of an assessment's provenance graph, with their attributes,
    in the order the graph has them: the facts asserted, then each firing with the facts
    it matched and the conclusions it supports. `graph_of` builds the networkx graph of
    them, `record_of` the stored record (the same graph's bytes, without networkx)."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    stood = set()
    for fact in derivation.asserted:
        nodes.append((fact.id, _fact_attrs(fact, DEFAULT if fact.origin == ORIGIN_PACK
                                           else EVIDENCE)))
        stood.add(fact.id)
    facts = derivation.facts
    for firing in derivation.trace:
        fired = firing.id
        nodes.append((fired, _firing_attrs(firing, firing.stratum)))
        edges += [(fact_id, fired, {"role": "used", "as": name})
                  for name, fact_id in firing.matched]
        for fact_id in firing.conclusions:
            if fact_id not in stood:
                stood.add(fact_id)
                nodes.append((fact_id, _fact_attrs(facts[fact_id], CONCLUSION)))
            edges.append((fired, fact_id, {"role": "generated"}))
    return nodes, edges


def graph_of(derivation: Derivation) -> nx.DiGraph:
    """The provenance graph of one assessment, built on demand from its derivation
    (`elements`): the same nodes, edges and attributes, in the same order, as `build` of
    its trace events."""
    return _graph(*elements(derivation))


class Record(NamedTuple):
    """What the store keeps of an assessment's provenance (store.record.NewAssessment)."""

    blob: bytes  # `dump` of its graph
    fired: list[str]  # `fired_rules` of its graph
    kinds: list[str]  # `kinds` of its graph


def record_of(derivation: Derivation) -> Record:
    """`Record(dump(g), fired_rules(g), kinds(g))` of `g = graph_of(derivation)`, the same
    bytes and lists, written from the derivation's `elements` without building the graph
    (what a batch worker and the service store of each assessment)."""
    nodes, edges = elements(derivation)
    attrs: Mapping[str, dict[str, Any]] = dict(nodes)  # each node's, as the graph has them
    if len(attrs) < len(nodes):  # a node given twice: its attributes merged
        attrs = stored.adjacency(nodes, ()).nodes
    return Record(stored.encode_elements(nodes, edges), rules_among(attrs.values()),
                  kinds_among(attrs.values()))


def _firing_attrs(firing: Firing, stratum: int) -> dict[str, Any]:
    rule = firing.rule
    return {"node": FIRING, "rule": rule.id, "title": rule.title, "cite": rule.cite,
            "because": firing.because, "stratum": stratum, "pack": rule.pack,
            "file": rule.file, "line": rule.line, "label": rule.id,
            "replaces": rule.replaces, "rationale": rule.rationale}


def _graph(nodes: list[tuple[str, dict[str, Any]]],
           edges: list[tuple[str, str, dict[str, Any]]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def conclusions_of(derivation: Derivation) -> list[dict[str, Any]]:
    """`conclusions(graph_of(derivation))`, read off the derivation without building
    the graph: what every assessment document carries."""
    stood = {fact.id for fact in derivation.asserted}
    supports: dict[str, dict[str, Firing]] = {}
    for firing in derivation.trace:
        for fact_id in firing.conclusions:
            if fact_id not in stood:
                supports.setdefault(fact_id, {})[firing.id] = firing
    facts = derivation.facts
    out = []
    for fact_id in sorted(supports):
        fact = facts[fact_id]
        entries = []
        for firing in sorted(supports[fact_id].values(), key=_rule_then_id):
            rule = firing.rule
            entries.append({"rule": rule.id, "pack": rule.pack, "cite": rule.cite,
                            "because": sorted({i for _, i in firing.matched}),
                            "text": firing.because})
        first = entries[0]
        out.append({"id": fact_id, "kind": fact.kind, "value": dict(fact.values),
                    "rule": first["rule"], "pack": first["pack"], "cite": first["cite"],
                    "because": first["because"], "text": first["text"], "supports": entries})
    return out


def _rule_then_id(firing: Firing) -> tuple[str, str]:
    return firing.rule.id, firing.id


def conclusions(graph: nx.DiGraph) -> list[dict[str, Any]]:
    """The graph flattened into the `conclusions` list of the assessment output: every
    derived fact with the rule that derived it, the pack that rule came from, its
    citation and the facts it rests on (`because`). A fact derived by several firings
    lists them all under `supports`; its `rule`, `pack`, `cite` and `because` are those
    of the first (by rule id)."""
    out = []
    nodes = graph.nodes
    for node in sorted(n for n, kind in graph.nodes(data="node") if kind == CONCLUSION):
        data = nodes[node]
        entries = []
        for firing in supports(graph, node):
            fdata = nodes[firing]
            entries.append({"rule": fdata["rule"], "pack": fdata["pack"], "cite": fdata["cite"],
                            "because": sorted(graph.pred[firing]),
                            "text": fdata["because"]})
        first = entries[0]
        out.append({"id": node, "kind": data["kind"], "value": data["values"],
                    "rule": first["rule"], "pack": first["pack"], "cite": first["cite"],
                    "because": first["because"], "text": first["text"], "supports": entries})
    return out


def roots(graph: nx.DiGraph, node: str) -> set[str]:
    """The evidence and pack-default facts a node ultimately rests on.

    >>> g = nx.DiGraph()
    >>> g.add_node("e", node=EVIDENCE); g.add_node("f", node=FIRING)
    >>> g.add_node("c", node=CONCLUSION); g.add_edges_from([("e", "f"), ("f", "c")])
    >>> sorted(roots(g, "c"))
    ['e']
    """
    found = {n for n in nx.ancestors(graph, node) | {node}
             if graph.nodes[n]["node"] in (EVIDENCE, DEFAULT)}
    return found


def dump(graph: nx.DiGraph) -> bytes:
    """The graph in its stored form (knowledge_graph.stored: a node table and edges by
    index, zstd-compressed with a shared dictionary, about 2 KiB a model): `load` gives
    back the same nodes, edges and attributes, in the same order, so an explanation can
    be drawn from the record without the evidence file.

    >>> g = nx.DiGraph(); g.add_node("e", node=EVIDENCE, values={"score": 0.5})
    >>> g.add_node("c", node=CONCLUSION); g.add_edge("e", "c", role="used")
    >>> h = load(dump(g))
    >>> (list(h.nodes(data=True)), list(h.edges(data=True))) == (
    ...     list(g.nodes(data=True)), list(g.edges(data=True)))
    True
    """
    return stored.encode(graph)


def load(blob: bytes) -> nx.DiGraph:
    """A graph stored by `dump` (or by the zlib'd JSON of records before revision 0008)."""
    return stored.decode(blob)


def fired_rules(graph: nx.DiGraph) -> list[str]:
    """The ids of the rules that fired, sorted: what the record keeps of the derivation
    for re-assessment (store.record)."""
    return rules_among(graph.nodes.values())


def rules_among(nodes: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of the rules of the firings among these nodes' attributes, sorted."""
    return sorted({d["rule"] for d in nodes if d["node"] == FIRING})


def edge_rows(graph: nx.DiGraph) -> list[tuple[str, str, str, str | None, str]]:
    """Every edge as a row (source, target, role, name, rule id): a fact used by a
    firing (with the rule's name for it), or a conclusion generated by one; the rule id
    is the firing's rule either way. The record no longer stores these rows (revision
    0008): `store.record.NewAssessment.build` keeps only their rule ids (`fired_rules`)."""
    rows = []
    for source, target, data in graph.edges(data=True):
        firing = target if data["role"] == "used" else source
        rows.append((source, target, data["role"], data.get("as"),
                     graph.nodes[firing]["rule"]))
    return rows


def kinds(graph: nx.DiGraph) -> list[str]:
    """The kinds of fact in the graph (evidence, pack defaults and conclusions)."""
    return kinds_among(graph.nodes.values())


def kinds_among(nodes: Iterable[dict[str, Any]]) -> list[str]:
    """The kinds of fact among these nodes' attributes, sorted."""
    return sorted({d["kind"] for d in nodes if d["node"] != FIRING})
