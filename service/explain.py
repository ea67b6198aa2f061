"""`GET /v1/models/{model}/why`: a stored assessment explained exactly as `asl why MODEL`
prints it, from the stored provenance graph, with the same knowledge_graph functions
(json and text: the explanation tree; svg, dot and prov-json: the conclusion and
everything it rests on, as a graph)."""

from __future__ import annotations

from engine.jsontext import dumps
from knowledge_graph import stored
from knowledge_graph.explain import render_text, why_tree
from knowledge_graph.export import GraphvizError, explained, export
from knowledge_graph.reading import Graph, Subject, UnknownConclusion, find_conclusion
from service.problems import Problem

MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "dot": "text/vnd.graphviz",
    "prov-json": "application/json",
}
GRAPH_FORMATS = ("svg", "dot", "prov-json")


def explain(model: str, blob: bytes, selector: str, fmt: str,
            subjects: dict[str, Subject] | None = None) -> bytes:
    """The explanation of `selector` (`all`: the whole provenance, graph formats only)
    in the stored provenance graph `blob` of `model`, as `asl why` writes it;
    `subjects`: the selector subjects of the framework the assessment was made under
    (`subjects_for`), so that its own selectors (openai-pf-2's `research:NAME`, ...)
    resolve. A tree (json, text) is explained from the record's adjacency, decoded as
    it is read, as `asl why MODEL` does; a graph format needs the networkx graph."""
    if selector == "all" and fmt not in GRAPH_FORMATS:
        raise Problem(422, "conclusion=all needs a graph format: format="
                      + "|".join(GRAPH_FORMATS))
    heading = f"{model}: why {selector}?"
    if fmt in GRAPH_FORMATS:
        graph = stored.decode(blob)
        node = None if selector == "all" else _conclusion(model, graph, selector, subjects)
        part = graph if node is None else explained(graph, node)
        title = f"{model}: provenance" if node is None else heading
        try:
            return export(part, fmt, title, node)
        except GraphvizError as exc:
            raise Problem(503, str(exc)) from None
    adjacency = stored.decode_adjacency(blob)
    node = _conclusion(model, adjacency, selector, subjects)
    tree = why_tree(adjacency, node)
    if fmt == "json":
        text = dumps({"model": model, "conclusion": node, "explanation": tree})
        return f"{text}\n".encode()
    return f"{heading}\n{render_text(tree)}".encode()


def _conclusion(model: str, graph: Graph, selector: str,
                subjects: dict[str, Subject] | None) -> str:
    """The node `selector` names in `graph`; 404 when it names none."""
    try:
        return find_conclusion(graph, selector, subjects)
    except UnknownConclusion:
        raise Problem(404, f"{model} has no conclusion {selector!r}; try decision, a key of "
                      "the result (asl, level, required.security, ...), threshold:NAME "
                      "or an id from the assessment's conclusions") from None
