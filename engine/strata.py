"""Order a pack's rules into strata so negation is only ever asked of finished facts.

durable-rules fires a rule with `none(...)` as soon as its positive part matches, and never
retracts a conclusion. A rule that negates a kind therefore runs in a stratum above every
rule producing that kind; a kind that depends on its own absence (a negation cycle) has no
such order and is refused, with the cycle's path.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from engine.model import Rule


def dependency_graph(rules: Sequence[Rule]) -> nx.MultiDiGraph:
    """Kinds as nodes; an edge from each kind a rule reads to each kind it concludes,
    marked `negated` when the rule reads it through `none`, and labelled with the rule."""
    graph = nx.MultiDiGraph()
    for rule in rules:
        for produced in sorted(rule.produces):
            graph.add_node(produced)
            for consumed in sorted(rule.consumes):
                graph.add_edge(consumed, produced, rule=rule.id, negated=False)
            for negated in sorted(rule.negates):
                graph.add_edge(negated, produced, rule=rule.id, negated=True)
    return graph


def stratify(rules: Sequence[Rule]
             ) -> tuple[tuple[tuple[str, ...], ...], list[tuple[list[str], Rule]]]:
    """Return the rule ids grouped by stratum (lowest first), and every negation cycle
    found as (kind path `a -> b -> a`, the rule whose negation closes it)."""
    graph = dependency_graph(rules)
    by_id = {r.id: r for r in rules}
    cycles: list[tuple[list[str], Rule]] = []
    component_of: dict[str, int] = {}
    for index, component in enumerate(nx.strongly_connected_components(graph)):
        for node in component:
            component_of[node] = index
    seen_rules: set[str] = set()
    for source, target, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1],
                                                                               e[2]["rule"])):
        if not data["negated"] or component_of[source] != component_of[target]:
            continue
        if data["rule"] in seen_rules:
            continue
        seen_rules.add(data["rule"])
        back = nx.shortest_path(graph, target, source)
        cycles.append(([source, *back], by_id[data["rule"]]))
    if cycles:
        return (), cycles

    kind_level: dict[str, int] = {}
    rule_level: dict[str, int] = {}
    for _ in range(len(rules) + 1):
        changed = False
        for rule in rules:
            level = max([kind_level.get(k, 0) for k in rule.consumes]
                        + [kind_level.get(k, 0) + 1 for k in rule.negates] + [0])
            if rule_level.get(rule.id) != level:
                rule_level[rule.id] = level
                changed = True
            for kind in rule.produces:
                if kind_level.get(kind, 0) < level:
                    kind_level[kind] = level
                    changed = True
        if not changed:
            break
    levels = sorted(set(rule_level.values()))
    return tuple(tuple(sorted(r for r, lv in rule_level.items() if lv == level))
                 for level in levels), []
