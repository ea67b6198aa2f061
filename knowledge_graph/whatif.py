"""A what-if as data: what `asl what-if --format json` prints and `POST /v1/what-if`
answers, built in one place from `engine.whatif.WhatIf`.

`what_if_report` lists every contract key that changed in the edited model and in the
models of its portfolio that carry its determination over (`changes`), the conclusions
added and removed with the rule behind each (`conclusion_changes`), the models affected,
and the edited model's result before and after.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.contract import KeyChange, contract_changes
from engine.whatif import WhatIf
from knowledge_graph.impact import changed_conclusions
from knowledge_graph.provenance import supports
from knowledge_graph.report import assessment_document, provenance


def key_change(model: str, change: KeyChange) -> dict[str, Any]:
    """A contract change as what-if reports it: `before` and `after`, and for a list
    what was added and removed."""
    out = {"model": model, "key": change.key, "before": change.old, "after": change.new}
    if change.is_list:
        out.update(added=change.added, removed=change.removed)
    return out


def conclusion_data(graph: nx.DiGraph, node: str, **extra: Any) -> dict[str, Any]:
    """A conclusion as plain data: id, kind, values and the (first) rule deriving it."""
    data = graph.nodes[node]
    firings = supports(graph, node)
    rule = graph.nodes[firings[0]]["rule"] if firings else None
    return {**extra, "id": data.get("local", node), "kind": data["kind"],
            "value": data["values"], "rule": rule}


def conclusion_changes(result: WhatIf, model: str) -> list[dict[str, Any]]:
    """Added and removed conclusions of one model, each with its rule."""
    before, after = provenance(result.before[model]), provenance(result.after[model])
    added, removed = changed_conclusions(before, after)
    return ([conclusion_data(after, n, model=model, change="added") for n in added]
            + [conclusion_data(before, n, model=model, change="removed") for n in removed])


def changes_of(result: WhatIf) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every contract key and every conclusion that changed, in each model assessed both
    before and after, by model."""
    models = sorted(result.before.keys() & result.after.keys())
    changes = [key_change(model, change) for model in models
               for change in contract_changes(result.before[model].output,
                                              result.after[model].output)]
    concluded = [c for model in models for c in conclusion_changes(result, model)]
    return changes, concluded


def what_if_report(result: WhatIf) -> dict[str, Any]:
    """The what-if as `asl what-if --format json` prints it (the edited model must have
    been assessed before and after)."""
    changes, concluded = changes_of(result)
    return {
        "model": result.model,
        "edits": [{"option": e.option, "path": e.path, "value": e.value}
                  for e in result.edits],
        "changes": changes,
        "conclusion_changes": concluded,
        "affected": sorted({c["model"] for c in [*changes, *concluded]}),
        "before": result.before[result.model].output,
        "after": assessment_document(result.after[result.model]),
    }
