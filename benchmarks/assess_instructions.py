"""Benchmark: instructions per model for each part of the full assessment and for
durable-rules' floor, counted by callgrind, which load on the machine does not change
(CPU time on a shared machine moves by a third between runs).

Each part is driven through its own C iterator of `itertools`, so that iterator's
inclusive instruction count in callgrind's output is the part's own:

    valgrind --tool=callgrind --callgrind-out-file=out python benchmarks/assess_instructions.py 100
    callgrind_annotate --inclusive=yes --threshold=100 out | grep -E '_next$'

Divide each count by the number of models: takewhile_next is building the facts,
dropwhile_next evaluating (durable's calls included), filterfalse_next the contract keys,
starmap_next the `conclusions`, accumulate_next the floor (`assess_bench.floor`: the same
durable calls, replayed without the engine). Results are not checked here; run
`assess_bench.py` for that.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import assess_bench
import synth

from engine.assess import (
    assess_document,
    contract,
    default_budget,
    document_facts,
    evaluator_for,
    tune_for_throughput,
    vocabulary,
)
from engine.evidence import parse_document
from knowledge_graph.provenance import conclusions_of

WARM_UP = 30


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tune_for_throughput()
    evaluator = evaluator_for()
    pack, budget = evaluator.pack, default_budget()
    vocab = vocabulary(pack)
    docs = [parse_document(m, "synthetic", "", vocab)[0]
            for m in synth.generate_models(count + WARM_UP, seed=5)]
    for doc in docs[:WARM_UP]:
        conclusions_of(assess_document(evaluator, doc).derivation)
    docs = docs[WARM_UP:]
    facts = list(itertools.takewhile(lambda _: True, (document_facts(d, pack) for d in docs)))
    derivations = list(itertools.dropwhile(
        lambda _: False, (evaluator.evaluate(f, budget=budget) for f in facts)))
    list(itertools.filterfalse(lambda _: False, (
        contract(pack, derivation, doc.model.id)
        for doc, derivation in zip(docs, derivations, strict=True))))
    list(itertools.starmap(conclusions_of, [(d,) for d in derivations]))
    recorded = assess_bench.record_matcher_calls(evaluator, docs)
    list(itertools.accumulate([0, 1], lambda _, __: assess_bench.floor(evaluator, recorded)
                              and 0))
    print(f"{count} models; read the counts with callgrind_annotate (see the docstring)")


if __name__ == "__main__":
    main()
