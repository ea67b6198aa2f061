"""The stored form of an assessment is written straight from its derivation
(provenance.record_of, batch.work.stored_form), without the networkx graph: the record
must hold exactly what it held when it was written from the graph (`dump`, the rule ids
of `edge_rows`, `kinds` and the document with the graph's `conclusions`), byte for byte,
for every example and for a synthetic portfolio with lineage."""

from __future__ import annotations

import random
from typing import Any

import networkx as nx
import orjson
import pytest
import synth
from helpers import EXAMPLES, assess_paths
from test_batch import LINEAGE

from batch.work import Entry, contract_digest, stored_form
from engine.api import assess_documents
from engine.assess import Assessment, evaluator_for, vocabulary
from engine.evidence import LoadedDocument, parse_document
from knowledge_graph import stored
from knowledge_graph.provenance import (
    build,
    dump,
    edge_rows,
    elements,
    fired_rules,
    graph_of,
    kinds,
    load,
    record_of,
)
from knowledge_graph.report import assessment_document
from store.record import NewAssessment

SYNTHETIC = 300


def _synthetic() -> list[tuple[Assessment, LoadedDocument]]:
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    loaded = []
    for i, model in enumerate(synth.generate_models(SYNTHETIC, seed=13, lineage=True)):
        document, errors = parse_document(model, "p.jsonl", f"line {i + 1}", vocab)
        assert document is not None, errors
        loaded.append(LoadedDocument(document, "p.jsonl", f"line {i + 1}"))
    results, errors = assess_documents(evaluator, loaded)
    assert errors == []
    by_id = {doc.document.model.id: doc for doc in loaded}
    return [(a, by_id[a.output["model"]]) for a in results]


@pytest.fixture(scope="module")
def assessed() -> list[tuple[Assessment, LoadedDocument | None]]:
    examples = assess_paths(*sorted(EXAMPLES.glob("*.yaml")), LINEAGE)
    assert len(examples) == 15
    return [(a, None) for a in examples] + _synthetic()


def _by_graph(entry: Entry, file: str, assessment: Assessment) -> NewAssessment:
    """The record as `stored_form` wrote it through the graph (before record_of)."""
    graph = graph_of(assessment.derivation)
    result = assessment_document(assessment, graph)
    return NewAssessment.build(
        model_id=entry.model, evidence_hash=entry.evidence_hash,
        evidence_body=orjson.loads(entry.body), file=file, input_hash="h",
        result=result, provenance=dump(graph), edges=edge_rows(graph), kinds=kinds(graph),
        contract_hash=contract_digest(result))


def test_the_record_is_the_graphs_record(assessed: list[tuple[Assessment, Any]]) -> None:
    assert len(assessed) == 15 + SYNTHETIC
    for assessment, _ in assessed:
        derivation = assessment.derivation
        graph = graph_of(derivation)
        record = record_of(derivation)
        assert record.blob == stored.encode(graph)
        assert record.fired == fired_rules(graph) == sorted({r[4] for r in edge_rows(graph)})
        assert record.kinds == kinds(graph)
        assert orjson.dumps(assessment_document(assessment)) == orjson.dumps(
            assessment_document(assessment, graph))
    nodes, edges = elements(assessed[0][0].derivation)  # graph_of is those, in that order
    graph = graph_of(assessed[0][0].derivation)
    assert list(graph.nodes(data=True)) == nodes
    assert list(graph.edges(data=True)) == sorted(
        edges, key=lambda e: list(graph).index(e[0]))  # by source, then as added
    assert nx.utils.graphs_equal(graph, build(assessed[0][0].derivation.events))


def test_stored_form_stores_what_the_graph_gave(
        assessed: list[tuple[Assessment, LoadedDocument | None]]) -> None:
    """Everything `stored_form` hands the store, for the synthetic portfolio's models
    (each through the batch's own Entry)."""
    compared = 0
    for assessment, loaded in assessed:
        if loaded is None:
            continue
        entry = Entry.of(loaded)
        new = stored_form(entry, "h", assessment)
        old = _by_graph(entry, new.file, assessment)
        assert new == old
        assert load(new.provenance).nodes(data=True) == graph_of(
            assessment.derivation).nodes(data=True)
        compared += 1
    assert compared == SYNTHETIC


