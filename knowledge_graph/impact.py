"""Portfolio impact: which conclusions, in which models, rest on a piece of evidence or a rule.

`portfolio_graph` composes the per-model provenance graphs into one graph whose node ids
are prefixed by their model (`corvid-atlas-5::evidence:atlas5-bio-acquisition-2026-01`),
and links the models the way the engine does: when a model's reference fact took its
determination from another model's assessment, that model's headline-level conclusion
(rsp-2.1's `asl`) gets an edge to each firing that used the determination (the
carry-over rules); when it took the
reference's compute, the referenced model's `model:` fact gets one to each firing that
used the compute ratio. "What rests on this evidence" then is a descendants query that
crosses models, and agrees with what `asl what-if` shows when that evidence changes.

Functions take the graph first and return plain values (lists of `(model, node)` pairs,
node ids local to their model).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping

import networkx as nx

from engine.framework import default_spec
from engine.model import Rule
from knowledge_graph.provenance import CONCLUSION, EVIDENCE, FIRING

SEPARATOR = "::"
CARRIED_OVER = "carried_over"  # role of an edge from one model's graph into another's
CARRIED_DETERMINATION = frozenset({"determination", "determination_rank"})
CARRIED_COMPUTE = frozenset({"compute_ratio"})


class UnknownEvidence(LookupError):
    """No model of the portfolio has an evidence item with this id."""

    def __init__(self, evidence_id: str, suggestions: list[str]) -> None:
        self.evidence_id = evidence_id
        self.suggestions = suggestions
        hint = f" (did you mean {suggestions[0]!r}?)" if suggestions else ""
        super().__init__(f"no evidence item {evidence_id!r} in the portfolio{hint}")


def node_id(model: str, local: str) -> str:
    """The portfolio graph's id of a model's node.

    >>> node_id("m1", "evidence:e1")
    'm1::evidence:e1'
    """
    return f"{model}{SEPARATOR}{local}"


def split(node: str) -> tuple[str, str]:
    """(model, local id) of a portfolio node; model ids never contain `:`.

    >>> split("m1::evidence:e1")
    ('m1', 'evidence:e1')
    """
    model, _, local = node.partition(SEPARATOR)
    return model, local


def _sample() -> dict[str, nx.DiGraph]:
    """Two tiny provenance graphs for the doctests: m1 concludes from its evidence e1,
    and m2 carries m1's determination over."""
    m1 = nx.DiGraph()
    m1.add_node("evidence:e1", node=EVIDENCE, kind="evaluation", values={}, info={})
    m1.add_node("firing:asl:1", node=FIRING, rule="requirements.asl")
    m1.add_node("asl(level=L3)", node=CONCLUSION, kind="asl", values={"level": "L3"})
    m1.add_edge("evidence:e1", "firing:asl:1", role="used", **{"as": "e"})
    m1.add_edge("firing:asl:1", "asl(level=L3)", role="generated")
    m2 = nx.DiGraph()
    ref = "model:m2.last_comprehensive_assessment"
    m2.add_node(ref, node=EVIDENCE, kind="reference", values={"model": "m1"},
                info={"determination_from": "assessment of m1"})
    m2.add_node("firing:carry:1", node=FIRING, rule="requirements.carry-over.security")
    m2.add_node("required(level=L3)", node=CONCLUSION, kind="required", values={})
    m2.add_edge(ref, "firing:carry:1", role="used", **{"as": "r"})
    m2.add_edge("firing:carry:1", "required(level=L3)", role="generated")
    return {"m1": m1, "m2": m2}


