"""Benchmark: assess synthetic models with the full built-in pack in one process, against
durable-rules' own floor measured in the same run.

Prints, in one run and in CPU time and wall time per model:
- the floor: the exact calls the engine made into durable-rules' C module for the first
  1,000 models (the same fact batches, JSON pre-encoded; activations taken but not
  parsed; the same retractions), with none of the engine's own work around them. No
  evaluator built on this fact flow can beat it (issue 13);
- the engine with contract keys only (`assess_document`);
- the full assessment as `asl assess --format json` makes it: contract keys plus the
  provenance's `conclusions` (the derivation is kept, so the provenance graph can be
  built on demand);
- each as a ratio to the floor (target, issue 13 point 1: full assessment at most 2x);
- the plain-Python evaluation of the same spec (`benchmarks/plain_eval.py`), whose
  contract keys every result is checked against;
- where the full assessment's time goes, for the models the floor replays: building the
  facts, evaluating (durable's calls included), reading the contract keys, flattening the
  conclusions; and the evaluator's own Python per rule activation (evaluating less the
  floor, over the activations);
- resident memory as the count grows, to show whether memory stays flat.

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

import durable_rules_engine
import orjson
import plain_eval
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
from engine.compiler import gate_fact
from engine.durable_adapter import OPEN_RULE, Session
from engine.evaluator import Evaluator
from engine.evidence import parse_document
from engine.evidence_schema import ModelDocument
from knowledge_graph.provenance import conclusions_of
from knowledge_graph.report import assessment_document

CHUNK = 1_000
FLOOR_MODELS = 1_000
TARGET = 2.0  # full assessment, CPU time, at most this many times the floor


class Clock:
    """CPU and wall seconds spent inside `with clock:` blocks."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0

    def __enter__(self) -> Clock:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu += time.process_time() - self._cpu
        self.wall += time.perf_counter() - self._wall


