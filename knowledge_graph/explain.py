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

from typing import Any

import networkx as nx
from rich.text import Text
from rich.tree import Tree

from engine.facts_id import render_value
from engine.loader import BUILTIN_PACK
from knowledge_graph.provenance import CONCLUSION, DEFAULT, EVIDENCE, FIRING, matched, supports

_SHOWN_INFO = ("name", "source", "date", "evidence", "listed_as", "determination_from",
               "effective_compute_from")


def why_tree(graph: nx.DiGraph, node: str) -> dict[str, Any]:
    """The explanation of `node` as nested plain data (JSON-ready)."""
    seen: set[str] = set()

    def fact(fact_id: str) -> dict[str, Any]:
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
            out["derived_by"] = [firing(f) for f in supports(graph, fact_id)]
        return out

    def firing(firing_id: str) -> dict[str, Any]:
        data = graph.nodes[firing_id]
        out = {"rule": data["rule"], "title": data["title"], "cite": data["cite"],
               "because": data["because"], "pack": data["pack"]}
        if data.get("replaces"):
            out.update(replaces=data["replaces"], rationale=data["rationale"])
        out["matched"] = [fact(f) for f in matched(graph, firing_id)]
        return out

    if graph.nodes[node]["node"] == FIRING:
        return firing(node)
    return fact(node)


def describe_values(values: dict[str, Any]) -> str:
    """`capability=CBRN-3, value=cannot_rule_out` for a fact's values."""
    return ", ".join(f"{k}={render_value(v)}" for k, v in sorted(values.items())
                     if v is not None)


def render_text(tree: dict[str, Any]) -> str:
    """The explanation tree as indented text: conclusions, then each rule (title,
    citation, `because`), down to evidence (id, values, source) and pack defaults."""
    lines: list[str] = []

    def fact(node: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        values = describe_values(node["values"])
        if node["node"] == EVIDENCE:
            where = f" [{node['entry']}]" if node.get("entry") else ""
            lines.append(f"{pad}evidence {node.get('label', node['id'])}{where}: "
                         f"{node['kind']} {values}")
            extras = [f"{k}: {render_value(node[k])}" for k in _SHOWN_INFO if k in node]
            if extras:
                lines.append(f"{pad}  " + "; ".join(extras))
            return
        if node["node"] == DEFAULT:
            title = f" ({node['title']})" if node.get("title") else ""
            pack = f" [pack {node['pack']}]" if _overlay(node) else ""
            lines.append(f"{pad}pack default {node['kind']}: {values}{title}{pack}")
            return
        suffix = " (explained above)" if node.get("see_above") else ""
        lines.append(f"{pad}{node['kind']}: {values}{suffix}")
        for firing in node.get("derived_by", []):
            rule(firing, depth + 1)

    def rule(node: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        cite = f"{node['cite']}; pack {node['pack']}" if _overlay(node) else node["cite"]
        lines.append(f"{pad}<- rule {node['rule']}: {node['title']} [{cite}]")
        lines.append(f"{pad}   because {node['because']}")
        if node.get("replaces"):
            lines.append(f"{pad}   replaces {node['replaces']}: {node['rationale']}")
        for child in node["matched"]:
            fact(child, depth + 2)

    if "rule" in tree:
        rule(tree, 0)
    else:
        fact(tree, 0)
    return "\n".join(lines) + "\n"


def render_rich(tree: dict[str, Any]) -> Tree:
    """The explanation tree as a rich Tree: the lines of `render_text`, with guide lines
    for the nesting and colour by kind (conclusions green, rules yellow with their
    citation, evidence blue, pack defaults grey); a rule is drawn under the fact it
    derives, on the fact's own branch when it is the fact's only support. Every piece of
    text goes in as a `Text`, never as markup, so brackets in values print as they are."""

    def fact(node: dict[str, Any]) -> Text:
        values = describe_values(node["values"])
        if node["node"] == EVIDENCE:
            text = Text.assemble(("evidence ", "blue"),
                                 (str(node.get("label", node["id"])), "bold blue"))
            if node.get("entry"):
                text.append(f" [{node['entry']}]", "dim")
            text.append(f": {node['kind']} ", "blue")
            text.append(values)
            extras = [f"{k}: {render_value(node[k])}" for k in _SHOWN_INFO if k in node]
            if extras:
                text.append("\n" + "; ".join(extras), "dim")
            return text
        if node["node"] == DEFAULT:
            text = Text.assemble(("pack default ", "bright_black"),
                                 (node["kind"], "bold bright_black"), (": " + values, ""))
            if node.get("title"):
                text.append(f" ({node['title']})", "bright_black")
            if _overlay(node):
                text.append(f" [pack {node['pack']}]", "magenta")
            return text
        text = Text.assemble((node["kind"], "bold green"), (": ", ""), (values, "green"))
        if node.get("see_above"):
            text.append(" (explained above)", "dim italic")
        return text

    def rule(node: dict[str, Any]) -> Text:
        cite = f"{node['cite']}; pack {node['pack']}" if _overlay(node) else node["cite"]
        text = Text.assemble(("← rule ", "yellow"), (node["rule"], "bold yellow"),
                             (f": {node['title']} ", ""), (f"[{cite}]", "magenta"),
                             ("\nbecause ", "dim"), (node["because"], "italic"))
        if node.get("replaces"):
            text.append(f"\nreplaces {node['replaces']}: {node['rationale']}", "magenta")
        return text

    def grow(parent: Tree | None, node: dict[str, Any]) -> Tree:
        """Add `node` under `parent`; a fact derived by one firing shares its branch
        with that rule, which keeps deep chains within a terminal's width."""
        if "rule" in node:
            label, children = rule(node), node["matched"]
        else:
            label, children = fact(node), node.get("derived_by", [])
            if len(children) == 1:
                label.append("\n")
                label.append_text(rule(children[0]))
                children = children[0]["matched"]
        branch = (Tree(label, guide_style="bright_black") if parent is None
                  else parent.add(label))
        for child in children:
            grow(branch, child)
        return branch

    return grow(None, tree)


def _overlay(node: dict[str, Any]) -> bool:
    """Whether a rule or pack default came from a pack other than the built-in one."""
    return bool(node.get("pack")) and node["pack"] != BUILTIN_PACK
