"""Export a provenance graph for other tools: DOT, SVG and PNG (Graphviz), PROV-JSON (W3C
PROV through the `prov` package) and GraphML (networkx).

Only SVG and PNG need Graphviz's `dot` program (DRAWN_FORMATS): they are laid out and
drawn by running it. DOT text is written by the `graphviz` Python package alone, and
PROV-JSON and GraphML never touch Graphviz.

`explained` cuts the graph down to one conclusion and everything it rests on; the
exporters take any provenance graph (that cut, or a model's whole provenance) and are
deterministic: nodes and edges are emitted sorted, so a DOT file can be a golden file.

In the drawing, edges keep the graph's direction (fact -> firing -> conclusion) and the
layout runs bottom to top, so conclusions sit on top and the evidence underneath.
Evidence is a light-blue note, a pack default a grey box, a rule firing a yellow rounded
box (rule id, citation, title) and a conclusion a bold green box (kind, values); the
explained conclusion is drawn thicker.
"""

from __future__ import annotations

import html
import io
import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import graphviz
import networkx as nx
from prov.constants import PROV
from prov.model import Namespace, ProvDocument

from engine.facts_id import render_value
from engine.packstack import is_builtin_framework
from knowledge_graph.provenance import CONCLUSION, DEFAULT, EVIDENCE, FIRING, matched

GRAPH_FORMATS = ("dot", "svg", "png", "prov-json", "graphml")
DRAWN_FORMATS = ("svg", "png")  # drawn by running Graphviz's `dot` program
BINARY_FORMATS = ("png",)
ASL_NS = "https://example.org/asl#"  # the `asl:` namespace of PROV identifiers
VALUE_NS = "https://example.org/asl/value#"  # `val:`: a fact's own fields
INSTALL_HINT = ("Graphviz's dot program is not installed (not on PATH); it draws "
                f"{' and '.join(DRAWN_FORMATS)}. Install it with `apt-get install graphviz` "
                "(Debian/Ubuntu) or `brew install graphviz` (macOS)")

_WIDTH = 34  # characters per label line
_MAX_VALUES = 5  # value lines shown on evidence and default nodes before "+N more"
_FIRST_KEYS = ("name", "capability", "safeguard", "element", "standard", "level", "value",
               "status", "score", "threshold_score", "warning_score")
_STYLE: dict[str, dict[str, str]] = {
    EVIDENCE: {"shape": "note", "style": "filled", "fillcolor": "#dbeafe",
               "color": "#1e3a8a"},
    DEFAULT: {"shape": "box", "style": "filled", "fillcolor": "#e5e7eb", "color": "#6b7280",
              "fontcolor": "#374151"},
    FIRING: {"shape": "box", "style": "rounded,filled", "fillcolor": "#fef3c7",
             "color": "#92400e"},
    CONCLUSION: {"shape": "box", "style": "filled,bold", "fillcolor": "#dcfce7",
                 "color": "#166534", "penwidth": "2"},
}
_FOCUS = {"fillcolor": "#86efac", "penwidth": "4"}


class GraphvizError(RuntimeError):
    """Graphviz could not draw the graph; the message says why, in one line."""


class GraphvizMissing(GraphvizError):
    """Graphviz's `dot` program is not installed (or not on PATH)."""


class GraphvizFailed(GraphvizError):
    """Graphviz ran but could not lay out or render the graph."""


def explained(graph: nx.DiGraph, node: str) -> nx.DiGraph:
    """The sub-graph explaining `node`: the node and all its ancestors.

    >>> g = nx.DiGraph([("e", "f"), ("f", "c"), ("x", "y")])
    >>> sorted(explained(g, "c"))
    ['c', 'e', 'f']
    """
    return graph.subgraph(nx.ancestors(graph, node) | {node}).copy()


# --- DOT, SVG, PNG ---------------------------------------------------------------------

