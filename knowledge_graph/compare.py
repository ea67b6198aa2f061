"""What changed between two assessments of one model, and the evidence behind it.

`compare` takes two stored results with their provenance graphs and returns, as plain
data: each contract key whose value changed (with the conclusion that gives it and the
evidence under that conclusion that changed between the two inputs), the conclusions
added and removed, and every evidence item added, removed or changed.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.assess import OUTPUT_GROUPS
from knowledge_graph.provenance import (
    CONCLUSION,
    DEFAULT,
    EVIDENCE,
    UnknownConclusion,
    find_conclusion,
    roots,
)

STATUS_GROUPS = tuple(OUTPUT_GROUPS.values())  # thresholds, checkpoints, ongoing_assessment
LIST_KEYS = {"missing_safeguards": "missing", "actions": "action"}


def contract_values(result: dict[str, Any]) -> dict[str, Any]:
    """The contract keys of a result, flattened to `required.security`,
    `thresholds.CBRN-3` ... (lists stay lists), in the order the output contract gives."""
    flat: dict[str, Any] = {"asl": result["asl"]}
    for standard, level in sorted(result["required"].items()):
        flat[f"required.{standard}"] = level
    flat["comprehensive_assessment_required"] = result["comprehensive_assessment_required"]
    for group in STATUS_GROUPS:
        for name, status in result.get(group, {}).items():
            flat[f"{group}.{name}"] = status
    flat["decision"] = result["decision"]
    for key in LIST_KEYS:
        flat[key] = list(result[key])
    return flat


def _selectors(key: str, old: Any, new: Any) -> list[str]:
    """The conclusion selectors (knowledge_graph.provenance.find_conclusion) behind a key."""
    if key in LIST_KEYS:
        changed = sorted(set(old or []) ^ set(new or []))
        return [f"{LIST_KEYS[key]}:{item}" for item in changed]
    if key == "comprehensive_assessment_required":
        return ["comprehensive"]
    group, _, name = key.partition(".")
    if group in STATUS_GROUPS:
        return [f"status:{name}"]
    return [key]


def evidence_items(graph: nx.DiGraph) -> dict[str, dict[str, Any]]:
    """The input evidence of an assessment: id -> its values."""
    return {n: d["values"] for n, d in graph.nodes(data=True) if d["node"] == EVIDENCE}


def _rests_on(graph: nx.DiGraph, selector: str) -> tuple[str | None, set[str]]:
    try:
        node = find_conclusion(graph, selector)
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
    before, after = contract_values(old), contract_values(new)
    keys = []
    for key in [*after, *(k for k in before if k not in after)]:
        if before.get(key) == after.get(key):
            continue
        behind = []
        for selector in _selectors(key, before.get(key), after.get(key)):
            old_node, old_roots = _rests_on(old_graph, selector)
            new_node, new_roots = _rests_on(new_graph, selector)
            behind.append({
                "conclusion": {"old": old_node, "new": new_node},
                "evidence_changed": sorted((old_roots | new_roots) & moved),
                "defaults": sorted(n for n in new_roots | old_roots
                                   if _node(new_graph, old_graph, n) == DEFAULT),
            })
        keys.append({"key": key, "old": before.get(key), "new": after.get(key),
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


def value_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`score 0.41 -> 0.63`: each field of an evidence item that differs."""
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]
