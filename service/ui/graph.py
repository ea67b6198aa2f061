"""The why-graph of a conclusion for a page: the drawing `asl why --format svg` makes
(knowledge_graph.export), each node a link to what is behind it, inlined in the page;
and the same chain as a nested list (knowledge_graph.explain's lines), for screen
readers and for a server without Graphviz.

Links are `/ui/...` paths with percent-encoded ids: a rule firing goes to its rule's
page, evidence to the evidence item's page, a conclusion to the model page explaining it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from markupsafe import Markup

from knowledge_graph.explain import children, label, why_tree
from knowledge_graph.export import GraphvizError, explained, render, to_dot
from knowledge_graph.provenance import CONCLUSION, EVIDENCE, FIRING
from service.ui.render import url_part


def node_href(model: str, node: str, data: dict[str, Any]) -> str | None:
    """The page behind one node of a model's provenance graph (None for pack defaults)."""
    base = f"/ui/models/{url_part(model)}"
    if data["node"] == FIRING:
        return f"/ui/rules/{url_part(data['rule'])}"
    if data["node"] == EVIDENCE:
        return f"{base}/evidence/{url_part(node)}"
    if data["node"] == CONCLUSION:
        return f"{base}?conclusion={url_part(node)}#why"
    return None


def why_svg(model: str, graph: nx.DiGraph, node: str) -> Markup | None:
    """The drawing of `node` and everything it rests on, as an inline `<svg>` whose nodes
    are links; None when Graphviz cannot draw it (the page shows the text view alone)."""
    part = explained(graph, node)
    dot = to_dot(part, "", node)
    # to_dot names the nodes n0, n1, ... in sorted id order; a second statement for the
    # same name adds the link to the node it drew.
    for i, name in enumerate(sorted(part)):
        href = node_href(model, name, part.nodes[name])
        if href is not None:
            dot.node(f"n{i}", URL=href, target="_top")
    try:
        svg = render(dot, "svg").decode("utf-8")
    except GraphvizError:
        return None
    start = svg.find("<svg")
    # Graphviz escapes every label, tooltip and link it writes, so the drawing is markup
    # we may inline; the XML prologue and doctype are dropped.
    return Markup(svg[start:]) if start >= 0 else None


@dataclass
class ChainItem:
    """One node of the text view: its lines, where it links, and what it rests on."""

    lines: list[str]
    href: str | None
    children: list[ChainItem] = field(default_factory=list)


def why_chain(model: str, graph: nx.DiGraph, node: str) -> ChainItem:
    """The explanation of `node` (knowledge_graph.explain.why_tree) as nested items."""

    def item(tree: dict[str, Any]) -> ChainItem:
        lines = ["".join(text for text, _ in line.spans) for line in label(tree)]
        if "rule" in tree:
            href: str | None = f"/ui/rules/{url_part(tree['rule'])}"
        elif tree["id"] in graph:
            href = node_href(model, tree["id"], graph.nodes[tree["id"]])
        else:
            href = None
        return ChainItem(lines, href, [item(child) for child in children(tree)])

    return item(why_tree(graph, node))