def rss_mib() -> float:
    """Current resident memory of this process, in MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Batch = tuple[list[str], list[str]]  # the facts' texts as the adapter prepared them, their ids


def record_matcher_calls(evaluator: Evaluator, docs: Sequence[ModelDocument]
                         ) -> list[list[Batch]]:
    """Assess `docs` and keep, per model, every batch of facts sent to durable-rules as
    the adapter sent it (a session's opening and its permanent pack facts are asserted
    through `assert_facts` and left out)."""
    calls: list[Batch] = []
    original = Session.assert_prepared

    def recording(session: Session, texts: list[str], ids: list[str], *args: Any) -> Any:
        calls.append((list(texts), list(ids)))
        return original(session, texts, ids, *args)

    per_model = []
    Session.assert_prepared = recording  # type: ignore[method-assign]
    try:
        for doc in docs:
            calls.clear()
            assess_document(evaluator, doc)
            per_model.append([batch for batch in calls if OPEN_RULE not in batch[1]])
    finally:
        Session.assert_prepared = original  # type: ignore[method-assign]
    return per_model


def floor(evaluator: Evaluator, per_model: list[list[Batch]]) -> Clock:
    """CPU and wall seconds durable-rules' C module takes for these batches alone: per
    model, assert each batch (pre-encoded) and take every activation without parsing it,
    then retract every fact (gates first), as the engine does, in one pooled session."""
    gates = {gate_fact(level)["id"] for level in evaluator.compiled.gates}
    clock = Clock()
    with evaluator.ruleset.session() as session:
        handle, sid = session._handle, session.sid
        tail = f',"sid":"{sid}"}}'
        encoded = []
        for batches in per_model:
            ids = [i for _, batch_ids in batches for i in batch_ids]
            retracts = [orjson.dumps([{"id": i, "sid": sid} for i in part]).decode()
                        for part in ([i for i in ids if i in gates],
                                     [i for i in ids if i not in gates]) if part]
            encoded.append((["[" + ",".join(t + tail for t in texts) + "]"
                             for texts, _ in batches], retracts))

        def drain(state: int) -> int:
            count = 0
            started = durable_rules_engine.start_action_for_state(handle, state)
            message = started[1] if started else None
            while message:
                count += 1
                message = durable_rules_engine.complete_and_start_action(handle, state)
            return count

        with clock:
            for batches, retracts in encoded:
                for batch in batches:
                    drain(durable_rules_engine.assert_facts(handle, batch)[1])
                for retract in retracts:
                    if drain(durable_rules_engine.retract_facts(handle, retract)[1]):
                        raise SystemExit("retracting fired a rule: the floor is not clean")
    return clock


def stages(evaluator: Evaluator, docs: Sequence[ModelDocument]) -> tuple[list[Clock], int]:
    """The full assessment of `docs` timed part by part (building the facts, evaluating,
    the contract keys, the conclusions), and the rule activations (firings) in all."""
    clocks = [Clock() for _ in range(4)]
    facts, evaluate, keys, flat = clocks
    budget, pack = default_budget(), evaluator.pack
    firings = 0
    for doc in docs:
        with facts:
            given = document_facts(doc, pack)
        with evaluate:
            derivation = evaluator.evaluate(given, budget=budget)
        with keys:
            contract(pack, derivation, doc.model.id)
        with flat:
            conclusions_of(derivation)
        firings += len(derivation.trace)
    return clocks, firings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="models to assess")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tune_for_throughput()  # as the asl command and batch workers run
    evaluator = evaluator_for()
    vocab = vocabulary(evaluator.pack)
    keys, full, plain = Clock(), Clock(), Clock()
    done = 0
    checkpoints: list[tuple[int, float]] = []
    recorded: list[list[Batch]] = []
    replayed: list[ModelDocument] = []  # the models whose matcher calls were recorded
    while done < args.n:
        size = min(CHUNK, args.n - done)
        raw = synth.generate_models(size, seed=args.seed * 1_000_003 + done)
        docs = [parse_document(m, "synthetic", "", vocab)[0] for m in raw]
        if any(d is None for d in docs):
            raise SystemExit("the synthetic generator produced invalid evidence")
        if len(recorded) < FLOOR_MODELS:
            replayed.extend(docs[:FLOOR_MODELS - len(recorded)])
            recorded.extend(record_matcher_calls(evaluator, docs[:FLOOR_MODELS - len(recorded)]))
        with keys:
            assessments = [assess_document(evaluator, d) for d in docs]
        with full:
            for doc in docs:
                assessment_document(assess_document(evaluator, doc))
        with plain:
            for model in raw:
                plain_eval.evaluate(model)
        for assessment, model in zip(assessments, raw, strict=True):
            expected = plain_eval.evaluate(model)
            got = {k: assessment.output[k] for k in expected}
            if got != expected:
                raise SystemExit(f"engine and plain evaluation disagree on {got['model']}")
        done += size
        if done % 10_000 == 0 or done == args.n:
            checkpoints.append((done, rss_mib()))
        del assessments, docs, raw

    # Before the floor: its replay drives a pooled session past what the engine lets one
    # session serve (MAX_SESSION_USES), and nothing should run in that session after it.
    parts, firings = stages(evaluator, replayed)
    base = floor(evaluator, recorded)
    per = len(recorded)
    calls = sum(len(batches) for batches in recorded) / per
    facts = sum(len(ids) for batches in recorded for _, ids in batches) / per

    def line(name: str, clock: Clock, count: int) -> None:
        cpu, wall = clock.cpu / count * 1e3, clock.wall / count * 1e3
        print(f"{name:<34}{cpu:7.3f} ms CPU {wall:7.3f} ms wall  "
              f"{count / clock.cpu:7,.0f} models/CPU-s  x{cpu / (base.cpu / per * 1e3):5.2f} CPU "
              f"x{wall / (base.wall / per * 1e3):5.2f} wall of the floor")

    print(f"models assessed {done:,} (results checked against plain_eval); floor: "
          f"{per:,} models replayed, {calls:.1f} batches and {facts:.1f} facts per model")
    line("durable-rules C calls (floor)", base, per)
    line("engine, contract keys", keys, done)
    line("engine + conclusions (full)", full, done)
    line("plain Python evaluation", plain, done)
    ratio = (full.cpu / done) / (base.cpu / per)
    print(f"target: full assessment <= {TARGET:.0f}x the floor in CPU time: "
          + ("met" if ratio <= TARGET else f"NOT met (x{ratio:.2f})"))
    names = ("building facts", "evaluating (floor included)", "contract keys",
             "conclusions")
    print(f"where the full assessment's CPU time goes ({per:,} models, "
          f"{firings / per:.1f} rule activations each):")
    for name, clock in zip(names, parts, strict=True):
        print(f"  {name:<32}{clock.cpu / per * 1e3:7.3f} ms")
    evaluating = parts[1].cpu - base.cpu
    print(f"  evaluator's own Python           {evaluating / per * 1e3:7.3f} ms, "
          f"{evaluating / firings * 1e6:5.2f} us per activation")
    print(f"peak RSS                          {peak_rss_mib():7.1f} MiB")
    for count, mib in checkpoints:
        print(f"RSS after {count:>7,} models         {mib:7.1f} MiB")


if __name__ == "__main__":
    main()