def rule_reads(rules: Iterable[Rule]) -> dict[str, dict[str, frozenset[str]]]:
    """For each rule, the fields it reads of each fact it matches (by the rule's name for
    that fact): the fields its tests look at and the fields its conclusions copy.

    >>> from engine.model import Condition, Conclusion, Operand, Rule, Test
    >>> when = (Condition("reference", "r", (Test("determination", "exists", Operand(True)),)),)
    >>> then = (Conclusion("requirement", (("level", Operand(ref=("r", "determination"))),)),)
    >>> rule_reads([Rule("carry", "t", "RSP v2.1 §3.1", "b", when, then, "f.yaml", 1, "p")])
    {'carry': {'r': frozenset({'determination'})}}
    """
    reads: dict[str, dict[str, frozenset[str]]] = {}
    for rule in rules:
        fields: dict[str, set[str]] = {c.name: set() for c in rule.conditions if not c.negated}
        operands = [op for c in rule.conclusions for _, op in c.values]
        for condition in rule.conditions:
            for test in condition.tests:
                operands.append(test.operand)
                if not condition.negated:
                    fields[condition.name].add(test.field)
                    if test.operand.field is not None:
                        fields[condition.name].add(test.operand.field)
        for operand in operands:
            if operand.ref is not None and operand.ref[0] in fields:
                fields[operand.ref[0]].add(operand.ref[1])
        reads[rule.id] = {name: frozenset(used) for name, used in fields.items()}
    return reads


def portfolio_graph(graphs: Mapping[str, nx.DiGraph],
                    reads: Mapping[str, Mapping[str, Collection[str]]] | None = None,
                    headline: str | None = None) -> nx.DiGraph:
    """One graph of every model's provenance, node ids prefixed by model id, with
    `carried_over` edges where a model's reference took values from another model.

    Every node keeps its attributes and gains `model` and `local` (its id in its model).
    A reference whose `determination` came from model R's assessment gets an edge from
    R's headline-level conclusion (of kind `headline`, by default the default
    framework's: `asl`), and one whose compute came from R's document an edge from R's
    `model:R` fact, to each firing that matched the reference and, by `reads` (see
    `rule_reads`), reads that value (`determination`, `determination_rank`;
    `compute_ratio`). A rule missing from `reads` (or no `reads`) counts as reading all.

    >>> g = portfolio_graph(_sample())
    >>> g.has_edge("m1::asl(level=L3)", "m2::firing:carry:1")
    True
    >>> g.nodes["m2::required(level=L3)"]["local"]
    'required(level=L3)'
    >>> reads = {"requirements.carry-over.security": {"r": {"months_since"}}}
    >>> portfolio_graph(_sample(), reads).has_edge("m1::asl(level=L3)", "m2::firing:carry:1")
    False
    """
    headline = headline or default_spec().level.kind
    composed = nx.DiGraph()
    for model, graph in sorted(graphs.items()):
        composed.add_nodes_from((node_id(model, n), {**data, "model": model, "local": n})
                                for n, data in graph.nodes(data=True))
        composed.add_edges_from((node_id(model, a), node_id(model, b), data)
                                for a, b, data in graph.edges(data=True))
    for model, graph in sorted(graphs.items()):
        for local, data in graph.nodes(data=True):
            ref = data.get("values", {}).get("model") if data.get("kind") == "reference" else None
            if data.get("node") != EVIDENCE or ref not in graphs or ref == model:
                continue
            info = data.get("info", {})
            sources = []
            if "determination_from" in info:
                sources += [(node_id(ref, n), CARRIED_DETERMINATION)
                            for n in _of_kind(graphs[ref], headline)]
            if "effective_compute_from" in info and f"model:{ref}" in graphs[ref]:
                sources.append((node_id(ref, f"model:{ref}"), CARRIED_COMPUTE))
            for _, firing, edge in graph.out_edges(local, data=True):
                name = edge.get("as")
                known = None if reads is None else reads.get(graph.nodes[firing].get("rule"))
                used = None if known is None else set(known.get(name, ()))
                for source, carried in sources:
                    if used is None or used & carried:
                        composed.add_edge(source, node_id(model, firing), role=CARRIED_OVER,
                                          **{"as": name, "via": node_id(model, local)})
    return composed


def _of_kind(graph: nx.DiGraph, kind: str) -> list[str]:
    return sorted(n for n, d in graph.nodes(data=True)
                  if d.get("node") == CONCLUSION and d.get("kind") == kind)


