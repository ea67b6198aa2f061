"""The provenance graph: every conclusion traces back to evidence or a pack default, and
the output's `conclusions` list is that graph flattened."""

from __future__ import annotations

import networkx as nx
import pytest
from helpers import DATA, EXAMPLES, assess_paths

from knowledge_graph.provenance import (
    CONCLUSION,
    DEFAULT,
    EVIDENCE,
    FIRING,
    find_conclusion,
    roots,
)
from knowledge_graph.report import assessment_document, provenance


def _all_assessments():
    return assess_paths(EXAMPLES, EXAMPLES / "portfolio" / "lineage.yaml",
                        *sorted(DATA.glob("*.yaml")))


@pytest.fixture(scope="module")
def assessments():
    return _all_assessments()


def test_every_path_back_from_asl_ends_at_evidence_or_a_default(assessments) -> None:
    """Walking back from `asl` never dead-ends at a derived fact without support."""
    for assessment in assessments:
        graph = provenance(assessment)
        assert nx.is_directed_acyclic_graph(graph)
        asl = find_conclusion(graph, "asl")
        for node in nx.ancestors(graph, asl) | {asl}:
            kind = graph.nodes[node]["node"]
            if kind == CONCLUSION:
                assert list(graph.predecessors(node)), f"{node} has no supporting firing"
            if kind == FIRING:
                assert graph.nodes[node]["cite"].startswith("RSP v2.1 ")
        assert roots(graph, asl), assessment.model
        assert all(graph.nodes[r]["node"] in (EVIDENCE, DEFAULT) for r in roots(graph, asl))


def test_conclusions_are_the_graph_flattened(assessments) -> None:
    """Each derived fact appears once in `conclusions`, with rule, citation and the ids
    of the facts it rests on, all of which are nodes of the graph."""
    for assessment in assessments:
        graph = provenance(assessment)
        document = assessment_document(assessment, graph)
        ids = [c["id"] for c in document["conclusions"]]
        assert ids == sorted(ids)
        assert set(ids) == {n for n, d in graph.nodes(data=True) if d["node"] == CONCLUSION}
        for conclusion in document["conclusions"]:
            assert conclusion["rule"] and "§" in conclusion["cite"]
            assert all(b in graph for b in conclusion["because"])
            assert conclusion["supports"][0]["rule"] == conclusion["rule"]


def test_a_conclusion_supported_twice_keeps_both_supports() -> None:
    """security-gap-pause misses two ASL-3 Security elements: the `pause` candidate is one
    fact with one supporting firing per missing element."""
    (assessment,) = assess_paths(EXAMPLES / "security-gap-pause.yaml")
    graph = provenance(assessment)
    candidate = "decision_candidate(rank=4,value=pause)"
    firings = list(graph.predecessors(candidate))
    assert len(firings) >= 2
    missing = {graph.nodes[n]["values"]["safeguard"] for f in firings
               for n in graph.predecessors(f) if graph.nodes[n]["kind"] == "missing_safeguard"}
    assert {"asl3-security.audits", "asl3-security.resourcing"} <= missing
