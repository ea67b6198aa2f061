"""Assessment documents and summaries for people and programs.

`assessment_document` is the JSON object of assessment-output.md: the engine's contract
keys plus the provenance graph flattened into `conclusions`. `summary_text` is the
readable per-model summary `asl assess` prints.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.assess import Assessment
from knowledge_graph.provenance import build, conclusions


def provenance(assessment: Assessment) -> nx.DiGraph:
    """The provenance graph of one assessment."""
    return build(assessment.derivation.events)


def assessment_document(assessment: Assessment, graph: nx.DiGraph | None = None
                        ) -> dict[str, Any]:
    """The full output object for one model (contract keys and conclusions)."""
    graph = graph if graph is not None else provenance(assessment)
    return {**assessment.output, "conclusions": conclusions(graph)}


def summary_text(output: dict[str, Any]) -> str:
    """A readable summary of one model's contract keys."""

    def statuses(group: dict[str, str]) -> str:
        return ", ".join(f"{name}: {status}" for name, status in group.items()) or "-"

    required = output["required"]
    lines = [
        f"{output['model']}: {output['asl']}",
        f"  required            deployment {required['deployment']}, security "
        f"{required['security']}",
        "  comprehensive       " + ("required" if output["comprehensive_assessment_required"]
                                    else "not required"),
        f"  thresholds          {statuses(output['thresholds'])}",
        f"  checkpoints         {statuses(output['checkpoints'])}",
        f"  ongoing assessment  {statuses(output['ongoing_assessment'])}",
        f"  decision            {output['decision']}",
        f"  missing safeguards  {', '.join(output['missing_safeguards']) or 'none'}",
        f"  actions             {', '.join(output['actions']) or 'none'}",
        f"  pack                {output['pack']['name']} {output['pack']['version'][:19]}",
    ]
    return "\n".join(lines) + "\n"
