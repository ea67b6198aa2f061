"""Benchmark: assess synthetic models with the full built-in pack in one process.

Prints, side by side in one run: models/second through the rule engine (contract keys
only, and with the provenance graph and `conclusions` built as `asl assess --format
json` does), models/second of the plain-Python evaluation of the same spec (the lower
bound, `benchmarks/plain_eval.py`), their ratio, and resident memory as the count grows,
to show whether memory stays flat. It also replays the exact calls the engine made into
durable-rules for the first 1,000 models, with none of the engine's own work around them:
the rate of that replay is a ceiling no evaluator built on this fact flow can pass.
Targets (issue 2): >= 1,000 models/s in one process; memory flat from 10,000 to 50,000
models.

    python benchmarks/assess_bench.py            # 10,000 models
    python benchmarks/assess_bench.py -n 50000   # memory flatness over a longer run
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plain_eval
import synth

from engine.assess import assess_document, evaluator_for, tune_for_throughput, vocabulary
from engine.compiler import gate_fact
from engine.durable_adapter import OPEN_RULE, Session
from engine.evaluator import Evaluator
from engine.evidence import parse_document
from engine.evidence_schema import ModelDocument
from knowledge_graph.report import assessment_document

CHUNK = 1_000


def rss_mib() -> float:
    """Current resident memory of this process, in MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record_matcher_calls(evaluator: Evaluator,
                         docs: Sequence[ModelDocument]) -> list[list[list[dict[str, Any]]]]:
    """Assess `docs` and keep, per model, every batch of facts sent to durable-rules
    (a session's opening and its permanent pack facts left out)."""
    calls: list[list[dict[str, Any]]] = []
    original = Session.assert_facts

    def recording(session: Session, facts: list[dict[str, Any]]) -> Any:
        calls.append([dict(f) for f in facts])
        return original(session, facts)

    per_model = []
    Session.assert_facts = recording  # type: ignore[method-assign]
    try:
        for doc in docs:
            calls.clear()
            assess_document(evaluator, doc)
            kept, skip_next = [], False
            for batch in calls:
                if skip_next or any(f["kind"] == OPEN_RULE for f in batch):
                    skip_next = not skip_next  # the batch after the opening is the base
                    continue
                kept.append(batch)
            per_model.append(kept)
    finally:
        Session.assert_facts = original  # type: ignore[method-assign]
    return per_model


def replay_matcher_calls(evaluator: Evaluator,
                         per_model: list[list[list[dict[str, Any]]]]) -> float:
    """Seconds durable-rules takes for these batches through the engine's adapter
    (session, assert, taking every activation, retracting), with no rule firing built."""
    gates = [gate_fact(level)["id"] for level in evaluator.compiled.gates]
    copies = [[[dict(f) for f in batch] for batch in batches] for batches in per_model]
    start = time.perf_counter()
    for batches in copies:
        with evaluator.ruleset.session() as session:
            for batch in batches:
                session.assert_facts(batch)
            session.retract_all(first=gates)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="models to assess")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tune_for_throughput()  # as the asl command and batch workers run
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    engine_s = full_s = plain_s = 0.0
    done = 0
    checkpoints: list[tuple[int, float]] = []
    while done < args.n:
        size = min(CHUNK, args.n - done)
        raw = synth.generate_models(size, seed=args.seed * 1_000_003 + done)
        docs = [parse_document(m, "synthetic", "", vocab)[0] for m in raw]
        if any(d is None for d in docs):
            raise SystemExit("the synthetic generator produced invalid evidence")
        if not done:
            recorded = record_matcher_calls(evaluator, docs)
        start = time.perf_counter()
        assessments = [assess_document(evaluator, d) for d in docs]
        engine_s += time.perf_counter() - start
        start = time.perf_counter()
        for assessment in assessments[: size // 10]:
            assessment_document(assessment)
        full_s += (time.perf_counter() - start) * 10
        start = time.perf_counter()
        for model in raw:
            plain_eval.evaluate(model)
        plain_s += time.perf_counter() - start
        for assessment, model in zip(assessments, raw, strict=True):
            expected = plain_eval.evaluate(model)
            got = {k: assessment.output[k] for k in expected}
            if got != expected:
                raise SystemExit(f"engine and plain evaluation disagree on {got['model']}")
        done += size
        if done % 10_000 == 0 or done == args.n:
            checkpoints.append((done, rss_mib()))
        del assessments, docs, raw

    matcher_rate = len(recorded) / replay_matcher_calls(evaluator, recorded)
    calls = sum(len(batches) for batches in recorded) / len(recorded)
    facts = sum(len(b) for batches in recorded for b in batches) / len(recorded)
    engine_rate = done / engine_s
    full_rate = done / (engine_s + full_s)
    plain_rate = done / plain_s
    print(f"models assessed                  {done:>10,}  (results checked against plain_eval)")
    print(f"engine, contract keys            {engine_rate:>10,.0f} models/s")
    print(f"engine + provenance/conclusions  {full_rate:>10,.0f} models/s")
    print(f"plain Python lower bound         {plain_rate:>10,.0f} models/s")
    print(f"ratio plain / engine             {plain_rate / engine_rate:>10.1f} x")
    print(f"durable-rules calls alone        {matcher_rate:>10,.0f} models/s  "
          f"(ceiling: {calls:.1f} batches, {facts:.1f} facts per model, replayed)")
    print(f"durable-rules share of engine    {engine_rate / matcher_rate:>10.0%}")
    print("target                           >= 1,000 models/s: "
          + ("met" if engine_rate >= 1_000 else "NOT met"))
    print(f"peak RSS                         {peak_rss_mib():>10.1f} MiB")
    for count, mib in checkpoints:
        print(f"RSS after {count:>7,} models        {mib:>10.1f} MiB")


if __name__ == "__main__":
    main()
