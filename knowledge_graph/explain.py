"""Answer "why this conclusion?" from the provenance graph, as a tree down to evidence.

`why_tree` walks the graph from a conclusion through each supporting rule firing to the
facts that firing matched, recursively, ending at evidence from the model document or
at a pack default. A node already explained higher up is referred to, not repeated, so
the tree stays readable. `render_text` prints it indented, as plain text for files and
pipes; `render_rich` draws the same lines as a rich tree, with colour and guide glyphs,
for a terminal.

Each rule and pack default carries the name of the pack it came from; the text names
it only when that is not the built-in pack (`[RSP v2.1 §2; pack acme-lab]`), so an
explanation with the built-in pack alone reads as it always has. A rule that replaces
an earlier pack's rule also shows which one, and the pack's rationale for doing so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from engine.facts_id import render_value
from engine.packstack import is_builtin_framework
from engine.ruletext import cite_text
from knowledge_graph.reading import (
    CONCLUSION,
    DEFAULT,
    EVIDENCE,
    FIRING,
    Graph,
    matched,
    supports,
)

if TYPE_CHECKING:  # rich is imported to draw for a terminal (render_rich) alone
    from rich.text import Text
    from rich.tree import Tree

_SHOWN_INFO = ("name", "source", "date", "evidence", "listed_as", "determination_from",
               "effective_compute_from")


def why_tree(graph: Graph, node: str) -> dict[str, Any]:
    """The explanation of `node` as nested plain data (JSON-ready), from a networkx
    graph or a stored record's adjacency alike (knowledge_graph.reading)."""
    seen: set[str] = set()
    if graph.nodes[node]["node"] == FIRING:
        return _firing(graph, seen, node)
    return _fact(graph, seen, node)


# The walk is two module functions rather than two closures calling each other: such
# closures hold each other (and the graph) in a reference cycle, which only the cyclic
# garbage collector frees, so every explanation's graph outlived its request.


def _fact(graph: Graph, seen: set[str], fact_id: str) -> dict[str, Any]:
    data = graph.nodes[fact_id]
    out: dict[str, Any] = {"id": fact_id, "node": data["node"], "kind": data["kind"],
                           "values": data["values"]}
    info = data.get("info", {})
    if data["node"] == EVIDENCE:
        out["entry"] = info.get("entry")
        out["label"] = data.get("label")
        out.update({k: info[k] for k in _SHOWN_INFO if k in info})
    elif data["node"] == DEFAULT:
        out["title"] = info.get("title", "")
        out["pack"] = info.get("pack")
        if "file" in info:
            out["defined_at"] = f"{info['file']}:{info.get('line', 0)}"
    if fact_id in seen:
        out["see_above"] = True
        return out
    seen.add(fact_id)
    if data["node"] == CONCLUSION:
        out["derived_by"] = [_firing(graph, seen, f) for f in supports(graph, fact_id)]
    return out


def _firing(graph: Graph, seen: set[str], firing_id: str) -> dict[str, Any]:
    data = graph.nodes[firing_id]
    out = {"rule": data["rule"], "title": data["title"], "cite": data["cite"],
           "because": data["because"], "pack": data["pack"]}
    if data.get("replaces"):
        out.update(replaces=data["replaces"], rationale=data["rationale"])
    out["matched"] = [_fact(graph, seen, f) for f in matched(graph, firing_id)]
    return out


def describe_values(values: dict[str, Any]) -> str:
    """`capability=CBRN-3, value=cannot_rule_out` for a fact's values."""
    return ", ".join(f"{k}={render_value(v)}" for k, v in sorted(values.items())
                     if v is not None)


Span = tuple[str, str]  # a piece of text and its rich style ("" for none)


class Line(NamedTuple):
    """One line of a node's label: its pieces, and how far plain text indents it under
    the label's first line (a tree draws it under its guide instead)."""

    spans: tuple[Span, ...]
    indent: str = ""