def test_adjacency_is_what_networkx_keeps() -> None:
    """Nodes and edges added twice (the later attributes over the earlier, the first
    place kept), an edge to a node never added, a self-loop, predecessors added in another
    order than their sources: the bytes of the graph networkx builds of them."""
    nodes = [("c", {"node": "conclusion", "kind": "k"}), ("a", {"node": "evidence", "x": 1}),
             ("f", {"node": "firing", "rule": "r"}), ("a", {"y": [1, "s"], "node": "default"})]
    edges = [("a", "f", {"role": "used", "as": "n"}), ("f", "c", {"role": "generated"}),
             ("c", "f", {"role": "used", "as": "m"}), ("a", "f", {"as": "o"}),
             ("f", "z", {"role": "generated"}), ("f", "f", {}), ("z", "c", {"w": None})]
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    plain = stored.adjacency(nodes, edges)
    assert stored.encode_adjacency(plain) == stored.encode(graph)
    assert list(plain.nodes.items()) == list(graph.nodes(data=True))
    assert {n: list(p) for n, p in plain.pred.items()} == {
        n: list(p) for n, p in graph.pred.items()}


def test_the_edge_order_keeps_every_nodes_successors_and_predecessors() -> None:
    """`stored.insertion_order` on graphs whose predecessors were added in every sort of
    order (random, self-loops, nodes without edges): a graph built from its nodes and that
    edge order has each node's successors and predecessors in the original's order, and
    a graph whose edges are already in that order keeps it."""
    rng = random.Random(4)
    for _ in range(400):
        size = rng.randint(1, 9)
        graph = nx.DiGraph()
        graph.add_nodes_from(rng.sample(range(size), size))
        graph.add_edges_from((rng.randrange(size), rng.randrange(size), {"i": i})
                             for i in range(rng.randint(0, 25)))
        order = stored.insertion_order(graph)
        again = nx.DiGraph()
        again.add_nodes_from(graph)
        again.add_edges_from(order)
        assert [list(again.succ[n]) for n in graph] == [list(graph.succ[n]) for n in graph]
        assert [list(again.pred[n]) for n in graph] == [list(graph.pred[n]) for n in graph]
        assert stored.insertion_order(again) == order


def test_elements_are_encoded_as_the_graph_built_of_them() -> None:
    """`stored.encode_elements` of nodes and edges in every sort of order (self-loops,
    nodes without edges, predecessors added in another order than their sources) gives
    the bytes of the networkx graph built of them, whether it reads the graph's order
    off the lists (each node and edge once, every end a node) or, for a node or an edge
    given twice or an edge to a node never given, through the adjacency."""
    rng = random.Random(11)
    plain = 0
    for trial in range(1500):
        size = rng.randint(1, 8)
        nodes = [(rng.randrange(size), {"k": rng.randrange(3), "s": f"t{rng.randrange(4)}"})
                 for _ in range(rng.randint(1, size + 2))]
        edges = [(rng.randrange(size + 1), rng.randrange(size + 1), {"i": f"e{i}"})
                 for i in range(rng.randint(0, 15))]
        if trial % 3:  # each node and each edge once, every end a node
            nodes = list(dict(nodes).items())
            known = [node for node, _ in nodes]
            ends = {(rng.choice(known), rng.choice(known)): {"i": f"e{i}", "n": i}
                    for i in range(rng.randint(0, 15))}
            edges = [(u, v, data) for (u, v), data in ends.items()]
            plain += 1
        graph = nx.DiGraph()
        graph.add_nodes_from(nodes)
        graph.add_edges_from(edges)
        assert stored.encode_elements(nodes, edges) == stored.encode(graph), (nodes, edges)
    assert plain == 1000