def _short(text: str, width: int = _WIDTH) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _ordered(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """A fact's values, the identifying fields first, then the rest by name."""
    present = [(k, v) for k, v in values.items() if v is not None]
    return sorted(present, key=lambda kv: (
        _FIRST_KEYS.index(kv[0]) if kv[0] in _FIRST_KEYS else len(_FIRST_KEYS), kv[0]))


def _value_lines(values: dict[str, Any], limit: int | None) -> list[str]:
    pairs = [f"{k}={render_value(v)}" for k, v in _ordered(values)]
    if limit is not None and len(pairs) > limit:
        pairs = [*pairs[:limit - 1], f"+{len(pairs) - limit + 1} more"]
    return [_short(p) for p in pairs]


def _html(head: str, lines: Sequence[str], small: Sequence[str] = ()) -> str:
    """An HTML-like Graphviz label: a bold head, plain lines, then smaller lines."""
    parts = [f"<B>{html.escape(_short(head), quote=False)}</B>"]
    parts += [html.escape(line, quote=False) for line in lines]
    if small:
        text = "<BR/>".join(html.escape(line, quote=False) for line in small)
        parts.append(f'<FONT POINT-SIZE="8">{text}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _label(data: dict[str, Any]) -> str:
    kind = data["node"]
    if kind == FIRING:
        cite = data["cite"]
        if data.get("pack") and not is_builtin_framework(data["pack"]):
            cite = f"{cite}; pack {data['pack']}"
        because = textwrap.wrap(f"because {data['because']}", _WIDTH, max_lines=3,
                                placeholder=" …")
        replaces = [_short(f"replaces {data['replaces']}")] if data.get("replaces") else []
        return _html(data["rule"], [], [_short(cite), *replaces, *because])
    if kind == EVIDENCE:
        return _html(str(data.get("label", "")), [data["kind"]],
                     _value_lines(data["values"], _MAX_VALUES))
    if kind == DEFAULT:
        pack = data["info"].get("pack")
        where = [_short(f"pack {pack}")] if pack and not is_builtin_framework(pack) else []
        return _html(f"pack default · {data['kind']}", [],
                     [*where, *_value_lines(data["values"], _MAX_VALUES)])
    return _html(data["kind"], _value_lines(data["values"], None))


def _tooltip(node: str, data: dict[str, Any]) -> str:
    if data["node"] == FIRING:
        text = f"{data['rule']}: {data['title']} [{data['cite']}] because {data['because']}"
    elif data["node"] == DEFAULT:
        text = f"{node}: {data['info'].get('title', '')}"
    else:
        text = node
    escaped: str = graphviz.escape(text)  # literal backslashes, never HTML
    return escaped


def _add_node(dot: graphviz.Digraph, name: str, node: str, data: dict[str, Any],
              focus: bool) -> None:
    style = dict(_STYLE[data["node"]])
    if focus:
        style.update(_FOCUS)
    dot.node(name, _label(data), tooltip=_tooltip(node, data), **style)


def to_dot(graph: nx.DiGraph, title: str = "", focus: str | None = None) -> graphviz.Digraph:
    """The provenance graph as a Graphviz Digraph, conclusions on top; `focus` (the
    explained conclusion) is drawn thicker. Node names are n0, n1, … in sorted id order
    (provenance ids hold colons, which DOT would read as ports); each node's full id is
    its tooltip."""
    ids = {node: f"n{i}" for i, node in enumerate(sorted(graph))}
    dot = graphviz.Digraph(
        "provenance",
        graph_attr={"rankdir": "BT", "concentrate": "true", "nodesep": "0.25",
                    "ranksep": "0.45", "fontname": "Helvetica", "fontsize": "14",
                    "labelloc": "t", "label": graphviz.escape(title), "outputorder": "edgesfirst"},
        node_attr={"fontname": "Helvetica", "fontsize": "10", "margin": "0.08,0.04"},
        edge_attr={"color": "#6b7280", "arrowsize": "0.6"})
    unused = sorted(n for n in graph if graph.degree(n) == 0) if len(graph) > 1 else []
    for node in sorted(set(graph) - set(unused)):
        _add_node(dot, ids[node], node, graph.nodes[node], node == focus)
    if unused:
        # Facts no rule matched, stacked in columns inside one dashed box rather than
        # strung along the bottom of the drawing.
        with dot.subgraph(name="cluster_unused") as box:
            box.attr(label="facts no rule used", style="dashed", color="#9ca3af",
                     fontsize="11")
            for node in unused:
                _add_node(box, ids[node], node, graph.nodes[node], False)
            height = max(3, math.isqrt(len(unused)))
            for i in range(len(unused) - 1):
                if (i + 1) % height:
                    box.edge(ids[unused[i]], ids[unused[i + 1]], style="invis")
    for tail, head, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        if data.get("role") == "generated":
            dot.edge(ids[tail], ids[head], color="#166534", penwidth="1.4")
        else:
            dot.edge(ids[tail], ids[head], tooltip=graphviz.escape(str(data.get("as", ""))))
    return dot


def render(dot: graphviz.Digraph | str, fmt: str) -> bytes:
    """Lay out and render DOT with Graphviz's `dot` (`fmt`: svg, png, pdf, …).

    Raises GraphvizMissing when `dot` cannot be run, GraphvizFailed when it fails."""
    source = dot.source if isinstance(dot, graphviz.Digraph) else dot
    try:
        return bytes(graphviz.Source(source).pipe(format=fmt, quiet=True))
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing(INSTALL_HINT) from exc
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        first = stderr.strip().splitlines()[:1] or [f"exit status {exc.returncode}"]
        raise GraphvizFailed(f"Graphviz could not render the graph: {first[0]}") from exc


# --- PROV-JSON -------------------------------------------------------------------------

def _prov_id(node: str) -> str:
    """A PROV qualified name for a node id (percent-encoded, so it stays one local part)."""
    return "asl:" + quote(node, safe="-._~")


def _literal(value: Any) -> Any:
    """A PROV attribute value: scalars as they are, anything else as JSON text."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _fact_attributes(data: dict[str, Any], asl: Namespace, prov_type: str
                     ) -> dict[str, Any]:
    attrs: dict[str, Any] = {"prov:type": asl[prov_type], "asl:kind": data["kind"],
                             "prov:label": str(data.get("label", ""))}
    for key, value in sorted(data.get("info", {}).items()):
        if value is not None and key not in ("display_id", "file", "line"):
            attrs[f"asl:{key}"] = _literal(value)
    for key, value in sorted(data["values"].items()):
        if value is not None:
            attrs[f"val:{key}"] = _literal(value)
    return attrs


def to_prov(graph: nx.DiGraph) -> ProvDocument:
    """The provenance graph as a W3C PROV document.

    Evidence and pack defaults are entities; each rule firing is an activity that `used`
    the facts it matched (`prov:role`: the rule's name for the fact) and is associated
    with the pack its rule came from (a software agent); each conclusion is an entity
    that `wasGeneratedBy` its firings and `wasDerivedFrom` the facts they matched. A
    firing carries its rule's id, title, citation and filled-in `because`."""
    doc = ProvDocument()
    asl = doc.add_namespace("asl", ASL_NS)
    doc.add_namespace("val", VALUE_NS)
    types = {EVIDENCE: "Evidence", DEFAULT: "PackDefault", CONCLUSION: "Conclusion"}
    packs: set[str] = set()
    for node, data in sorted(graph.nodes(data=True)):
        if data["node"] == FIRING:
            attrs = {"prov:type": asl["RuleFiring"], "prov:label": data["title"],
                     "asl:rule": data["rule"], "asl:title": data["title"],
                     "asl:citation": data["cite"], "asl:because": data["because"],
                     "asl:pack": data["pack"], "asl:stratum": data["stratum"]}
            if data.get("replaces"):
                attrs.update({"asl:replaces": data["replaces"],
                              "asl:rationale": data.get("rationale") or ""})
            doc.activity(_prov_id(node), other_attributes=attrs)
            packs.add(data["pack"])
        else:
            doc.entity(_prov_id(node), _fact_attributes(data, asl, types[data["node"]]))
    for pack in sorted(packs):
        doc.agent(_prov_id(f"rule-pack:{pack}"), {"prov:type": PROV["SoftwareAgent"],
                                                  "prov:label": f"rule pack {pack}"})
    for node, data in sorted(graph.nodes(data=True)):
        if data["node"] != FIRING:
            continue
        firing = _prov_id(node)
        facts = matched(graph, node)
        for fact in facts:
            role = graph.edges[fact, node].get("as", "")
            doc.used(firing, _prov_id(fact), other_attributes={"prov:role": role})
        doc.wasAssociatedWith(firing, _prov_id(f"rule-pack:{data['pack']}"))
        for conclusion in sorted(graph.successors(node)):
            doc.wasGeneratedBy(_prov_id(conclusion), firing)
            for fact in facts:
                doc.wasDerivedFrom(_prov_id(conclusion), _prov_id(fact), firing)
    return doc


def to_prov_json(graph: nx.DiGraph) -> str:
    """The PROV document of `graph` serialized as PROV-JSON."""
    return str(to_prov(graph).serialize(format="json", indent=2, sort_keys=True)) + "\n"


# --- GraphML ---------------------------------------------------------------------------

def _scalar_attrs(data: dict[str, Any]) -> dict[str, Any]:
    """Attributes GraphML can hold: None dropped, dicts and lists as JSON text."""
    return {k: _literal(v) for k, v in sorted(data.items()) if v is not None}


def to_graphml(graph: nx.DiGraph, title: str = "") -> str:
    """The provenance graph as GraphML (node ids kept; `values` and `info` as JSON)."""
    flat = nx.DiGraph(name=title)
    for node, data in sorted(graph.nodes(data=True)):
        flat.add_node(node, **_scalar_attrs(data))
    for tail, head, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        flat.add_edge(tail, head, **_scalar_attrs(data))
    buffer = io.BytesIO()
    nx.write_graphml(flat, buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")


def export(graph: nx.DiGraph, fmt: str, title: str = "", focus: str | None = None) -> bytes:
    """`graph` in one of GRAPH_FORMATS, as bytes (UTF-8 text except for png), complete
    before anything is written anywhere.

    Raises GraphvizMissing or GraphvizFailed for the DRAWN_FORMATS (svg and png)."""
    if fmt == "prov-json":
        return to_prov_json(graph).encode()
    if fmt == "graphml":
        return to_graphml(graph, title).encode()
    dot = to_dot(graph, title, focus)
    if fmt == "dot":
        return str(dot.source).encode()
    if fmt not in DRAWN_FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; expected one of {GRAPH_FORMATS}")
    return render(dot, fmt)