def label(node: dict[str, Any], arrow: str = "<-") -> list[Line]:
    """The lines that show one node of a `why_tree`, the one reading behind every
    renderer: a conclusion, a rule firing (`ARROW rule ID: TITLE [CITE]`, `because ...`,
    `replaces ...`), evidence with where it was stated, or a pack default."""
    if "rule" in node:
        cite = cite_text(node["cite"], node.get("pack"))
        lines = [Line(((f"{arrow} rule ", "yellow"), (node["rule"], "bold yellow"),
                       (f": {node['title']} ", ""), (f"[{cite}]", "magenta"))),
                 Line((("because ", "dim"), (node["because"], "italic")), "   ")]
        if node.get("replaces"):
            lines.append(Line(((f"replaces {node['replaces']}: {node['rationale']}",
                                "magenta"),), "   "))
        return lines
    values = describe_values(node["values"])
    if node["node"] == EVIDENCE:
        where = f" [{node['entry']}]" if node.get("entry") else ""
        lines = [Line((("evidence ", "blue"), (str(node.get("label", node["id"])), "bold blue"),
                       (where, "dim"), (f": {node['kind']} ", "blue"), (values, "")))]
        extras = [f"{k}: {render_value(node[k])}" for k in _SHOWN_INFO if k in node]
        if extras:
            lines.append(Line((("; ".join(extras), "dim"),), "  "))
        return lines
    if node["node"] == DEFAULT:
        title = f" ({node['title']})" if node.get("title") else ""
        pack = f" [pack {node['pack']}]" if _overlay(node) else ""
        return [Line((("pack default ", "bright_black"), (node["kind"], "bold bright_black"),
                      (f": {values}", ""), (title, "bright_black"), (pack, "magenta")))]
    above = " (explained above)" if node.get("see_above") else ""
    return [Line(((node["kind"], "bold green"), (": ", ""), (values, "green"),
                  (above, "dim italic")))]


def children(node: dict[str, Any]) -> list[dict[str, Any]]:
    """What a node of a `why_tree` rests on: a rule firing's matched facts, a
    conclusion's firings (none for evidence and pack defaults)."""
    return node["matched"] if "rule" in node else node.get("derived_by", [])


def render_text(tree: dict[str, Any]) -> str:
    """The explanation tree as indented text: conclusions, then each rule (title,
    citation, `because`), down to evidence (id, values, source) and pack defaults."""
    out: list[str] = []
    _walk(out, tree, 0)
    return "\n".join(out) + "\n"


def _walk(out: list[str], node: dict[str, Any], depth: int) -> None:
    """Append the lines of `node` and what it rests on, indented from `depth` (a module
    function: a closure calling itself is a reference cycle)."""
    pad = "  " * depth
    out.extend(pad + line.indent + "".join(text for text, _ in line.spans)
               for line in label(node))
    for child in children(node):  # a rule one level in, what it matched two more
        _walk(out, child, depth + (2 if "rule" in node else 1))


def render_rich(tree: dict[str, Any]) -> Tree:
    """The explanation tree as a rich Tree: the lines of `render_text`, with guide lines
    for the nesting and colour by kind (conclusions green, rules yellow with their
    citation, evidence blue, pack defaults grey); a rule is drawn under the fact it
    derives, on the fact's own branch when it is the fact's only support. Every piece of
    text goes in as a `Text`, never as markup, so brackets in values print as they are."""
    from rich.text import Text
    from rich.tree import Tree

    def text(node: dict[str, Any]) -> Text:
        shown = Text()
        for index, line in enumerate(label(node, "←")):
            for position, (piece, style) in enumerate(line.spans):
                shown.append(f"\n{piece}" if index and not position else piece, style)
        return shown

    def grow(parent: Tree | None, node: dict[str, Any]) -> Tree:
        """Add `node` under `parent`; a fact derived by one firing shares its branch
        with that rule, which keeps deep chains within a terminal's width."""
        shown, below = text(node), children(node)
        if "rule" not in node and len(below) == 1:
            shown.append("\n")
            shown.append_text(text(below[0]))
            below = children(below[0])
        branch = (Tree(shown, guide_style="bright_black") if parent is None
                  else parent.add(shown))
        for child in below:
            grow(branch, child)
        return branch

    return grow(None, tree)


def _overlay(node: dict[str, Any]) -> bool:
    """Whether a rule or pack default came from a pack other than a built-in framework."""
    return bool(node.get("pack")) and not is_builtin_framework(node["pack"])
