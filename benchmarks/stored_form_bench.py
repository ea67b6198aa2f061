"""Benchmark: what storing one assessment costs, written from its derivation
(`batch.work.stored_form` since issue 13 points 2 and 4) against the way it was written
before, through the networkx provenance graph, in the same run.

Assesses synthetic models with lineage once (not timed), then, per model and alternating
which goes first, times in CPU time (time.process_time) and wall time:

- graph path: `graph_of` (networkx), `assessment_document` with the graph's
  `conclusions`, `stored.encode` of the graph as commit BASELINE wrote it (its
  knowledge_graph/stored.py, read with `git show`: the node table before this change),
  `edge_rows` and `kinds` of the graph, `NewAssessment.build`: what `stored_form` did
  before;
- record path: `stored_form` as it is (`record_of`: the same record, fired rules and
  kinds written from the derivation's `elements`; the document's `conclusions` read off
  the derivation);

and, for each, its parts. Both paths' records are checked to be byte-identical first.

    python benchmarks/stored_form_bench.py            # 2,000 models
    python benchmarks/stored_form_bench.py -n 500
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import orjson
import synth

from batch.work import Entry, contract_digest, stored_form
from engine.api import assess_documents
from engine.assess import Assessment, evaluator_for, tune_for_throughput, vocabulary
from engine.evidence import LoadedDocument, parse_document
from knowledge_graph import stored
from knowledge_graph.provenance import (
    conclusions,
    conclusions_of,
    dump,
    edge_rows,
    elements,
    graph_of,
    kinds,
    kinds_among,
    rules_among,
)
from knowledge_graph.report import assessment_document
from store.record import NewAssessment

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "88cd8f0"  # the last commit that stored assessments through the graph


def module_at(commit: str, path: str) -> types.ModuleType:
    """A module of this repository as it was at `commit` (`git show`)."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"{path}@{commit}")
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


def by_graph(entry: Entry, body: dict[str, Any], assessment: Assessment,
             encode: Callable[[Any], bytes]) -> NewAssessment:
    """`stored_form` as it was before: everything through the networkx graph."""
    graph = graph_of(assessment.derivation)
    result = assessment_document(assessment, graph)
    return NewAssessment.build(
        model_id=entry.model, evidence_hash=entry.evidence_hash,
        evidence_body=body, file=f"{entry.file}: {entry.where}", input_hash="h", result=result,
        provenance=encode(graph), edges=edge_rows(graph), kinds=kinds(graph),
        contract_hash=contract_digest(result))


def by_record(entry: Entry, body: dict[str, Any], assessment: Assessment) -> NewAssessment:
    """`stored_form` as it is."""
    return stored_form(entry, "h", assessment, body)


class Clock:
    """CPU and wall seconds spent in `time_it` calls."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0

    def time_it(self, fn: Callable[[], Any]) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000, help="synthetic models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default=BASELINE,
                        help="the commit whose stored.encode the graph path uses")
    args = parser.parse_args()
    before = module_at(args.baseline, "knowledge_graph/stored.py")
    tune_for_throughput()
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    loaded = []
    for i, model in enumerate(synth.generate_models(args.n, seed=args.seed, lineage=True)):
        document, errors = parse_document(model, "p.jsonl", f"line {i + 1}", vocab)
        assert document is not None, errors
        loaded.append(LoadedDocument(document, "p.jsonl", f"line {i + 1}"))
    assessments, errors = assess_documents(evaluator, loaded)
    assert not errors, errors
    entries = {d.document.model.id: Entry.of(d) for d in loaded}
    jobs = [(entries[a.output["model"]], orjson.loads(entries[a.output["model"]].body), a)
            for a in assessments]
    for entry, body, assessment in jobs:  # the same record both ways (test_stored_form)
        old = by_graph(entry, body, assessment, before.encode)
        assert old == by_record(entry, body, assessment) == by_graph(
            entry, body, assessment, dump), entry.model
    # Every firing's `because` is filled on first reading and kept: fill them all (the
    # check above did) so neither path pays for it in the timed runs.

    totals = {"graph path": Clock(), "record path": Clock()}
    runs: list[tuple[str, Callable[[Entry, dict[str, Any], Assessment], NewAssessment]]] = [
        ("graph path", lambda e, b, a: by_graph(e, b, a, before.encode)),
        ("record path", by_record)]
    for i, (entry, body, assessment) in enumerate(jobs):
        for name, fn in runs if i % 2 else runs[::-1]:
            totals[name].time_it(lambda fn=fn, e=entry, b=body, a=assessment: fn(e, b, a))

    parts = {name: Clock() for name in (
        "graph_of (networkx)", "conclusions(graph)", f"encode(graph) at {args.baseline}",
        "dump(graph) now", "edge_rows + kinds",
        "elements", "adjacency + encode_adjacency", "  of which zstd (stored.pack)",
        "rules_among + kinds_among",
        "conclusions_of(derivation)")}
    for _, _, assessment in jobs:
        d = assessment.derivation
        graph = parts["graph_of (networkx)"].time_it(lambda d=d: graph_of(d))
        parts["conclusions(graph)"].time_it(lambda g=graph: conclusions(g))
        parts[f"encode(graph) at {args.baseline}"].time_it(lambda g=graph: before.encode(g))
        parts["dump(graph) now"].time_it(lambda g=graph: dump(g))
        parts["edge_rows + kinds"].time_it(lambda g=graph: (edge_rows(g), kinds(g)))
        nodes, edges = parts["elements"].time_it(lambda d=d: elements(d))
        plain = parts["adjacency + encode_adjacency"].time_it(
            lambda n=nodes, e=edges: (a := stored.adjacency(n, e), stored.encode_adjacency(a))[0])
        table = stored._table(plain)
        parts["  of which zstd (stored.pack)"].time_it(lambda t=table: stored.pack(t))
        parts["rules_among + kinds_among"].time_it(
            lambda a=plain: (rules_among(a.nodes.values()), kinds_among(a.nodes.values())))
        parts["conclusions_of(derivation)"].time_it(lambda d=d: conclusions_of(d))

    n = len(jobs)
    load = os.getloadavg()
    print(f"{n:,} synthetic models with lineage (seed {args.seed}), {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print(f"{'stored_form':<32} {'CPU ms/model':>12} {'wall ms/model':>14}")
    for name, clock in totals.items():
        print(f"  {name:<30} {clock.cpu / n * 1e3:12.3f} {clock.wall / n * 1e3:14.3f}")
    old, new = totals["graph path"], totals["record path"]
    print(f"  {'graph / record':<30} {old.cpu / new.cpu:11.2f}x {old.wall / new.wall:13.2f}x")
    print(f"{'parts':<32} {'CPU ms/model':>12} {'wall ms/model':>14}")
    for name, clock in parts.items():
        print(f"  {name:<30} {clock.cpu / n * 1e3:12.3f} {clock.wall / n * 1e3:14.3f}")


if __name__ == "__main__":
    main()