def evidence_nodes(G: nx.DiGraph, evidence_id: str) -> list[str]:
    """The portfolio nodes of an evidence item, in every model that states it: matched as
    `evidence:<id>` (an evaluation or finding id as written), or as a whole fact id
    (`deployment.channels:api`, `safeguard:asl3-security.audits`, `model:m1`).

    >>> evidence_nodes(portfolio_graph(_sample()), "e1")
    ['m1::evidence:e1']
    """
    wanted = {f"evidence:{evidence_id}", evidence_id}
    return sorted(n for n, d in G.nodes(data=True)
                  if d.get("node") == EVIDENCE and d.get("local") in wanted)


def evidence_ids(G: nx.DiGraph) -> list[str]:
    """Every evidence item id of the portfolio (`evidence:` prefix removed), sorted.

    >>> evidence_ids(portfolio_graph(_sample()))
    ['e1', 'model:m2.last_comprehensive_assessment']
    """
    return sorted({d["local"].removeprefix("evidence:") for _, d in G.nodes(data=True)
                   if d.get("node") == EVIDENCE})


def rests_on_evidence(G: nx.DiGraph, evidence_id: str) -> list[tuple[str, str]]:
    """(model, conclusion id) of every conclusion, in any model, that rests on the
    evidence item: its descendants, across carried-over references. Raises
    UnknownEvidence (with close matches) when no model states the item.

    >>> rests_on_evidence(portfolio_graph(_sample()), "e1")
    [('m1', 'asl(level=L3)'), ('m2', 'required(level=L3)')]
    >>> try:
    ...     rests_on_evidence(portfolio_graph(_sample()), "e11")
    ... except UnknownEvidence as exc:
    ...     print(exc)
    no evidence item 'e11' in the portfolio (did you mean 'e1'?)
    """
    sources = evidence_nodes(G, evidence_id)
    if not sources:
        suggestions = difflib.get_close_matches(evidence_id, evidence_ids(G), n=3)
        raise UnknownEvidence(evidence_id, suggestions)
    found: set[str] = set()
    for source in sources:
        found |= {n for n in nx.descendants(G, source) if G.nodes[n]["node"] == CONCLUSION}
    return sorted(split(n) for n in found)


def rule_uses(G: nx.DiGraph, rule_id: str) -> list[tuple[str, str]]:
    """(model, firing id) of every firing of the rule, sorted; empty when it never fired.

    >>> rule_uses(portfolio_graph(_sample()), "requirements.carry-over.security")
    [('m2', 'firing:carry:1')]
    """
    return sorted(split(n) for n, d in G.nodes(data=True)
                  if d.get("node") == FIRING and d.get("rule") == rule_id)


def concluded_by(G: nx.DiGraph, model: str, firing: str) -> list[str]:
    """The conclusions (local ids) one firing supports.

    >>> concluded_by(portfolio_graph(_sample()), "m1", "firing:asl:1")
    ['asl(level=L3)']
    """
    return sorted(G.nodes[n]["local"] for n in G.successors(node_id(model, firing))
                  if G.nodes[n]["node"] == CONCLUSION)


def changed_conclusions(before: nx.DiGraph, after: nx.DiGraph
                        ) -> tuple[list[str], list[str]]:
    """(added, removed): conclusion ids in `after` only and in `before` only, sorted.
    Works on one model's graphs or on two portfolio graphs alike.

    >>> old = _sample()["m1"]
    >>> new = nx.relabel_nodes(old, {"asl(level=L3)": "asl(level=L2)"})
    >>> changed_conclusions(old, new)
    (['asl(level=L2)'], ['asl(level=L3)'])
    """
    def ids(graph: nx.DiGraph) -> set[str]:
        return {n for n, d in graph.nodes(data=True) if d.get("node") == CONCLUSION}

    return sorted(ids(after) - ids(before)), sorted(ids(before) - ids(after))
