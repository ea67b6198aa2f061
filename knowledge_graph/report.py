"""Assessment documents and summaries for people and programs.

`assessment_document` is the JSON object of assessment-output.md: the engine's contract
keys plus the provenance graph flattened into `conclusions`. `summary_text` is the
readable per-model summary `asl assess` prints.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.assess import Assessment
from engine.framework import FrameworkSpec, OutputKey, spec_of
from knowledge_graph.provenance import conclusions, conclusions_of, graph_of


def provenance(assessment: Assessment) -> nx.DiGraph:
    """The provenance graph of one assessment, built from its derivation when asked
    for (why, why-not, impact, export); the store writes its record without it
    (provenance.record_of)."""
    return graph_of(assessment.derivation)


def assessment_document(assessment: Assessment, graph: nx.DiGraph | None = None
                        ) -> dict[str, Any]:
    """The full output object for one model (contract keys and conclusions), its
    `conclusions` read off `graph` when given, else off the derivation (the same list,
    without building the graph)."""
    found = conclusions(graph) if graph is not None else conclusions_of(assessment.derivation)
    return {**assessment.output, "conclusions": found}


def summary_text(output: dict[str, Any], spec: FrameworkSpec | None = None) -> str:
    """A readable summary of one model's contract keys: its headline level, then the
    keys its framework summarises (`spec`, by default its built-in framework's), then
    the pack."""
    spec = spec or spec_of(output)
    lines = [f"{output['model']}: {output['level']}"]
    for name in spec.summary:
        key = spec.key(name)
        if key is not None and name in output:
            lines.append(f"  {key.label:<20}{_shown(key, output[name])}")
    lines.append(f"  {'pack':<20}{output['pack']['name']} {output['pack']['version'][:19]}")
    return "\n".join(lines) + "\n"


def _shown(key: OutputKey, value: Any) -> str:
    """One key's value as the summary shows it: a list joined (`none` when empty), a
    capability group as `NAME: STATUS, ...` (`-` when empty), a mapping of named values
    as `NAME VALUE, ...`, a yes/no in the framework's words."""
    if key.many:
        return ", ".join(value) or "none"
    if key.category is not None:
        return ", ".join(f"{name}: {status}" for name, status in value.items()) or "-"
    if key.by is not None:
        return ", ".join(f"{name} {level}" for name, level in value.items())
    if isinstance(value, bool):
        return key.when_true if value else key.when_false
    return str(value)
