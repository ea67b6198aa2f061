"""What changed between two assessments of one model, and the evidence behind it.

`compare` takes two stored results with their provenance graphs and returns, as plain
data: each contract key whose value changed (with the conclusion that gives it and the
evidence under that conclusion that changed between the two inputs), the conclusions
added and removed, and every evidence item added, removed or changed. Which keys
changed is `engine.contract`'s answer, the one every command gives; `contract_values`
and `value_changes` are its names, kept here for the callers that import them from here.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.contract import contract_changes, contract_values, value_changes
from engine.framework import FrameworkSpec, spec_of
from knowledge_graph.provenance import (
    CONCLUSION,
    DEFAULT,
    EVIDENCE,
    Subject,
    UnknownConclusion,
    find_conclusion,
    roots,
    subjects_for,
)

__all__ = ["compare", "contract_values", "evidence_items", "value_changes"]


def _selectors(spec: FrameworkSpec, key: str, old: Any, new: Any) -> list[str]:
    """The conclusion selectors (knowledge_graph.provenance.find_conclusion) behind a
    flattened contract key of the framework's output (`required.security`,
    `thresholds.NAME`, `actions`, ...)."""
    group, _, name = key.partition(".")
    entry = spec.key(group)
    if entry is None:
        return [key]
    selector = entry.selector or entry.key
    if entry.many:
        changed = sorted(set(old or []) ^ set(new or []))
        return [f"{selector}:{item}" for item in changed]
    if entry.category is not None:
        return [f"{entry.kind}:{name}"]
    return [f"{selector}.{name}" if entry.by else selector]


def evidence_items(graph: nx.DiGraph) -> dict[str, dict[str, Any]]:
    """The input evidence of an assessment: id -> its values."""
    return {n: d["values"] for n, d in graph.nodes(data=True) if d["node"] == EVIDENCE}


def _rests_on(graph: nx.DiGraph, selector: str, subjects: dict[str, Subject]
              ) -> tuple[str | None, set[str]]:
    try:
        node = find_conclusion(graph, selector, subjects)
    except UnknownConclusion:
        return None, set()
    return node, roots(graph, node)


def compare(old: dict[str, Any], old_graph: nx.DiGraph, new: dict[str, Any],
            new_graph: nx.DiGraph) -> dict[str, Any]:
    """The differences between an older and a newer assessment of the same model."""
    old_evidence, new_evidence = evidence_items(old_graph), evidence_items(new_graph)
    changed_evidence = {e for e in old_evidence.keys() & new_evidence.keys()
                        if old_evidence[e] != new_evidence[e]}
    moved = changed_evidence | (old_evidence.keys() ^ new_evidence.keys())
    spec = spec_of(new)
    subjects = subjects_for(spec)
    keys = []
    for change in contract_changes(old, new):
        behind = []
        for selector in _selectors(spec, change.key, change.old, change.new):
            old_node, old_roots = _rests_on(old_graph, selector, subjects)
            new_node, new_roots = _rests_on(new_graph, selector, subjects)
            behind.append({
                "conclusion": {"old": old_node, "new": new_node},
                "evidence_changed": sorted((old_roots | new_roots) & moved),
                "defaults": sorted(n for n in new_roots | old_roots
                                   if _node(new_graph, old_graph, n) == DEFAULT),
            })
        keys.append({"key": change.key, "old": change.old, "new": change.new,
                     "because": behind})
    old_conclusions = {n for n, d in old_graph.nodes(data=True) if d["node"] == CONCLUSION}
    new_conclusions = {n for n, d in new_graph.nodes(data=True) if d["node"] == CONCLUSION}
    return {
        "pack": {"old": old["pack"], "new": new["pack"]},
        "keys": keys,
        "conclusions_added": sorted(new_conclusions - old_conclusions),
        "conclusions_removed": sorted(old_conclusions - new_conclusions),
        "evidence_added": {e: new_evidence[e] for e in sorted(new_evidence.keys()
                                                              - old_evidence.keys())},
        "evidence_removed": {e: old_evidence[e] for e in sorted(old_evidence.keys()
                                                                - new_evidence.keys())},
        "evidence_changed": {e: {"old": old_evidence[e], "new": new_evidence[e]}
                             for e in sorted(changed_evidence)},
    }


def _node(new_graph: nx.DiGraph, old_graph: nx.DiGraph, node: str) -> str | None:
    graph = new_graph if node in new_graph else old_graph
    return graph.nodes[node].get("node") if node in graph else None
